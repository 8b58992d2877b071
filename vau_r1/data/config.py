"""What to train on (the ``data`` section, ``vau_r1/configs/data/*.yaml``): annotations, videos, tasks, prompt.

The ``data.video`` sub-section is validated by :class:`vau_r1.data.video.VideoConfig` when the run is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.data.schema import SOURCES, TASKS
from vau_r1.sections import check


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
    task it is usable for. :attr:`task_list` is the effective tuple either way.
    """

    annotations: str
    video_root: str
    task: str | None = None
    tasks: tuple[str, ...] | None = None
    source: str | None = None
    sources: tuple[str, ...] | None = None
    prompt_preset: str = "default"
    max_samples: int | None = None
    shuffle: bool = True
    num_workers: int = 0
    cache_videos: bool = False
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
        check(self.max_samples is None or self.max_samples >= 1, "data.max_samples must be null (all) or >= 1")
        check(self.num_workers >= 0, "data.num_workers must be >= 0")
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
