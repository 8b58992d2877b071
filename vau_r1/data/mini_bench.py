"""A minimal, deterministic synthetic VAU-Bench split for CPU debugging (``experiment=debug_cpu``).

:func:`write_mini_bench` writes ``num_clips`` short videos (:func:`vau_r1.data.synthetic.write_synthetic_video`)
and a CSV in the published 13-column VAU-Bench schema, so the whole real data path (annotation parsing,
video resolution, decoding, prompts, rewards) runs on it. Every other clip is normal (``0,0`` times,
class ``Normal``); the others show a coloured square during their anomaly span, and the colour encodes
the class. Each row has a four-option question whose correct letter varies.

Layout::

    <root>/train.csv
    <root>/videos/msad_mini_000.mp4 ...
    <root>/mini_bench.json      the arguments, so an identical call reuses the files

The same arguments always give the same files.

A tiny random model never writes a well-formed answer, so the paper's rewards are all 0 on it and
GRPO has no signal. :func:`space_fraction_reward` is a dense stand-in for CPU debugging runs
(``experiment=debug_cpu`` adds it with a small weight): it is not a task reward.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from vau_r1.data.annotations import COLUMNS
from vau_r1.data.synthetic import write_synthetic_video

#: Anomaly classes of the mini split and the colour (RGB) of their event square.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "Fire": (255, 0, 0),
    "Fighting": (0, 0, 255),
    "Traffic_accident": (0, 255, 0),
}
_OPTIONS = {
    "Normal": "Nothing unusual happens",
    "Fire": "A red square appears",
    "Fighting": "A blue square appears",
    "Traffic_accident": "A green square appears",
}


def space_fraction_reward(completions: list[str], **columns: object) -> list[float]:
    """Share of spaces among a completion's characters (0 for an empty one).

    A dense, learnable signal for debugging the trainer on random models, not a task reward: a random
    tiny model starts near 0.08 and GRPO raises it within tens of steps (about 0.2 after 60 steps at
    learning rate 1e-2 in ``experiment=debug_cpu``).

    >>> space_fraction_reward(["a b ", "ab", ""])
    [0.5, 0.0, 0.0]
    """
    return [text.count(" ") / max(len(text), 1) for text in completions]


def _row(index: int, duration_s: float, rng: random.Random) -> tuple[dict[str, str], tuple[float, float] | None, str]:
    """One CSV row, its event span (``None`` for normal) and its class."""
    label = "Normal" if index % 2 == 0 else list(CLASS_COLORS)[(index // 2) % len(CLASS_COLORS)]
    span = None
    if label != "Normal":
        start_s = round(rng.uniform(0.0, duration_s / 2), 1)
        span = (start_s, round(min(duration_s, start_s + rng.uniform(1.0, duration_s / 2)), 1))
    options = list(_OPTIONS.values())
    rng.shuffle(options)
    letter = "ABCD"[options.index(_OPTIONS[label])]
    start, end = span if span is not None else (0.0, 0.0)
    what = "nothing unusual happens" if span is None else f"a coloured square appears from {start} s to {end} s"
    cells = {
        "Video Name": f"msad_mini_{index:03d}.mp4",
        "Question": "What happens in the video?",
        "Option 1": options[0],
        "Option 2": options[1],
        "Option 3": options[2],
        "Option 4": options[3],
        "Correct Option": letter,
        "Key Object": "square" if span is not None else "background",
        "Description": f"A grey moving background; {what}.",
        "Reasoning": f"### Specific Anomaly Type: {label} ### Conclusion: {what}.",
        "Anomaly Class": label,
        "Start Time": str(start),
        "End Time": str(end),
    }
    return cells, span, label


def write_mini_bench(
    root: str | Path,
    num_clips: int = 8,
    duration_s: float = 4.0,
    fps: float = 4.0,
    width: int = 56,
    height: int = 56,
    seed: int = 0,
) -> Path:
    """Write (or reuse) the mini split under ``root`` and return the CSV path.

    Args:
        root: output folder.
        num_clips: number of videos / rows.
        duration_s: length of each clip in seconds.
        fps: frame rate of the clips.
        width: frame width in pixels (even).
        height: frame height in pixels (even).
        seed: seeds the spans, option order and video noise.

    Returns:
        ``<root>/train.csv``.

    Raises:
        ValueError: ``root`` is empty (it would mean the working directory, or ``/`` once joined to a path) or
            an existing file.
    """
    if not str(root).strip():
        raise ValueError("mini-bench folder is empty; give the folder to write train.csv and videos/ into")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"mini-bench folder {root} is a file; give a folder to write train.csv and videos/ into")
    params = {"num_clips": num_clips, "duration_s": duration_s, "fps": fps, "width": width, "height": height,
              "seed": seed}  # fmt: skip
    stamp, csv_path = root / "mini_bench.json", root / "train.csv"
    if stamp.is_file() and csv_path.is_file() and json.loads(stamp.read_text()) == params:
        return csv_path
    rng = random.Random(seed)
    rows = []
    for index in range(num_clips):
        cells, span, label = _row(index, duration_s, rng)
        color = CLASS_COLORS.get(label, (255, 0, 0))
        write_synthetic_video(
            root / "videos" / cells["Video Name"], duration_s, fps, width, height, event=span, color=color,
            seed=seed * 1000 + index,
        )  # fmt: skip
        rows.append(cells)
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    stamp.write_text(json.dumps(params))
    return csv_path
