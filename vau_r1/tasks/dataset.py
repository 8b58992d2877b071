"""Training examples: a :class:`VideoSample` becomes chat messages, video inputs and reward columns.

:class:`VideoPromptDataset` is a plain ``torch.utils.data.Dataset``: ``__getitem__`` decodes the video
(``vau_r1.data.video.load_clip``), turns it into Qwen-VL inputs (``vau_r1.data.vision.video_inputs``),
and builds the task prompt and the columns the rewards read. It replaces the official code's
instance-bound ``__getitem__`` hack and its unbounded retry recursion (``docs/paper.md`` §10 items 7–8).

Failure policy (bounded, never a substitute): when a video cannot be loaded and
``video.on_error == "skip"``, the item is a :class:`Skipped` marker; :func:`collate_examples` drops it
from the batch and reports it, and the trainer counts it in the metrics. With ``on_error == "raise"``
the :class:`~vau_r1.data.video.VideoError` propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from vau_r1.data.annotations import load_annotations
from vau_r1.data.cache import load_clip_cached
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
        columns: reward keyword columns, ``{"task", "answer", "span", "duration_s"}`` (seconds).
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
    """Decodes videos and builds prompts for one task, or for a task per sample (multi-task training).

    Args:
        samples: usable annotation rows (see :func:`load_training_samples`, :func:`load_task_samples`).
        video_root: folder with the videos (flat or one sub-folder per source).
        task: ``qa``, ``tag``, ``cls`` or ``reasoning`` for every sample, or one task per sample (a row
            trained on two tasks appears twice).
        video_config: frame sampling and pixel budget; its ``on_error`` sets the failure policy.
        prompt_preset: prompt preset name (:mod:`vau_r1.tasks.presets`), the same for every task.
        cache_videos: keep each decoded video's model inputs in memory and reuse them (every epoch, every task
            of the same row): no decoding after the first pass, at the cost of memory (about 0.6 MB per 16-frame
            56×56 clip; far more for real videos). Each DataLoader worker holds its own cache.
        video_cache_dir: decode cache on disk (:mod:`vau_r1.data.cache`) shared by every rank, worker and later
            run: clips are read from it, or decoded once and written into it; ``None`` decodes every time.
        video_processing: keyword arguments of :func:`~vau_r1.data.vision.video_inputs` for the trained model
            (:func:`vau_r1.model.families.video_processing_for`: Qwen3-VL's 16-pixel patches and 0.5 mean/std);
            ``None``: the Qwen2/2.5-VL processor's.

    Raises:
        ValueError: a per-sample task list whose length differs from ``samples``.
    """

    def __init__(
        self,
        samples: Sequence[VideoSample],
        video_root: str | Path,
        task: str | Sequence[str],
        video_config: VideoConfig,
        prompt_preset: str = "default",
        cache_videos: bool = False,
        video_cache_dir: str | Path | None = None,
        video_processing: Mapping[str, Any] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.tasks = [task] * len(self.samples) if isinstance(task, str) else list(task)
        if len(self.tasks) != len(self.samples):
            raise ValueError(f"{len(self.tasks)} tasks for {len(self.samples)} samples; give one task per sample")
        self.video_root = Path(video_root)
        self.video_config = video_config
        self.prompt_preset = prompt_preset
        self.cache_videos = cache_videos
        self.video_cache_dir = video_cache_dir
        self.video_processing = dict(video_processing or {})
        self._cache: dict[str, tuple[Path, VideoInputs, float]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Example | Skipped:
        """The example at ``index``, or a :class:`Skipped` marker under ``on_error=skip``.

        Raises:
            VideoError: the video cannot be loaded and ``on_error == "raise"``.
        """
        sample, task = self.samples[index], self.tasks[index]
        try:
            path, video, duration_s = self._load(sample)
        except VideoError as error:
            if self.video_config.on_error != "skip":
                raise
            logger.warning("dropping sample %d (row %d): %s", index, sample.row, error)
            return Skipped(index, sample.video, error.cause)
        messages = build_messages(sample, task, self.prompt_preset, video=str(path), duration_s=duration_s)
        columns = reward_columns(sample, task, duration_s=duration_s)  # duration_s: tiou_v2 needs it
        return Example(sample, messages, video, columns, duration_s)

    def _load(self, sample: VideoSample) -> tuple[Path, VideoInputs, float]:
        """Path, model inputs and duration (s) of the sample's video, from the cache when enabled."""
        if sample.video in self._cache:
            return self._cache[sample.video]
        path = self._video_path(sample)
        if self.video_cache_dir is None:
            clip = load_clip(path, self.video_config)
        else:
            clip = load_clip_cached(path, self.video_config, self.video_cache_dir)
        loaded = (path, video_inputs(clip, **self.video_processing), clip.duration_s)
        if self.cache_videos:
            self._cache[sample.video] = loaded
        return loaded

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


def first_loadable(dataset: Dataset) -> Example:
    """The dataset's first example whose video loads: the stand-in a rank with no data runs its passes on.

    Every rank must make the same forward/backward calls for the collectives to match, so a rank whose
    micro-batch lost all its videos runs a zero-weight pass on this example instead of skipping.

    Raises:
        RuntimeError: no video of the dataset can be loaded.
    """
    for index in range(len(dataset)):
        item = dataset[index]
        if isinstance(item, Example):
            return item
    raise RuntimeError("no video of the dataset can be loaded; check data.video_root and data.annotations")


def resumable_batches(
    dataset: Dataset, sampler: Any, consumed_batches: int, num_workers: int = 0
) -> Iterator[ExampleBatch]:
    """This rank's collated batches, starting after the first ``consumed_batches`` of the run.

    The position is derived from the count of batches the trainer has consumed, not from the sampler's own
    cursor, which DataLoader workers read ahead of training.

    Args:
        dataset: the examples.
        sampler: a :class:`~vau_r1.engine.distributed.ShardedBatchSampler` (batches of indices, endless).
        consumed_batches: batches already trained on by this rank.
        num_workers: DataLoader worker processes.
    """
    per_epoch = len(sampler)
    sampler.load_state_dict({"epoch": consumed_batches // per_epoch, "position": consumed_batches % per_epoch})
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_examples, num_workers=num_workers)
    return iter(loader)


def load_task_samples(
    annotations: str | Path,
    tasks: Sequence[str],
    source: str | None = None,
    max_samples: int | None = None,
    sources: Sequence[str] | None = None,
) -> list[tuple[VideoSample, str]]:
    """``(row, task)`` pairs of an annotation CSV for training several tasks: each row once per task it suits.

    Rows stay in file order, each followed by its tasks in the order of ``tasks``.

    Args:
        annotations: VAU-Bench CSV.
        tasks: ``qa``, ``tag``, ``cls`` and/or ``reasoning``.
        source: source of unprefixed video names (test CSVs), else ``None``.
        max_samples: keep the first this many rows usable for at least one task (``None``: all).
        sources: keep only rows from these sources (the paper trains TAG on MSAD and ECVA only).

    Raises:
        ValueError: no row of the file is usable for any of the tasks.
    """
    table = load_annotations(annotations, source=source)
    usable = {task: {id(s) for s in table.usable(task, purpose="train")} for task in tasks}
    rows = [s for s in table.samples if any(id(s) in ids for ids in usable.values())]
    if sources is not None:
        rows = [s for s in rows if s.source in set(sources)]
    if not rows:
        raise ValueError(
            f"{annotations}: none of its {len(table)} rows is usable for task(s) {list(tasks)}"
            f"{'' if sources is None else f' from sources {list(sources)}'}; check data.annotations, data.task(s) "
            "and data.sources"
        )
    rows = rows[:max_samples] if max_samples is not None else rows
    pairs = [(s, task) for s in rows for task in tasks if id(s) in usable[task]]
    for task in tasks:
        used = sum(1 for _, t in pairs if t == task)
        if used < len(table):
            log = logger.warning if used == 0 else logger.info
            log("%s: %d of %d rows used for %s training", annotations, used, len(table), task)
    return pairs


def restrict_task_sources(
    pairs: Sequence[tuple[VideoSample, str]], task_sources: Mapping[str, Sequence[str]] | None
) -> list[tuple[VideoSample, str]]:
    """The pairs whose row comes from one of its task's sources (``data.task_sources``; a task left out: all).

    Raises:
        ValueError: a task keeps no row (the message names ``data.task_sources``).
    """
    if task_sources is None:
        return list(pairs)
    kept = [(s, t) for s, t in pairs if t not in task_sources or s.source in set(task_sources[t])]
    for task in dict.fromkeys(t for _, t in pairs):
        if not any(t == task for _, t in kept):
            raise ValueError(f"data.task_sources.{task}={list(task_sources[task])}: none of the usable {task} rows "
                             "comes from these sources; add sources or remove the entry")  # fmt: skip
    return kept


def weight_task_pairs(
    pairs: Sequence[tuple[VideoSample, str]], task_weights: Mapping[str, float] | None
) -> list[tuple[VideoSample, str]]:
    """``(row, task)`` pairs drawn per epoch by ``data.task_weights``: each task's pairs ``weight`` times.

    A weight's whole part repeats every pair of the task, its fraction adds an evenly spaced share of them
    (at least one pair), so ``{qa: 1, tag: 2, cls: 0.5}`` over 8 rows gives 8 QA, 16 TAG and 4 CLS prompts per
    epoch. The expansion is deterministic: the data order (the sampler's seeded shuffle over the expanded list)
    and exact resume work as without weights. Order: one full pass over the pairs, then each further copy.

    Args:
        pairs: the usable pairs (:func:`load_task_samples`).
        task_weights: task → weight > 0 (a task left out keeps 1.0); ``None`` returns ``pairs`` as they are.
    """
    if task_weights is None:
        return list(pairs)
    keyed = []  # (copy, position in pairs, pair)
    for task in dict.fromkeys(t for _, t in pairs):
        positions = [i for i, (_, t) in enumerate(pairs) if t == task]
        weight, n = float(task_weights.get(task, 1.0)), len(positions)
        whole, extra = int(weight), round((weight - int(weight)) * n)
        if whole == 0:
            extra = max(extra, 1)
        keyed += [(copy, i) for copy in range(whole) for i in positions]
        keyed += [(whole, positions[int((k + 0.5) * n / extra)]) for k in range(extra)]
        logger.info("task %s: %d usable pairs, weight %g: %d prompts per epoch", task, n, weight, whole * n + extra)
    return [pairs[i] for _, i in sorted(keyed)]


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
        task: ``qa``, ``tag``, ``cls`` or ``reasoning``.
        source: source of unprefixed video names (test CSVs), else ``None``.
        max_samples: keep the first this many usable rows (``None``: all).
        sources: keep only rows from these sources (the paper trains TAG on MSAD and ECVA only).

    Raises:
        ValueError: no row of the file is usable for the task.
    """
    return [sample for sample, _ in load_task_samples(annotations, [task], source, max_samples, sources)]
