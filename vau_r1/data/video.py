"""Video sampling and decoding the way Qwen2/2.5-VL expects (qwen-vl-utils semantics), with a failure policy.

The frame-count and resolution rules reproduce ``qwen_vl_utils.vision_process`` (``smart_nframes``,
``smart_resize``, ``fetch_video`` with the decord reader; ``docs/paper.md`` §3), but every
constant is a :class:`VideoConfig` field, so train and eval settings live in config and in the run manifest.

Only the sampled frames are decoded, each resized as soon as it is decoded (memory follows the output, not
the source), display rotation is applied, and timestamps are the frames' presentation times. Decoding
(:mod:`vau_r1.data.decoding`) falls back from decord to PyAV for files decord cannot read, runs in a
worker process killed at ``decode_timeout_s`` (decord can hang without an error), retries at most
``max_retries`` times, and every failure is a :class:`VideoError` naming the file, the cause and the fix.
:func:`load_clip_or_skip` turns failures into ``None`` plus a count in :class:`SkipStats`; it never
substitutes another sample.

Example::

    config = VideoConfig.from_preset("paper_train")
    clip = load_clip("video.mp4", config)          # clip.frames: float32 [T, 3, H, W], 0..255
    clip.timestamps_s, clip.second_per_grid_ts     # seconds; Qwen2.5-VL absolute-time input
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vau_r1.data.backends import BACKENDS, Backend, DecodedFrames, FrameSelector, FrameTransform, register_backend
from vau_r1.data.decoding import ON_ERROR_FIX, VideoError, backend_counts, check_file, check_stream, decode
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
    "FrameSelector", "FrameTransform", "SkipStats", "VideoClip", "VideoConfig", "VideoError", "VideoInfo",
    "backend_counts", "clip_size", "frame_indices", "frame_pixel_budget", "load_clip", "load_clip_or_skip",
    "probe_video", "register_backend", "resize_frames", "smart_nframes", "smart_resize",
]  # fmt: skip

logger = logging.getLogger(__name__)

_RESIZE_CHUNK_FRAMES = 32  # frames resized at once, to bound the float32 working memory
_RESIZE_BUDGET_BYTES = 256 * 2**20  # float32 source pixels resized at once, at most (one frame at least)
#: A presentation time this close (s) to ``index / video_fps`` is reported as exactly that (the CFR grid).
_GRID_TOLERANCE_S = 1e-3


# ---------------------------------------------------------------- clips


@dataclass(frozen=True, eq=False)
class VideoClip:
    """Sampled, resized frames of one video plus the timing the model and the rewards need.

    Attributes:
        frames: float32 [T, 3, H, W], integral values in 0..255; H and W are multiples of ``image_factor``.
        timestamps_s: presentation time of each sampled frame, seconds after the first frame (exactly
            ``index / video_fps`` for constant-frame-rate video; the true times for variable-rate video).
        frame_indices: index of each sampled frame in the stream.
        sample_fps: ``T / total_frames * video_fps`` (qwen-vl-utils), frames per second of the clip.
        duration_s: ``total_frames / video_fps``, in seconds.
        video_fps: average frame rate of the stream.
        total_frames: frames in the stream.
        path: the video file.
        original_size: (height, width) of the upright stream (display rotation applied), in pixels.
        backend: the backend that decoded it (``None`` for a clip built in memory).
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
    backend: str | None = None

    @property
    def second_per_grid_ts(self) -> float:
        """Seconds per temporal patch, ``2 / sample_fps``: Qwen2.5-VL's absolute-time (mRoPE) input."""
        return TEMPORAL_PATCH_SIZE / self.sample_fps


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 frames [T, 3, H, W] to ``size`` = (h, w) exactly as qwen-vl-utils does.

    qwen-vl-utils calls torchvision's ``transforms.functional.resize(..., BICUBIC, antialias=True)`` on the
    uint8 tensor: bicubic with antialias on float32, clamp to 0..255, round, back to uint8, then ``.float()``.
    (torchvision's v2 resize uses a native uint8 kernel on CPU instead, which differs by a few levels.)
    Each frame is resized on its own, so resizing in chunks of any size (as :func:`load_clip` does, while
    decoding) gives the same values as resizing the stack. Returns float32 [T, 3, h, w].
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


class _ClipFrames:
    """The selector and frame sink of one :func:`load_clip`: qwen-vl-utils sampling and resizing.

    Decoded frames are resized in chunks as they arrive: up to 32 frames (as before, so ordinary files give
    the same tensors, values and layout) and at most :data:`_RESIZE_BUDGET_BYTES` of float32 source pixels
    (a 4K frame is ~100 MB), so memory follows the output. ``select`` starts over when a fallback backend
    reopens the file.
    """

    def __init__(self, path: str, config: VideoConfig) -> None:
        self.path, self.config, self.nframes = path, config, 0
        self.size: tuple[int, int] | None = None
        self._pending: list[torch.Tensor] = []
        self._chunks: list[torch.Tensor] = []

    def select(self, total_frames: int, video_fps: float) -> list[int]:
        """Indices to decode: ``frame_indices(total, smart_nframes(...))``; refuses too-short streams."""
        check_stream(self.path, total_frames, video_fps)
        try:
            self.nframes = smart_nframes(self.config, total_frames, video_fps)
        except ValueError as exc:
            fix = f"lower video.min_frames/nframes, {ON_ERROR_FIX}"
            raise VideoError(self.path, "too_short", str(exc), fix) from exc
        self.size, self._pending, self._chunks = None, [], []
        return frame_indices(total_frames, self.nframes)

    def __call__(self, frame: np.ndarray) -> None:
        """Take one decoded uint8 [H, W, 3] frame; the clip size is fixed by the first frame."""
        height, width = int(frame.shape[0]), int(frame.shape[1])
        if self.size is None:
            try:
                self.size = clip_size(self.config, self.nframes, height, width)
            except ValueError as exc:
                fix = f"crop or pad the video, {ON_ERROR_FIX}"
                raise VideoError(self.path, "bad_aspect", str(exc), fix) from exc
        self._pending.append(torch.from_numpy(frame))
        chunk_frames = max(1, min(_RESIZE_CHUNK_FRAMES, _RESIZE_BUDGET_BYTES // (height * width * 3 * 4)))
        if len(self._pending) >= chunk_frames:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            assert self.size is not None  # set by the first frame
            self._chunks.append(resize_frames(torch.stack(self._pending).permute(0, 3, 1, 2), self.size))
            self._pending = []

    def frames(self) -> torch.Tensor:
        """All resized frames, float32 [T, 3, h, w]."""
        self._flush()
        return torch.cat(self._chunks)


def _grid_times(decoded: DecodedFrames) -> tuple[float, ...]:
    """Presentation times, each snapped to ``index / video_fps`` when within 1 ms of it (CFR: the old values)."""
    times = []
    for index, time_s in zip(decoded.indices, decoded.timestamps_s, strict=True):
        grid = index / decoded.video_fps
        times.append(grid if abs(time_s - grid) <= _GRID_TOLERANCE_S else float(time_s))
    return tuple(times)


def _chain(config: VideoConfig) -> tuple[str, ...]:
    return (config.backend, *config.fallback_backends)


def load_clip(path: str | Path, config: VideoConfig | None = None) -> VideoClip:
    """Decode and resize the frames of one video as qwen-vl-utils ``fetch_video`` does with decord.

    Only the sampled frames are decoded, each resized as soon as it is decoded, so memory follows the output.
    Files decord cannot read are decoded by ``config.fallback_backends`` (logged and counted).

    Args:
        path: the video file.
        config: sampling settings (default: qwen-vl-utils defaults).

    Returns:
        The clip; ``frames`` is float32 [T, 3, H, W] with T = :func:`smart_nframes`.

    Raises:
        VideoError: missing/empty/unreadable/corrupt file, zero frames, too few frames, an aspect ratio over
            ``max_ratio``, or a decode timeout.
    """
    config = config or VideoConfig()
    path_str = check_file(path)
    clip_frames = _ClipFrames(path_str, config)
    outcome = decode(
        path_str, clip_frames.select, clip_frames, _chain(config), config.decode_timeout_s, config.max_retries
    )
    decoded = outcome.frames
    nframes = len(decoded.indices)
    return VideoClip(
        frames=clip_frames.frames(),
        timestamps_s=_grid_times(decoded),
        frame_indices=decoded.indices,
        sample_fps=nframes / max(decoded.total_frames, 1e-6) * decoded.video_fps,
        duration_s=decoded.total_frames / decoded.video_fps,
        video_fps=decoded.video_fps,
        total_frames=decoded.total_frames,
        path=path_str,
        original_size=decoded.size,
        backend=outcome.backend,
    )


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts from :func:`probe_video`: frame count, average fps, duration (s), upright size (px)."""

    num_frames: int
    fps: float
    duration_s: float
    width: int
    height: int


def probe_video(
    path: str | Path, timeout_s: float = 60.0, backend: str = "decord", fallback_backends: tuple[str, ...] = ("pyav",)
) -> VideoInfo:
    """Open a video and decode its first and last frames under ``timeout_s``; a cheap readability check.

    It does not apply the sampling rules (frame count, aspect ratio); ``vau-r1 data check`` uses
    :func:`load_clip` for that.

    Raises:
        VideoError: the same causes as :func:`load_clip`, except the sampling rules.
    """
    path_str = check_file(path)

    def select(total_frames: int, video_fps: float) -> list[int]:
        check_stream(path_str, total_frames, video_fps)
        return sorted({0, total_frames - 1})

    decoded = decode(path_str, select, lambda frame: None, (backend, *fallback_backends), timeout_s).frames
    height, width = decoded.size
    return VideoInfo(decoded.total_frames, decoded.video_fps, decoded.total_frames / decoded.video_fps, width, height)


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
