"""The demo's data: four synthetic splits and the text the tiny tokenizer is trained on.

=========  =========================================  =================================================
split      what                                       used by
=========  =========================================  =================================================
``main``   ``train.csv`` (SFT clips), ``test.csv``    SFT; the in-distribution held-out test
``fresh``  ``train.csv``: clips never seen in SFT     GRPO and the continued-SFT control
``val``    ``test.csv``: a small held-out split       the swap-probe gate before GRPO (never the test)
``shift``  ``test.csv``: another scene distribution   the out-of-distribution held-out test
=========  =========================================  =================================================

Each split has its own seed (``seed + offset``), so no clip repeats across splits. The shifted split keeps
the anomaly classes, their marker colours and the texts, and changes the scene colours, the camera layout
and the clip lengths (:mod:`vau_r1.bench`, ``style="shifted"``): SFT and GRPO never see it.

:func:`write_bpe_corpus` writes the rendered training prompts and targets of the training splits, one per
line, for ``model.tiny.bpe_corpus_files``: the tiny BPE then learns the benchmark's words as single tokens,
which shortens a QA prompt from about 270 to about 170 tokens (the text side is most of a CPU step).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CLIP", "SEED_OFFSETS", "write_bpe_corpus", "write_demo_data"]

#: Clip settings of every split: 56x56, 8 s, 4 fps (sampled at 2 fps: 16 frames, 32 video tokens). The marker
#: is 28 px, one merged vision token (2x2 patches of 14 px), present only while the anomaly lasts.
CLIP: dict[str, Any] = {"width": 56, "height": 56, "duration_s": 8.0, "fps": 4.0, "span_resolution_s": 0.5,
                        "appearance_cue": True, "marker_px": 28}  # fmt: skip
#: Clip lengths of the shifted split (the others are all 8 s).
SHIFT_DURATION_S: tuple[float, float] = (6.0, 10.0)
#: Seed offset of each split, so that no clip repeats across splits.
SEED_OFFSETS: dict[str, int] = {"main": 0, "fresh": 10_000, "val": 20_000, "shift": 30_000}


def write_demo_data(root: Path, seed: int, num_train: int, num_grpo: int, num_val: int, num_test: int) -> dict:
    """Write (or reuse) the four splits under ``root``; returns ``{split: benchmark root}``."""
    from vau_r1.bench import write_benchmark

    def split(name: str, train: int, test: int, **changes: Any) -> Path:
        settings = {**CLIP, **changes}
        info = write_benchmark(root / name, num_train=train, num_test=test, seed=seed + SEED_OFFSETS[name],
                               prefix=name, **settings)  # fmt: skip
        return info.root

    return {
        "main": split("main", num_train, num_test),
        "fresh": split("fresh", num_grpo, 0),
        "val": split("val", 0, num_val),
        "shift": split("shift", 0, num_test, style="shifted", duration_s=SHIFT_DURATION_S),
    }


def _texts(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The text parts of chat messages."""
    texts = []
    for message in messages:
        content = message["content"]
        parts = [content] if isinstance(content, str) else [p.get("text") for p in content if p.get("type") == "text"]
        texts.extend(part for part in parts if part)
    return texts


def write_bpe_corpus(csvs: Sequence[Path], tasks: Sequence[str], preset: str, path: Path) -> Path:
    """Write the rendered prompts and SFT targets of every usable training row of ``csvs``, one text a line.

    Args:
        csvs: training annotation files (never a test split).
        tasks: the trained tasks.
        preset: the prompt preset of training.
        path: the corpus file to write.
    """
    from vau_r1.data.annotations import load_annotations
    from vau_r1.tasks import build_messages, target_text

    lines: list[str] = []
    for csv_path in csvs:
        table = load_annotations(csv_path)
        for task in tasks:
            for sample in table.usable(task, purpose="train"):
                messages = build_messages(sample, task, preset, video="clip.mp4", duration_s=CLIP["duration_s"])
                lines.extend(_texts(messages))
                lines.append(target_text(sample, task, preset))
    unique = list(dict.fromkeys(line.replace("\n", " ") for line in lines))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(unique) + "\n", encoding="utf-8")
    return path
