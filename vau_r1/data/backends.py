"""Video decoding backends: ``backend(path, select) -> DecodedFrames``, selected by ``VideoConfig.backend``.

Only decord ships (as the paper's code uses); :func:`register_backend` adds others (torchcodec, PyAV).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class DecodedFrames:
    """What a backend returns: the selected frames and the stream facts used to select them.

    Attributes:
        frames: uint8 array [T, H, W, 3] (RGB).
        indices: the decoded frame indices, one per frame of ``frames``.
        total_frames: frames in the stream.
        video_fps: average frame rate of the stream.
    """

    frames: np.ndarray
    indices: tuple[int, ...]
    total_frames: int
    video_fps: float


#: ``select(total_frames, video_fps) -> indices``; it may raise :class:`VideoError` (e.g. too few frames).
FrameSelector = Callable[[int, float], Sequence[int]]
#: ``backend(path, select) -> DecodedFrames``; runs in the decode worker thread.
Backend = Callable[[str, FrameSelector], DecodedFrames]


def _read_decord(path: str, select: FrameSelector) -> DecodedFrames:
    """decord reader: open, select indices from (len, avg fps), then one ``get_batch`` (as qwen-vl-utils)."""
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0))
    total_frames, video_fps = len(reader), float(reader.get_avg_fps())
    indices = tuple(int(i) for i in select(total_frames, video_fps))
    frames = reader.get_batch(list(indices)).asnumpy()
    return DecodedFrames(frames, indices, total_frames, video_fps)


#: Decoding backends by name (``VideoConfig.backend``); add one with :func:`register_backend`.
BACKENDS: dict[str, Backend] = {"decord": _read_decord}


def register_backend(name: str, backend: Backend) -> None:
    """Make ``backend`` selectable as ``video.backend=<name>`` (e.g. a torchcodec or PyAV reader)."""
    if name in BACKENDS:
        raise ValueError(f"video backend {name!r} is already registered; registered: {sorted(BACKENDS)}")
    BACKENDS[name] = backend
