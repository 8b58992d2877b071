"""Video sampling and decoding the way Qwen2/2.5-VL expects (qwen-vl-utils semantics), with a failure policy.

The frame-count and resolution rules reproduce ``qwen_vl_utils.vision_process`` (``smart_nframes``,
``smart_resize``, ``fetch_video`` with the decord reader; ``docs/paper.md`` §3), but every
constant is a :class:`VideoConfig` field, so train and eval settings live in config and in the run manifest.

Decoding runs in a worker thread under ``decode_timeout_s`` (decord can hang without an error), retries are
bounded by ``max_retries``, and every failure is a :class:`VideoError` naming the file, the cause and the fix.
:func:`load_clip_or_skip` turns failures into ``None`` plus a count in :class:`SkipStats`; it never
substitutes another sample.

Example::

    config = VideoConfig.from_preset("paper_train")
    clip = load_clip("video.mp4", config)          # clip.frames: float32 [T, 3, H, W], 0..255
    clip.timestamps_s, clip.second_per_grid_ts     # seconds; Qwen2.5-VL absolute-time input
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from vau_r1.data.backends import BACKENDS, Backend, DecodedFrames, FrameSelector, register_backend
from vau_r1.data.sampling import (
    PRESET_DIR,
    QWEN_DEFAULT_TOTAL_PIXELS,
    TEMPORAL_PATCH_SIZE,
    VideoConfig,
    clip_size,
    frame_indices,
    frame_pixel_budget,
    smart_nframes,
    smart_resize,
)

__all__ = [
    "BACKENDS", "PRESET_DIR", "QWEN_DEFAULT_TOTAL_PIXELS", "TEMPORAL_PATCH_SIZE", "Backend", "DecodedFrames",
    "FrameSelector", "SkipStats", "VideoClip", "VideoConfig", "VideoError", "VideoInfo", "clip_size",
    "frame_indices", "frame_pixel_budget", "load_clip", "load_clip_or_skip", "probe_video", "register_backend",
    "resize_frames", "smart_nframes", "smart_resize",
]  # fmt: skip

logger = logging.getLogger(__name__)

_RESIZE_CHUNK_FRAMES = 32  # frames resized at once, to bound the float32 working memory


class VideoError(RuntimeError):
    """A video that can't be used: missing, empty, corrupt, too short, or a decode that timed out.

    Attributes:
        path: the video file.
        cause: a short machine-readable cause (``missing``, ``empty``, ``corrupt``, ``no_frames``,
            ``bad_fps``, ``too_short``, ``bad_aspect``, ``timeout``), used as the skip-counter key.
    """

    def __init__(self, path: str | Path, cause: str, detail: str, fix: str) -> None:
        self.path, self.cause, self.detail, self.fix = str(path), cause, detail, fix
        super().__init__(f"cannot load video {self.path} ({cause}): {detail}. Fix: {fix}")

    def __reduce__(self) -> tuple[type[VideoError], tuple[str, str, str, str]]:
        # Rebuild from the fields, so the error survives pickling (worker processes).
        return type(self), (self.path, self.cause, self.detail, self.fix)


_ON_ERROR_FIX = "or set video.on_error=skip to drop such videos (they are counted in SkipStats)"
_RETRYABLE_CAUSES = frozenset({"corrupt", "timeout"})


def _call_with_timeout(fn: Callable[[], DecodedFrames], path: str, timeout_s: float) -> DecodedFrames:
    """Run ``fn`` in a daemon thread; give up after ``timeout_s`` (a hung decoder thread is abandoned)."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = fn()
        except Exception as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"video-decode:{Path(path).name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        logger.warning("abandoning a decoder thread still running after %.1f s on %s", timeout_s, path)
        raise VideoError(
            path,
            "timeout",
            f"decoding did not finish within {timeout_s:g} s",
            f"re-encode the file (ffmpeg -i in -c:v libx264 out.mp4), raise video.decode_timeout_s, {_ON_ERROR_FIX}",
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _decode(path: str, select: FrameSelector, backend: str, timeout_s: float, max_retries: int) -> DecodedFrames:
    """Decode with the named backend under a timeout; at most ``1 + max_retries`` bounded attempts."""
    read = BACKENDS.get(backend)
    if read is None:
        raise ValueError(f"unknown video backend {backend!r}; registered backends: {sorted(BACKENDS)}")

    def attempt() -> DecodedFrames:
        try:
            return read(path, select)
        except VideoError:
            raise
        except Exception as exc:  # decoder errors (decord.DECORDError, av.error.*) have no common base
            detail = f"{backend} failed: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
            raise VideoError(path, "corrupt", detail, f"re-encode or re-download the file, {_ON_ERROR_FIX}") from exc

    for attempt_no in range(max_retries + 1):
        try:
            return _call_with_timeout(attempt, path, timeout_s)
        except VideoError as err:
            if err.cause not in _RETRYABLE_CAUSES or attempt_no == max_retries:
                raise
            logger.warning("retrying video (attempt %d of %d): %s", attempt_no + 2, max_retries + 1, err)
    raise AssertionError("unreachable")


def _check_file(path: str | Path) -> str:
    """Fail fast, before any decoding, on a missing path, a folder or an empty file."""
    file = Path(path)
    if not file.exists():
        raise VideoError(file, "missing", "no such file", "check the video root/path (vau-r1 data check lists them)")
    if not file.is_file():
        raise VideoError(file, "missing", "not a regular file", "point the sample at the video file itself")
    if file.stat().st_size == 0:
        raise VideoError(file, "empty", "the file has 0 bytes", f"re-download or re-encode it, {_ON_ERROR_FIX}")
    return str(file)


def _check_stream(path: str, total_frames: int, video_fps: float) -> None:
    if total_frames <= 0:
        raise VideoError(path, "no_frames", "the video stream has zero frames", f"re-encode the file, {_ON_ERROR_FIX}")
    if not (math.isfinite(video_fps) and video_fps > 0):
        raise VideoError(
            path, "bad_fps", f"average frame rate is {video_fps}", f"re-mux with a frame rate, {_ON_ERROR_FIX}"
        )


# ---------------------------------------------------------------- clips


@dataclass(frozen=True, eq=False)
class VideoClip:
    """Sampled, resized frames of one video plus the timing the model and the rewards need.

    Attributes:
        frames: float32 [T, 3, H, W], integral values in 0..255; H and W are multiples of ``image_factor``.
        timestamps_s: time of each sampled frame, ``index / video_fps``, in seconds.
        frame_indices: index of each sampled frame in the stream.
        sample_fps: ``T / total_frames * video_fps`` (qwen-vl-utils), frames per second of the clip.
        duration_s: ``total_frames / video_fps``, in seconds.
        video_fps: average frame rate of the stream.
        total_frames: frames in the stream.
        path: the video file.
        original_size: (height, width) of the stream, in pixels.
    """

    frames: torch.Tensor
    timestamps_s: tuple[float, ...]
    frame_indices: tuple[int, ...]
    sample_fps: float
    duration_s: float
    video_fps: float
    total_frames: int
    path: str
    original_size: tuple[int, int]

    @property
    def second_per_grid_ts(self) -> float:
        """Seconds per temporal patch, ``2 / sample_fps``: Qwen2.5-VL's absolute-time (mRoPE) input."""
        return TEMPORAL_PATCH_SIZE / self.sample_fps


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 frames [T, 3, H, W] to ``size`` = (h, w) exactly as qwen-vl-utils does.

    qwen-vl-utils calls torchvision's ``transforms.functional.resize(..., BICUBIC, antialias=True)`` on the
    uint8 tensor: bicubic with antialias on float32, clamp to 0..255, round, back to uint8, then ``.float()``.
    (torchvision's v2 resize uses a native uint8 kernel on CPU instead, which differs by a few levels.)
    Returns float32 [T, 3, h, w]; works in chunks of frames to bound memory.
    """
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames.float()
    chunks = []
    for chunk in frames.split(_RESIZE_CHUNK_FRAMES):
        out = torch.nn.functional.interpolate(
            chunk.float(), size=size, mode="bicubic", align_corners=False, antialias=True
        )
        chunks.append(out.clamp_(0, 255).round_())
    return torch.cat(chunks)


def _select(path: str, config: VideoConfig, total_frames: int, video_fps: float) -> list[int]:
    _check_stream(path, total_frames, video_fps)
    try:
        nframes = smart_nframes(config, total_frames, video_fps)
    except ValueError as exc:
        raise VideoError(path, "too_short", str(exc), f"lower video.min_frames/nframes, {_ON_ERROR_FIX}") from exc
    return frame_indices(total_frames, nframes)


def load_clip(path: str | Path, config: VideoConfig | None = None) -> VideoClip:
    """Decode and resize the frames of one video as qwen-vl-utils ``fetch_video`` does with decord.

    Args:
        path: the video file.
        config: sampling settings (default: qwen-vl-utils defaults).

    Returns:
        The clip; ``frames`` is float32 [T, 3, H, W] with T = :func:`smart_nframes`.

    Raises:
        VideoError: missing/empty/corrupt file, zero frames, too few frames, or a decode timeout.
    """
    config = config or VideoConfig()
    path_str = _check_file(path)
    select = partial(_select, path_str, config)
    decoded = _decode(path_str, select, config.backend, config.decode_timeout_s, config.max_retries)
    nframes, height, width = len(decoded.indices), decoded.frames.shape[1], decoded.frames.shape[2]
    if decoded.frames.shape[0] != nframes:
        raise VideoError(
            path_str,
            "corrupt",
            f"asked for {nframes} frames, got {decoded.frames.shape[0]}",
            f"re-encode the file, {_ON_ERROR_FIX}",
        )
    try:
        size = clip_size(config, nframes, height, width)
    except ValueError as exc:
        raise VideoError(path_str, "bad_aspect", str(exc), f"crop or pad the video, {_ON_ERROR_FIX}") from exc
    frames = resize_frames(torch.from_numpy(decoded.frames).permute(0, 3, 1, 2), size)
    return VideoClip(
        frames=frames,
        timestamps_s=tuple(i / decoded.video_fps for i in decoded.indices),
        frame_indices=decoded.indices,
        sample_fps=nframes / max(decoded.total_frames, 1e-6) * decoded.video_fps,
        duration_s=decoded.total_frames / decoded.video_fps,
        video_fps=decoded.video_fps,
        total_frames=decoded.total_frames,
        path=path_str,
        original_size=(int(height), int(width)),
    )


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts from :func:`probe_video`: frame count, average fps, duration (s), size (px)."""

    num_frames: int
    fps: float
    duration_s: float
    width: int
    height: int


def probe_video(path: str | Path, timeout_s: float = 60.0, backend: str = "decord") -> VideoInfo:
    """Open a video and decode its first and last frames under ``timeout_s``; cheap integrity check.

    Raises:
        VideoError: the same causes as :func:`load_clip`.
    """
    path_str = _check_file(path)

    def select(total_frames: int, video_fps: float) -> list[int]:
        _check_stream(path_str, total_frames, video_fps)
        return sorted({0, total_frames - 1})

    decoded = _decode(path_str, select, backend, timeout_s, max_retries=0)
    height, width = decoded.frames.shape[1:3]
    return VideoInfo(
        decoded.total_frames, decoded.video_fps, decoded.total_frames / decoded.video_fps, int(width), int(height)
    )


# ---------------------------------------------------------------- failure policy


@dataclass
class SkipStats:
    """Counts of videos skipped under ``on_error=skip``, by cause, and the skipped paths.

    Not shared across processes: each DataLoader worker keeps its own; merge them with :meth:`update`.
    """

    counts: Counter[str] = field(default_factory=Counter)
    paths: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Videos skipped so far."""
        return sum(self.counts.values())

    def record(self, error: VideoError) -> None:
        """Count one skipped video."""
        self.counts[error.cause] += 1
        self.paths.append(error.path)

    def update(self, other: SkipStats) -> None:
        """Add another counter's skips (e.g. from a worker)."""
        self.counts.update(other.counts)
        self.paths.extend(other.paths)

    def as_metrics(self, prefix: str = "video/skipped") -> dict[str, int]:
        """``{prefix: total, f"{prefix}/{cause}": n, ...}`` for the metric logger."""
        return {prefix: self.total, **{f"{prefix}/{cause}": n for cause, n in sorted(self.counts.items())}}


def load_clip_or_skip(path: str | Path, config: VideoConfig, stats: SkipStats | None = None) -> VideoClip | None:
    """:func:`load_clip` under the config's failure policy.

    With ``on_error="skip"`` a :class:`VideoError` is logged as a warning (file and cause), counted in
    ``stats`` and turned into ``None``; the caller drops the sample. With ``on_error="raise"`` it propagates.
    """
    try:
        return load_clip(path, config)
    except VideoError as err:
        if config.on_error != "skip":
            raise
        logger.warning("skipping video: %s", err)
        if stats is not None:
            stats.record(err)
        return None
