"""The generation loop of ``vau-r1 eval run``: decode, prompt, generate, record one line per video, resume.

Records are appended, one flushed JSON line per video, to ``<output_dir>/parts/rank<r>.jsonl`` as the
run goes. A rerun in the same folder reads every part (and the merged ``predictions.jsonl``), skips the
videos already predicted and generates only the rest, so a killed run loses at most the batch in
flight. A line the kill tore (or any other unusable line) is skipped with a warning naming the file and
line, cut off before this rank's next append, and its video predicted again (:mod:`vau_r1.data.jsonl`).
Under ``torchrun`` each rank takes every ``world_size``-th pending video and writes its own part;
:meth:`PredictionStore.merge` then writes ``predictions.jsonl``, one record per video in annotation order.

A video that cannot be found or decoded becomes a ``failed`` record with the error (never dropped
silently; the video preset's ``on_error`` does not apply here) and counts as wrong in the metrics; a
rerun tries it again. Record fields (the JSONL format of :mod:`vau_r1.eval.predictions`)::

    {"video", "task", "status": "ok" | "failed", "text", "parsed", "error",
     "duration_s", "num_frames", "video_tokens", "prompt_tokens", "completion_tokens", "truncated"}

plus ``anomaly`` (tag) and ``description`` / ``analysis`` (reasoning; ``text`` is the analysis), and
under a probe (:mod:`vau_r1.eval.probes`) ``probe`` with ``probe_video`` (swap: the video actually shown)
or ``probe_seed``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from vau_r1.data.cache import load_clip_cached
from vau_r1.data.jsonl import append_jsonl, dumps_line, read_jsonl
from vau_r1.data.paths import resolve_video
from vau_r1.data.schema import CLASS_LABELS, VideoSample
from vau_r1.data.video import VideoConfig, VideoError
from vau_r1.data.vision import VideoInputs, video_inputs
from vau_r1.eval.generation import Generation
from vau_r1.eval.probes import Probe
from vau_r1.rewards import parsing

__all__ = [
    "RECORD_KEYS", "EvalItem", "FailedItem", "PredictionStore", "VideoItems", "check_record", "failed_record",
    "run_predictions", "task_record",
]  # fmt: skip

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class EvalItem:
    """A decoded video ready for its prompt.

    Attributes:
        sample: the annotation row.
        path: the video file.
        video: model inputs of the video.
        duration_s: video length in seconds (the row's own video, also under the swap probe).
        num_frames: frames sampled.
        extra: more record fields (the probe's).
    """

    sample: VideoSample
    path: Path
    video: VideoInputs
    duration_s: float
    num_frames: int
    extra: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        """Record fields describing the input."""
        return {"duration_s": round(self.duration_s, 3), "num_frames": self.num_frames,
                "video_tokens": self.video.num_video_tokens, **self.extra}  # fmt: skip


@dataclass(frozen=True)
class FailedItem:
    """A video that could not be used, and why (``extra``: more record fields, the probe's)."""

    sample: VideoSample
    error: str
    extra: dict[str, Any] = field(default_factory=dict)


class VideoItems(Dataset):
    """Finds and decodes the videos of ``samples`` (for a ``DataLoader``, so workers can prefetch).

    Args:
        samples: annotation rows.
        video_root: folder of the videos (flat or one sub-folder per source).
        video_config: frame sampling and pixel budget.
        probe: the input probe applied to every video, or ``None`` for the clean videos.
        video_cache_dir: decode cache on disk (:mod:`vau_r1.data.cache`) of the clean videos, shared with
            training when the sampling matches; ``None`` decodes every time.
        video_processing: keyword arguments of :func:`~vau_r1.data.vision.video_inputs` for the evaluated model
            (:func:`vau_r1.model.families.video_processing_for`); ``None``: the Qwen2/2.5-VL processor's.
    """

    def __init__(self, samples: Sequence[VideoSample], video_root: str | Path, video_config: VideoConfig,
                 probe: Probe | None = None, video_cache_dir: str | Path | None = None,
                 video_processing: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.samples, self.video_root, self.video_config = list(samples), Path(video_root), video_config
        self.probe, self.video_cache_dir = probe, video_cache_dir
        self.video_processing = dict(video_processing or {})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> EvalItem | FailedItem:
        sample = self.samples[index]
        extra = {} if self.probe is None else self.probe.record_fields(sample)
        try:
            if self.probe is not None:
                loaded = self.probe.load(sample, self.video_root, self.video_config, self.video_processing)
                return EvalItem(sample, *loaded, extra)
            path = resolve_video(self.video_root, sample)
            clip = load_clip_cached(path, self.video_config, self.video_cache_dir)
        except (FileNotFoundError, VideoError) as error:
            logger.warning("video %s (row %d) failed: %s", sample.video, sample.row, str(error).splitlines()[0])
            return FailedItem(sample, str(error), extra)
        video = video_inputs(clip, **self.video_processing)
        return EvalItem(sample, path, video, clip.duration_s, len(clip.timestamps_s))


def _parse(task: str, text: str, sample: VideoSample) -> dict[str, Any]:
    """The parsed answer (strict parsers, as the metrics use them)."""
    if task == "qa":
        return {"parsed": parsing.parse_choice(text, sample.options)}
    if task == "cls":
        return {"parsed": parsing.parse_label(text, CLASS_LABELS)}
    if task == "tag":
        span = parsing.parse_span(text)
        return {"parsed": None if span is None else list(span), "anomaly": parsing.parse_anomaly(text)}
    return {"parsed": text.strip()}


def task_record(item: EvalItem, task: str, generation: Generation) -> dict[str, Any]:
    """The ``ok`` record of one video for ``qa``/``tag``/``cls``."""
    return {
        "video": item.sample.video, "task": task, "status": "ok", "text": generation.text,
        **_parse(task, generation.text, item.sample), "error": None, **item.meta(),
        "prompt_tokens": generation.prompt_tokens, "completion_tokens": generation.completion_tokens,
        "truncated": generation.truncated,
    }  # fmt: skip


def failed_record(item: FailedItem, task: str) -> dict[str, Any]:
    """The ``failed`` record of a video that could not be used."""
    return {"video": item.sample.video, "task": task, "status": "failed", "text": None, "parsed": None,
            "error": item.error, **item.extra}  # fmt: skip


#: Keys every stored record has, with their type (other lines of a records file are skipped on resume).
RECORD_KEYS = {"video": str, "status": str}


def check_record(record: dict[str, Any]) -> str | None:
    """Why a stored record cannot be resumed from (``None``: it can): an unknown status, an ``ok`` without text."""
    if record["status"] not in ("ok", "failed"):
        return f"status {record['status']!r} is neither 'ok' nor 'failed'"
    if record["status"] == "ok" and not isinstance(record.get("text"), str):
        return "an 'ok' record without a string 'text'"
    return None


class PredictionStore:
    """Prediction records of one evaluation folder: appended per rank, merged at the end.

    Args:
        output_dir: the evaluation folder.
        rank: this process's rank (names its part file).
    """

    def __init__(self, output_dir: str | Path, rank: int = 0) -> None:
        self.output_dir = Path(output_dir)
        self.parts_dir = self.output_dir / "parts"
        self.part = self.parts_dir / f"rank{rank}.jsonl"
        self.merged = self.output_dir / "predictions.jsonl"

    def _files(self) -> list[Path]:
        return [*([self.merged] if self.merged.is_file() else []), *sorted(self.parts_dir.glob("rank*.jsonl"))]

    def load(self) -> dict[str, dict[str, Any]]:
        """Video → its latest record, from the merged file then every part (later lines win).

        An unusable line (the torn tail of a killed write, bytes that are not UTF-8, JSON that is not a
        record) is skipped with a warning naming the file and line; its video is simply predicted again.
        """
        records: dict[str, dict[str, Any]] = {}
        for path in self._files():
            for line in read_jsonl(path, RECORD_KEYS, check_record, on_skip="its video is predicted again").lines:
                records[line.record["video"]] = line.record
        return records

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records to this rank's part, flushed line by line.

        A part whose last line was cut off (a killed write) first loses that torn line, so that the new
        records start on a fresh line (:func:`vau_r1.data.jsonl.append_jsonl`).
        """
        append_jsonl(self.part, records, RECORD_KEYS, check_record)

    def merge(self, samples: Sequence[VideoSample]) -> list[dict[str, Any]]:
        """Write ``predictions.jsonl`` and return the latest record of each sample, in sample order.

        The file holds the samples' records in sample order, then any other video's record (from a run over
        more rows), so nothing predicted is ever dropped. The part files are removed once it is written.
        """
        records = self.load()
        names = {s.video for s in samples}
        ordered = [records[s.video] for s in samples if s.video in records]
        others = [record for video, record in records.items() if video not in names]
        tmp = self.merged.with_suffix(".jsonl.tmp")
        tmp.write_bytes(b"".join(dumps_line(record) for record in ordered + others))
        tmp.replace(self.merged)
        for part in self.parts_dir.glob("rank*.jsonl"):
            part.unlink()
        return ordered


def run_predictions(
    items: VideoItems,
    predict: Callable[[list[EvalItem]], list[dict[str, Any]]],
    store: PredictionStore,
    task: str,
    *,
    batch_size: int = 1,
    num_workers: int = 0,
    progress: bool = True,
    description: str = "eval",
    already_done: int = 0,
) -> int:
    """Predict every item in batches, appending each batch's records to ``store`` as soon as it is done.

    Args:
        items: the videos to predict (this rank's pending share).
        predict: turns a batch of decoded items into one record each (same order).
        store: where records go.
        task: task name written into failed records.
        batch_size: videos per ``predict`` call.
        num_workers: ``DataLoader`` workers decoding ahead of the model (0: decode in this process).
        progress: show a progress bar.
        description: progress bar label.
        already_done: videos predicted by an earlier run; the bar starts there, so it shows the whole split.

    Returns:
        The number of records written.
    """
    loader = DataLoader(items, batch_size=batch_size, num_workers=num_workers, collate_fn=list)
    written = 0
    total = len(items) + already_done
    with tqdm(total=total, initial=already_done, desc=description, unit="video", disable=not progress) as bar:
        for batch in loader:
            ready = [item for item in batch if isinstance(item, EvalItem)]
            made = predict(ready) if ready else []
            assert len(made) == len(ready), "predict must return one record per item"
            done = iter(made)
            ordered = [next(done) if isinstance(item, EvalItem) else failed_record(item, task) for item in batch]
            store.append(ordered)
            written += len(ordered)
            bar.update(len(batch))
    return written
