"""The logic of ``vau-r1 data cache``: decode every video of an annotation file once, into the decode cache.

:func:`fill_cache` loads each distinct video referenced by the rows through
:func:`vau_r1.data.cache.load_clip_cached` with the given sampling settings, in ``workers`` processes, and
returns a :class:`FillReport`: how many entries it wrote, how many were already cached (and verified: the
read checks shape, size and CRC), and which videos failed and why. A later training or evaluation run with
the same settings and ``video_cache_dir`` then reads every clip instead of decoding it. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.data.cache import cache_counts, load_clip_cached, sweep_partial
from vau_r1.data.decoding import VideoError
from vau_r1.data.paths import resolve_video
from vau_r1.data.sampling import VideoConfig
from vau_r1.data.schema import VideoSample

__all__ = ["FillReport", "fill_cache", "format_fill_report"]

logger = logging.getLogger(__name__)
_LOG_EVERY = 50  # videos between progress messages


@dataclass
class FillReport:
    """Outcome of :func:`fill_cache`: ``videos == written + cached + len(failed)``.

    Attributes:
        cache_dir: the cache folder.
        videos: distinct videos referenced by the rows.
        written: entries decoded and written now.
        cached: entries already there (read back and verified).
        replaced: corrupt entries found and written again (counted in ``written`` too).
        swept: temporary folders of killed writes (older than an hour) deleted first.
        failed: ``{"video", "error"}`` of each video that is missing or does not decode.
    """

    cache_dir: str
    videos: int = 0
    written: int = 0
    cached: int = 0
    replaced: int = 0
    swept: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """``1`` when a video failed, else ``0``."""
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return dataclasses.asdict(self)


def _cache_one(job: tuple[str, str, VideoConfig, str]) -> tuple[str, str, str | None]:
    """``(video, status, error)`` of one video: status ``written``, ``cached``, ``replaced`` or ``failed``."""
    video, path, config, cache_dir = job
    before = cache_counts()
    try:
        load_clip_cached(path, config, cache_dir)
    except VideoError as error:
        return video, "failed", str(error)
    after = cache_counts()
    if after.get("hit", 0) > before.get("hit", 0):
        return video, "cached", None
    replaced = after.get("corrupt", 0) > before.get("corrupt", 0)
    return video, "replaced" if replaced else "written", None


def _jobs(samples: Iterable[VideoSample], video_root: str | Path, config: VideoConfig, cache_dir: str,
          report: FillReport) -> list[tuple[str, str, VideoConfig, str]]:  # fmt: skip
    """One job per distinct resolved video; a video that cannot be found is recorded as failed at once."""
    jobs, seen = [], set()
    for sample in samples:
        if sample.video in seen:
            continue
        seen.add(sample.video)
        try:
            jobs.append((sample.video, str(resolve_video(video_root, sample)), config, cache_dir))
        except FileNotFoundError as error:
            report.failed.append({"video": sample.video, "error": str(error).splitlines()[0]})
    report.videos = len(seen)
    return jobs


def fill_cache(samples: Iterable[VideoSample], video_root: str | Path, config: VideoConfig,
               cache_dir: str | Path, workers: int = 1) -> FillReport:  # fmt: skip
    """Decode each distinct video of ``samples`` once into ``cache_dir`` (``workers`` processes; 1: inline).

    Failures never stop the run: the video is listed in :attr:`FillReport.failed` with the error
    (``on_error`` is set to ``raise`` here so that every failure is seen and reported).
    """
    config = dataclasses.replace(config, on_error="raise")
    report = FillReport(str(cache_dir), swept=sweep_partial(cache_dir) if Path(cache_dir).is_dir() else 0)
    jobs = _jobs(samples, video_root, config, str(cache_dir), report)
    if workers > 1 and len(jobs) > 1:
        context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            _tally(report, pool.map(_cache_one, jobs), len(jobs))
    else:
        _tally(report, map(_cache_one, jobs), len(jobs))
    return report


def _tally(report: FillReport, results: Iterable[tuple[str, str, str | None]], total: int) -> None:
    for done, (video, status, error) in enumerate(results, start=1):
        if status == "failed":
            report.failed.append({"video": video, "error": error or ""})
        elif status == "cached":
            report.cached += 1
        else:
            report.written += 1
            report.replaced += status == "replaced"
        if done % _LOG_EVERY == 0:
            logger.info("cached %d of %d videos", done, total)


def format_fill_report(report: FillReport) -> str:
    """The human form: one summary line, then one line per failed video."""
    lines = [f"{report.videos} videos → {report.cache_dir}: {report.written} written, {report.cached} already "
             f"cached, {report.replaced} corrupt entries replaced, {report.swept} partial writes swept, "
             f"{len(report.failed)} failed"]  # fmt: skip
    lines += [f"  failed {item['video']}: {item['error'].splitlines()[0]}" for item in report.failed]
    return "\n".join(lines)
