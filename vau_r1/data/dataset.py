"""Training examples: a :class:`VideoSample` becomes chat messages, video inputs and reward columns.

:class:`VideoPromptDataset` is a plain ``torch.utils.data.Dataset``: ``__getitem__`` decodes the video
(``vau_r1.data.video.load_clip``), turns it into Qwen-VL inputs (``vau_r1.data.vision.video_inputs``),
and builds the task prompt and the columns the rewards read. It replaces the official code's
instance-bound ``__getitem__`` hack and its unbounded retry recursion (``paper_spec.md`` §10 items 7–8).

Failure policy (bounded, never a substitute): when a video cannot be loaded and
``video.on_error == "skip"``, the item is a :class:`Skipped` marker; :func:`collate_examples` drops it
from the batch and reports it, and the trainer counts it in the metrics. With ``on_error == "raise"``
the :class:`~vau_r1.data.video.VideoError` propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from vau_r1.data.annotations import load_annotations
from vau_r1.data.paths import resolve_video
from vau_r1.data.schema import VideoSample
from vau_r1.data.video import VideoConfig, VideoError, load_clip
from vau_r1.data.vision import VideoInputs, video_inputs
from vau_r1.tasks import build_messages, reward_columns

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Example:
    """One prompt ready for the model and the rewards.

    Attributes:
        sample: the annotation row.
        messages: chat messages (text and video parts).
        video: the video's model inputs (``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``).
        columns: reward keyword columns, ``{"task", "answer", "span"}`` (seconds).
        duration_s: video length in seconds.
    """

    sample: VideoSample
    messages: list[dict[str, Any]]
    video: VideoInputs
    columns: dict[str, Any]
    duration_s: float


@dataclass(frozen=True)
class Skipped:
    """A sample dropped because its video could not be loaded (``video.on_error=skip``).

    Attributes:
        index: dataset index.
        video: the CSV video name.
        cause: :attr:`VideoError.cause` (``missing``, ``corrupt``, ``timeout``, ...).
    """

    index: int
    video: str
    cause: str


@dataclass
class ExampleBatch:
    """A collated batch: the usable examples, in order, and the skipped ones."""

    examples: list[Example] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)


class VideoPromptDataset(Dataset):
    """Decodes videos and builds prompts for one task.

    Args:
        samples: usable annotation rows for ``task`` (see :func:`load_training_samples`).
        video_root: folder with the videos (flat or one sub-folder per source).
        task: ``qa``, ``tag`` or ``cls``.
        video_config: frame sampling and pixel budget; its ``on_error`` sets the failure policy.
        prompt_preset: prompt preset name (:mod:`vau_r1.tasks.presets`).
    """

    def __init__(
        self,
        samples: Sequence[VideoSample],
        video_root: str | Path,
        task: str,
        video_config: VideoConfig,
        prompt_preset: str = "default",
    ) -> None:
        self.samples = list(samples)
        self.video_root = Path(video_root)
        self.task = task
        self.video_config = video_config
        self.prompt_preset = prompt_preset

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Example | Skipped:
        """The example at ``index``, or a :class:`Skipped` marker under ``on_error=skip``.

        Raises:
            VideoError: the video cannot be loaded and ``on_error == "raise"``.
        """
        sample = self.samples[index]
        try:
            path = self._video_path(sample)
            clip = load_clip(path, self.video_config)
        except VideoError as error:
            if self.video_config.on_error != "skip":
                raise
            logger.warning("dropping sample %d (row %d): %s", index, sample.row, error)
            return Skipped(index, sample.video, error.cause)
        messages = build_messages(
            sample, self.task, self.prompt_preset, video=str(path), duration_s=clip.duration_s
        )
        return Example(sample, messages, video_inputs(clip), reward_columns(sample, self.task), clip.duration_s)

    def _video_path(self, sample: VideoSample) -> Path:
        """Resolved video path; a missing file is a :class:`VideoError` (cause ``missing``) like any other."""
        try:
            return resolve_video(self.video_root, sample)
        except FileNotFoundError as error:
            raise VideoError(self.video_root / sample.video, "missing", str(error).splitlines()[0],
                             "check data.video_root") from error  # fmt: skip


def collate_examples(items: Sequence[Example | Skipped]) -> ExampleBatch:
    """Keep the examples in order and set the :class:`Skipped` markers aside (no substitutes)."""
    batch = ExampleBatch()
    for item in items:
        (batch.skipped if isinstance(item, Skipped) else batch.examples).append(item)
    return batch


def resumable_batches(
    dataset: Dataset, sampler: Any, consumed_batches: int, num_workers: int = 0
) -> Iterator[ExampleBatch]:
    """This rank's collated batches, starting after the first ``consumed_batches`` of the run.

    The position is derived from the count of batches the trainer has consumed, not from the sampler's own
    cursor, which DataLoader workers read ahead of training.

    Args:
        dataset: the examples.
        sampler: a :class:`~vau_r1.distributed.ShardedBatchSampler` (batches of indices, endless).
        consumed_batches: batches already trained on by this rank.
        num_workers: DataLoader worker processes.
    """
    per_epoch = len(sampler)
    sampler.load_state_dict({"epoch": consumed_batches // per_epoch, "position": consumed_batches % per_epoch})
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_examples, num_workers=num_workers)
    return iter(loader)


def load_training_samples(
    annotations: str | Path,
    task: str,
    source: str | None = None,
    max_samples: int | None = None,
    sources: Sequence[str] | None = None,
) -> list[VideoSample]:
    """Rows of an annotation CSV usable to train ``task``, in file order, at most ``max_samples``.

    Args:
        annotations: VAU-Bench CSV.
        task: ``qa``, ``tag`` or ``cls``.
        source: source of unprefixed video names (test CSVs), else ``None``.
        max_samples: keep the first this many usable rows (``None``: all).
        sources: keep only rows from these sources (the paper trains TAG on MSAD and ECVA only).

    Raises:
        ValueError: no row of the file is usable for the task.
    """
    table = load_annotations(annotations, source=source)
    samples = table.usable(task, purpose="train")
    if sources is not None:
        samples = [s for s in samples if s.source in set(sources)]
    if not samples:
        raise ValueError(
            f"{annotations}: none of its {len(table)} rows is usable for task {task!r}"
            f"{'' if sources is None else f' from sources {list(sources)}'}; check data.annotations, data.task "
            "and data.sources"
        )
    if len(samples) < len(table):
        logger.info("%s: %d of %d rows used for %s training", annotations, len(samples), len(table), task)
    return samples[:max_samples] if max_samples is not None else samples
