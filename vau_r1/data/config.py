"""What to train on (the ``data`` section, ``vau_r1/configs/data/*.yaml``): annotations, videos, tasks, prompt.

The ``data.video`` sub-section is validated by :class:`vau_r1.data.video.VideoConfig` when the run is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.data.schema import SOURCES, TASKS
from vau_r1.sections import check


def _is_weight(value: Any) -> bool:
    """A ``data.task_weights`` value: a finite number > 0 (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")


def _is_source_list(value: Any) -> bool:
    """A ``data.task_sources`` value: a non-empty list of known sources."""
    return isinstance(value, (list, tuple)) and len(value) > 0 and set(value) <= set(SOURCES)


@dataclass(frozen=True)
class MiniBenchConfig:
    """Synthetic split written before training when absent (``vau_r1.data.mini_bench``)."""

    num_clips: int = 8
    duration_s: float = 4.0
    fps: float = 4.0
    width: int = 56
    height: int = 56
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.num_clips >= 1, "data.mini_bench.num_clips must be >= 1")
        check(self.duration_s > 0 and self.fps > 0, "data.mini_bench.duration_s and fps must be > 0")


@dataclass(frozen=True)
class DataConfig:
    """Which annotations, videos, task(s) and prompt to train on (``vau_r1/configs/data/*.yaml``).

    ``tasks`` (a list) trains several tasks at once and replaces ``task``: every row is used once per listed
    task it is usable for. :attr:`task_list` is the effective tuple either way. ``video_cache_dir`` is the
    decode cache on disk (:mod:`vau_r1.data.cache`): every rank, worker and later run (evaluation too, with
    the same sampling) reads each clip from it after its first decode.

    ``task_weights`` (``{task: weight}``, e.g. ``{qa: 1.0, tag: 2.0, cls: 0.5}``) sets how often each task's
    usable rows are drawn per epoch (:func:`vau_r1.tasks.dataset.weight_task_pairs`): the whole part of a weight
    repeats every row, the fraction adds an evenly spaced share of them; a task it leaves out keeps weight 1,
    and ``None`` uses every usable row once per task. The expansion is deterministic, so resume stays exact.
    ``task_sources`` (``{task: [source, ...]}``) keeps a task's rows to those sources, e.g. ``{tag: [msad, ecva]}``
    in co-training (the paper trains TAG on MSAD and ECVA only, QA and CLS on all); ``sources`` filters every task.
    """

    annotations: str
    video_root: str
    task: str | None = None
    tasks: tuple[str, ...] | None = None
    task_weights: dict[str, float] | None = None
    task_sources: dict[str, tuple[str, ...]] | None = None
    source: str | None = None
    sources: tuple[str, ...] | None = None
    prompt_preset: str = "default"
    max_samples: int | None = None
    shuffle: bool = True
    num_workers: int = 1
    cache_videos: bool = False
    video_cache_dir: str | None = None
    video: dict[str, Any] = field(default_factory=dict)
    mini_bench: MiniBenchConfig | None = None

    def __post_init__(self) -> None:
        self._check_paths()
        check(
            self.task is not None or self.tasks is not None,
            f"set data.task (one of {list(TASKS)}) or data.tasks (a list of them, e.g. [qa, tag])",
        )
        check(self.tasks is None or len(self.tasks) > 0, "data.tasks is empty; list at least one task or use null")
        if self.tasks is not None:
            check(len(set(self.tasks)) == len(self.tasks), f"data.tasks={list(self.tasks)} lists a task twice")
        bad_tasks = [t for t in self.task_list if t not in TASKS]
        check(not bad_tasks, f"data.task(s) has {bad_tasks}; expected some of {list(TASKS)}")
        self._check_per_task("task_weights", _is_weight, "set a number > 0 (1.0: every usable row once per epoch; "
                             "leave a task out of data.tasks instead of weighting it 0)")  # fmt: skip
        self._check_per_task("task_sources", _is_source_list, f"set a non-empty list of {list(SOURCES)}")
        check(self.max_samples is None or self.max_samples >= 1, "data.max_samples must be null (all) or >= 1")
        check(self.num_workers >= 0, "data.num_workers must be >= 0")
        cache_dir = self.video_cache_dir
        check(cache_dir is None or (cache_dir.strip() != "" and not Path(cache_dir).is_file()),
              f"data.video_cache_dir={cache_dir!r}: set a folder for the decode cache, or null for none")  # fmt: skip
        bad = sorted(set(self.sources or ()) - set(SOURCES))
        check(not bad, f"data.sources has {bad}; use null (all) or a list of {list(SOURCES)}")
        nframes = self.video.get("nframes")
        check(
            nframes is None or nframes % 2 == 0,
            f"data.video.nframes={nframes} must be even (Qwen-VL groups frames in pairs, FRAME_FACTOR=2)",
        )

    def _check_paths(self) -> None:
        """Paths that are set and of the right kind; with ``mini_bench``, where it writes the split."""
        for key, value in (("data.annotations", self.annotations), ("data.video_root", self.video_root)):
            check(value.strip() != "", f"{key} is empty; set a path ('.' for the working directory)")
        check(not Path(self.annotations).is_dir(),
              f"data.annotations={self.annotations!r} is a folder; set the annotation CSV file")  # fmt: skip
        check(not Path(self.video_root).is_file(),
              f"data.video_root={self.video_root!r} is a file; set the folder holding the videos")  # fmt: skip
        if self.mini_bench is None:
            return
        root = Path(self.annotations).parent
        check(Path(self.annotations).name == "train.csv" and Path(self.video_root) == root / "videos",
              f"data.annotations={self.annotations!r} and data.video_root={self.video_root!r}: with "
              "data.mini_bench the split is written as <folder>/train.csv and <folder>/videos; set both so, "
              "or data.mini_bench=null")  # fmt: skip
        check(not root.is_file(), f"data.annotations={self.annotations!r}: {root} is a file, not a folder to "
              "write the mini split into; choose another output_dir or data.annotations")  # fmt: skip

    def _check_per_task(self, key: str, valid: Callable[[Any], bool], need: str) -> None:
        """``data.<key>`` (``task_weights``, ``task_sources``) names trained tasks only, each value ``valid``.

        ``need`` ends the error of a value that is not: what to set instead.
        """
        mapping = getattr(self, key)
        if mapping is None:
            return
        extra = sorted(set(mapping) - set(self.task_list))
        check(not extra, f"data.{key} has {extra}, which data.task(s)={list(self.task_list)} does not train; "
              "remove them or add them to data.tasks")  # fmt: skip
        for task, value in mapping.items():
            check(valid(value), f"data.{key}.{task}={value!r}; {need}")

    @property
    def task_list(self) -> tuple[str, ...]:
        """The trained tasks: ``tasks`` when set, else ``(task,)``."""
        if self.tasks is not None:
            return tuple(self.tasks)
        return (self.task,) if self.task is not None else ()

    def check_tasks(self, allowed: Sequence[str], algorithm: str) -> None:
        """Raise a :class:`ConfigError` if a trained task is not one ``algorithm`` can train."""
        key = "data.tasks" if self.tasks is not None else "data.task"
        value = list(self.tasks) if self.tasks is not None else self.task
        bad = [t for t in self.task_list if t not in allowed]
        check(not bad, f"{key}={value!r}; {algorithm.upper()} trains one of {list(allowed)}")
