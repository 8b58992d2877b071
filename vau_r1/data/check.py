"""The logic of ``vau-r1 data check``: per-task usable counts, skipped rows and (optionally) video decoding.

:func:`check_table` returns a :class:`CheckReport`; :meth:`CheckReport.to_dict` is the ``--json``
output and :func:`format_report` the human one. Nothing here prints.

The video check loads each video with :func:`vau_r1.data.video.load_clip` and the training sampling
settings (``paper_train`` unless given), the same call training makes, so a video passes exactly when
training would accept it (too few frames, an aspect ratio over ``max_ratio``, undecodable, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vau_r1.data.annotations import AnnotationTable, SkippedRow
from vau_r1.data.paths import resolve_video
from vau_r1.data.schema import TASKS, VideoSample

if TYPE_CHECKING:
    from vau_r1.data.sampling import VideoConfig

__all__ = ["CheckReport", "VideoCheck", "VideoFailure", "check_table", "check_videos", "format_report"]

logger = logging.getLogger(__name__)

#: Default limit for decoding one video, in seconds.
DEFAULT_DECODE_TIMEOUT_S = 30.0
#: Video preset whose rules the check applies when none is given: training's (``configs/train.yaml``).
DEFAULT_VIDEO_PRESET = "paper_train"
_LOG_EVERY = 100  # videos between progress messages


@dataclass(frozen=True)
class VideoFailure:
    """A video that is missing or does not decode; ``error`` is the message to show."""

    video: str
    error: str


@dataclass
class VideoCheck:
    """Outcome of loading every referenced video: ``checked == ok + len(failed)``.

    ``backends`` counts the loaded videos by the backend that decoded them (``pyav`` for those decord
    could not read: a fallback, not a failure).
    """

    checked: int = 0
    ok: int = 0
    failed: list[VideoFailure] = field(default_factory=list)
    backends: dict[str, int] = field(default_factory=dict)


@dataclass
class CheckReport:
    """Summary of one annotation file.

    Attributes:
        file: the annotation file (or Hub address) checked.
        rows: number of data rows.
        source_counts: rows per source (``unknown`` for rows with no source).
        usable: usable rows per task for evaluation (``tag`` = rows with a valid interval).
        usable_train: usable rows per task for training (``tag`` includes normal videos).
        skipped: rows left out of each task (evaluation rules), with reasons.
        videos: the video check, or ``None`` when no video folder was given.
    """

    file: str
    rows: int
    source_counts: dict[str, int]
    usable: dict[str, int]
    usable_train: dict[str, int]
    skipped: list[SkippedRow]
    videos: VideoCheck | None = None

    @property
    def exit_code(self) -> int:
        """``1`` when a video is missing or undecodable, else ``0``."""
        return 1 if self.videos is not None and self.videos.failed else 0

    def to_dict(self) -> dict:
        """The JSON form: ``{"rows", "usable", "skipped", ...}``; ``videos`` only when checked."""
        result = {
            "file": self.file,
            "rows": self.rows,
            "source_counts": self.source_counts,
            "usable": self.usable,
            "usable_train": self.usable_train,
            "skipped": [asdict(row) for row in self.skipped],
        }
        if self.videos is not None:
            result["videos"] = asdict(self.videos)
        return result


def check_videos(
    samples: Iterable[VideoSample],
    video_root: str | Path,
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S,
    video_config: VideoConfig | None = None,
) -> VideoCheck:
    """Resolve and load each sample's video as training does; a video training refuses is a failure.

    Args:
        samples: the rows whose videos to check (every row of the file, usable or not).
        video_root: folder holding the videos (see :func:`vau_r1.data.paths.resolve_video`).
        decode_timeout_s: limit for decoding one video, in seconds (replaces the config's).
        video_config: the sampling rules to apply (default: the ``paper_train`` preset, training's).
    """
    import dataclasses

    from vau_r1.data.video import VideoConfig, VideoError, load_clip  # imported here: pulls in the decoders

    config = video_config or VideoConfig.from_preset(DEFAULT_VIDEO_PRESET)
    config = dataclasses.replace(config, decode_timeout_s=decode_timeout_s, on_error="raise")
    result = VideoCheck()
    for sample in samples:
        result.checked += 1
        try:
            clip = load_clip(resolve_video(video_root, sample), config)
        except (FileNotFoundError, VideoError) as err:
            result.failed.append(VideoFailure(sample.video, str(err)))
        else:
            result.ok += 1
            backend = clip.backend or "unknown"
            result.backends[backend] = result.backends.get(backend, 0) + 1
        if result.checked % _LOG_EVERY == 0:
            logger.info("checked %d videos, %d failed", result.checked, len(result.failed))
    return result


def check_table(
    table: AnnotationTable,
    video_root: str | Path | None = None,
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S,
    video_config: VideoConfig | None = None,
) -> CheckReport:
    """Count usable rows per task, list skipped rows and, with ``video_root``, check every video.

    ``video_config`` is the sampling rules the videos must meet (default: ``paper_train``, training's).
    """
    return CheckReport(
        file=table.path,
        rows=len(table),
        source_counts=table.source_counts(),
        usable={task: len(table.usable(task, "eval")) for task in TASKS},
        usable_train={task: len(table.usable(task, "train")) for task in TASKS},
        skipped=[row for task in TASKS for row in table.skipped(task, "eval")],
        videos=None if video_root is None else check_videos(table.samples, video_root, decode_timeout_s, video_config),
    )


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Left-aligned text columns; the last column is not padded."""
    widths = [max(len(line[column]) for line in (header, *rows)) for column in range(len(header) - 1)]
    lines = [header, tuple("-" * len(name) for name in header), *rows]
    padded = (tuple(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)) for line in lines)
    return ["  ".join((*cells, line[-1])) for cells, line in zip(padded, lines, strict=True)]


def format_report(report: CheckReport) -> str:
    """The human-readable report: counts, a table of skipped rows, then failed videos."""
    sources = ", ".join(f"{name} {count}" for name, count in report.source_counts.items())
    usable = ", ".join(f"{task} {count}" for task, count in report.usable.items())
    lines = [
        f"file: {report.file}",
        f"rows: {report.rows} ({sources or 'none'})",
        f"usable rows (evaluation): {usable}",
        f"usable rows for tag training (normal videos target [-1, -1]): {report.usable_train['tag']}",
        f"skipped (evaluation rules): {len(report.skipped)}",
    ]
    if report.skipped:
        # The table shows file and row already; drop them from parse messages ("<file> row 7: ...").
        rows = [
            (str(row.row), row.video, row.task, row.reason.removeprefix(f"{report.file} row {row.row}: "))
            for row in report.skipped
        ]
        lines += ["", *_table(("row", "video", "task", "reason"), rows)]
    if report.videos is not None:
        videos = report.videos
        lines += ["", f"videos: checked {videos.checked}, ok {videos.ok}, failed {len(videos.failed)}"]
        if videos.backends:
            lines.append("decoded by: " + ", ".join(f"{name} {n}" for name, n in sorted(videos.backends.items())))
        if videos.failed:
            failures = [(failure.video, failure.error.replace("\n", " ")) for failure in videos.failed]
            lines += _table(("video", "error"), failures)
    return "\n".join(lines)
