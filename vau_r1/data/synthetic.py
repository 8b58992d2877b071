"""Tiny synthetic mp4 videos with a known timeline, for tests and CPU demos (written with PyAV).

A video is a grey background with a slowly moving gradient and seeded low-amplitude noise. An optional
*event* is a bright coloured square that is visible in exactly the frames whose time ``index / fps``
lies in ``[start_s, end_s)``. The background is grey (R = G = B), so a saturated event colour is never
confused with it; :func:`event_flags` finds the event in decoded frames and :func:`expected_event_flags`
says where it should be.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

__all__ = ["event_flags", "expected_event_flags", "write_synthetic_video"]

_CODEC_OPTIONS = {
    # High quality, single-threaded (bit-identical output for a seed), no B-frames (simple seeking).
    "libx264": {"crf": "18", "preset": "ultrafast", "threads": "1", "bf": "0"},
    "mpeg4": {"threads": "1", "bf": "0"},
}
_MPEG4_BIT_RATE = 2_000_000  # bits/s; mpeg4 has no constant-quality option here


def write_synthetic_video(
    path: str | Path,
    duration_s: float = 6.0,
    fps: float = 8.0,
    width: int = 64,
    height: int = 48,
    event: tuple[float, float] | None = None,
    color: tuple[int, int, int] = (255, 0, 0),
    seed: int = 0,
    codec: str = "libx264",
) -> Path:
    """Write an mp4 of ``round(duration_s * fps)`` frames; the same arguments give the same bytes.

    Args:
        path: output file (parent folders are created).
        duration_s: length in seconds.
        fps: frame rate (e.g. 8.0, or 30000/1001).
        width: frame width in pixels; even (yuv420p).
        height: frame height in pixels; even (yuv420p).
        event: ``(start_s, end_s)``: the square is shown in frames with ``start_s <= i / fps < end_s``;
            ``None`` for a normal video.
        color: RGB colour of the event square.
        seed: seeds the background noise and the square's position.
        codec: ``"libx264"`` or ``"mpeg4"``.

    Returns:
        The written path.
    """
    if codec not in _CODEC_OPTIONS:
        raise ValueError(f"codec={codec!r} is not supported; use one of {sorted(_CODEC_OPTIONS)}")
    if width % 2 or height % 2 or min(width, height) < 16:
        raise ValueError(f"width={width}, height={height}: use even sizes of at least 16 px (yuv420p)")
    if duration_s <= 0 or fps <= 0:
        raise ValueError(f"duration_s={duration_s} and fps={fps} must be positive")
    if event is not None and not 0 <= event[0] < event[1]:
        raise ValueError(f"event={event} must be (start_s, end_s) with 0 <= start_s < end_s")
    import av

    rate = Fraction(fps).limit_denominator(1001)
    num_frames = round(duration_s * fps)
    frames = _render(num_frames, float(rate), width, height, event, color, seed)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = dict(_CODEC_OPTIONS[codec])
        if codec == "mpeg4":
            stream.bit_rate = _MPEG4_BIT_RATE
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def _render(
    num_frames: int, fps: float, width: int, height: int, event: tuple[float, float] | None,
    color: tuple[int, int, int], seed: int,
) -> np.ndarray:  # fmt: skip
    """uint8 RGB frames [T, H, W, 3]: grey moving gradient + noise, and the event square in its window."""
    rng = np.random.default_rng(seed)
    side = max(8, min(width, height) // 2) // 2 * 2  # even, so chroma subsampling keeps its edges
    top = int(rng.integers(0, (height - side) // 2 + 1)) * 2
    left = int(rng.integers(0, (width - side) // 2 + 1)) * 2
    columns = np.arange(width)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for index in range(num_frames):
        gradient = 60 + 30 * np.sin(2 * np.pi * (columns / width + index / max(num_frames, 1)))
        grey = gradient[None, :] + rng.normal(0, 4, size=(height, width))
        frames[index] = np.clip(grey, 0, 255).astype(np.uint8)[..., None]
        if event is not None and event[0] <= index / fps < event[1]:
            frames[index, top : top + side, left : left + side] = color
    return frames


def event_flags(
    frames: torch.Tensor, color: tuple[int, int, int] = (255, 0, 0), tol: float = 60.0, min_fraction: float = 0.05
) -> list[bool]:
    """Which frames show the event: at least ``min_fraction`` of pixels within ``tol`` of ``color``.

    Args:
        frames: [T, 3, H, W] with values 0..255 (e.g. ``VideoClip.frames``).
        color: RGB event colour.
        tol: largest per-channel difference that still counts as the event colour.
        min_fraction: share of the frame the square must cover; the writer's square covers about 1/4
            of a 4:3 frame.
    """
    target = torch.tensor(color, dtype=torch.float32).view(1, 3, 1, 1)
    close = ((frames.float() - target).abs() <= tol).all(dim=1)  # [T, H, W]
    return (close.float().mean(dim=(1, 2)) >= min_fraction).tolist()


def expected_event_flags(timestamps_s: Sequence[float], event: tuple[float, float] | None) -> list[bool]:
    """Whether each timestamp lies in the event window ``[start_s, end_s)`` (all False without an event).

    >>> expected_event_flags([0.5, 2.0, 3.9, 4.0], (2.0, 4.0))
    [False, True, True, False]
    """
    if event is None:
        return [False] * len(timestamps_s)
    return [event[0] <= t < event[1] for t in timestamps_s]
