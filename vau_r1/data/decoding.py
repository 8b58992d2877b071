"""Decoding one video under the failure policy: backend fallback, a real timeout, bounded retries, clear errors.

:func:`decode` tries ``VideoConfig.backend`` and then each of ``VideoConfig.fallback_backends`` (decord,
then PyAV by default): a file decord cannot open is read by PyAV, logged, and counted in
:func:`backend_counts`; it is the same sample, not a substitute. When no backend can read a file, the
:class:`VideoError` names every backend tried with its reason, and says ``corrupt`` only when a backend did.
Each backend runs in a worker process killed at ``decode_timeout_s`` (:mod:`vau_r1.data.decode_worker`), so
a hung decoder is really stopped, and retries run one after the other.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from vau_r1.data.backends import BACKENDS, DecodedFrames, FrameSelector, FrameTransform, PreferNextBackend, backend_for
from vau_r1.data.decode_worker import DecodeTimeout, run_backend

__all__ = ["ON_ERROR_FIX", "Decoded", "VideoError", "backend_counts", "check_file", "check_stream", "decode"]

logger = logging.getLogger("vau_r1.data.video")

ON_ERROR_FIX = "or set video.on_error=skip to drop such videos (they are counted in SkipStats)"
_RETRYABLE_CAUSES = frozenset({"corrupt", "unreadable", "timeout"})
_CORRUPT_WORDS = ("invalid data", "moov atom not found", "corrupt")  # what FFmpeg/decord say of damaged files

#: Videos decoded per backend in this process, plus ``fallback``: those the first backend could not read.
_BACKEND_COUNTS: Counter[str] = Counter()


class VideoError(RuntimeError):
    """A video that can't be used: missing, empty, unreadable, corrupt, too short, or a decode that timed out.

    Attributes:
        path: the video file.
        cause: a short machine-readable cause (``missing``, ``empty``, ``unreadable``, ``corrupt``,
            ``no_frames``, ``bad_fps``, ``too_short``, ``bad_aspect``, ``timeout``), used as the skip-counter key.
    """

    def __init__(self, path: str | Path, cause: str, detail: str, fix: str) -> None:
        self.path, self.cause, self.detail, self.fix = str(path), cause, detail, fix
        super().__init__(f"cannot load video {self.path} ({cause}): {detail}. Fix: {fix}")

    def __reduce__(self) -> tuple[type[VideoError], tuple[str, str, str, str]]:
        # Rebuild from the fields, so the error survives pickling (worker processes).
        return type(self), (self.path, self.cause, self.detail, self.fix)


def backend_counts() -> dict[str, int]:
    """Videos decoded so far in this process by backend name, plus ``fallback`` (read by a fallback backend).

    Each DataLoader worker process keeps its own counts.
    """
    return dict(_BACKEND_COUNTS)


def check_file(path: str | Path) -> str:
    """Fail fast, before any decoding, on a missing path, a folder or an empty file."""
    file = Path(path)
    if not file.exists():
        raise VideoError(file, "missing", "no such file", "check the video root/path (vau-r1 data check lists them)")
    if not file.is_file():
        raise VideoError(file, "missing", "not a regular file", "point the sample at the video file itself")
    if file.stat().st_size == 0:
        raise VideoError(file, "empty", "the file has 0 bytes", f"re-download or re-encode it, {ON_ERROR_FIX}")
    return str(file)


def check_stream(path: str, total_frames: int, video_fps: float) -> None:
    """Refuse a stream with no frames or without a usable average frame rate."""
    if total_frames <= 0:
        raise VideoError(path, "no_frames", "the video stream has zero frames", f"re-encode the file, {ON_ERROR_FIX}")
    if not (math.isfinite(video_fps) and video_fps > 0):
        raise VideoError(
            path, "bad_fps", f"average frame rate is {video_fps}", f"re-mux with a frame rate, {ON_ERROR_FIX}"
        )


@dataclass(frozen=True, eq=False)
class Decoded:
    """One decode: the frames, the backend that read them, and (backend, reason) of each that could not."""

    frames: DecodedFrames
    backend: str
    failures: tuple[tuple[str, str], ...]


def _reason(exc: BaseException) -> str:
    """``Type: first line``, plus a later line that says the data is damaged (decord puts FFmpeg's there)."""
    lines = [line.strip() for line in str(exc).strip().splitlines()] or [""]
    damaged = [line for line in lines[1:] if any(word in line.lower() for word in _CORRUPT_WORDS)]
    return f"{type(exc).__name__}: {lines[0][:300]}" + (f" ({damaged[0][:200]})" if damaged else "")


def _unreadable(path: str, failures: list[tuple[str, str]]) -> VideoError:
    """The error when no backend could read ``path``: each backend tried, with its reason."""
    detail = "; ".join(f"{name} failed: {reason}" for name, reason in failures)
    if any(word in reason.lower() for _, reason in failures for word in _CORRUPT_WORDS):
        return VideoError(path, "corrupt", detail, f"re-encode or re-download the file, {ON_ERROR_FIX}")
    fix = f"re-encode the file (ffmpeg -i in -c:v libx264 -pix_fmt yuv420p out.mp4), {ON_ERROR_FIX}"
    return VideoError(path, "unreadable", f"no backend could read it: {detail}", fix)


def _read_any(
    path: str, select: FrameSelector, transform: FrameTransform, chain: tuple[str, ...], timeout_s: float
) -> Decoded:
    """Try each backend of ``chain`` in turn, each in a worker process limited to ``timeout_s``.

    A :class:`VideoError` (a sampling rule, e.g. too short) and a timeout stop at once; a backend error, a
    crashed worker or a backend that declines the file (:class:`PreferNextBackend`) moves on to the next one.
    """
    failures: list[tuple[str, str]] = []
    for position, name in enumerate(chain):
        backend = backend_for(name, has_next=position + 1 < len(chain))
        try:
            frames = run_backend(backend, path, select, transform, timeout_s)
        except (VideoError, DecodeTimeout):
            raise
        except PreferNextBackend as exc:
            failures.append((name, f"declined: {exc}"))
            continue
        except Exception as exc:  # decoder errors (decord.DECORDError, av.error.*) have no common base
            failures.append((name, _reason(exc)))
            continue
        if len(frames.frames) == len(frames.indices) == len(frames.timestamps_s):
            return Decoded(frames, name, tuple(failures))
        failures.append((name, f"asked for {len(frames.indices)} frames, got {len(frames.frames)}"))
    raise _unreadable(path, failures)


def _timeout_error(path: str, timeout_s: float, exc: DecodeTimeout) -> VideoError:
    fix = f"re-encode the file (ffmpeg -i in -c:v libx264 out.mp4), raise video.decode_timeout_s, {ON_ERROR_FIX}"
    return VideoError(path, "timeout", f"decoding did not finish within {timeout_s:g} s ({exc})", fix)


def decode(
    path: str,
    select: FrameSelector,
    transform: FrameTransform,
    chain: tuple[str, ...],
    timeout_s: float,
    max_retries: int = 0,
) -> Decoded:
    """Decode with the first backend of ``chain`` that can; at most ``1 + max_retries`` attempts, never overlapping.

    Raises:
        ValueError: a backend name that is not registered.
        VideoError: no backend could read the file, a sampling rule refused it, or every attempt timed out.
    """
    chain = tuple(dict.fromkeys(chain))  # each backend once, in order
    unknown = [name for name in chain if name not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown video backend(s) {unknown}; registered backends: {sorted(BACKENDS)}")
    for attempt_no in range(max_retries + 1):
        try:
            outcome = _read_any(path, select, transform, chain, timeout_s)
            break
        except DecodeTimeout as exc:
            err = _timeout_error(path, timeout_s, exc)
        except VideoError as exc:
            err = exc
        if err.cause not in _RETRYABLE_CAUSES or attempt_no == max_retries:
            raise err
        logger.warning("retrying video (attempt %d of %d): %s", attempt_no + 2, max_retries + 1, err)
    for name, reason in outcome.failures:
        logger.warning("%s did not decode %s (%s); decoded it with %s instead", name, path, reason, outcome.backend)
    _BACKEND_COUNTS[outcome.backend] += 1
    _BACKEND_COUNTS["fallback"] += bool(outcome.failures)
    return outcome
