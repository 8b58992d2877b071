"""Video decoding backends: ``backend(path, select, transform) -> DecodedFrames``, chosen by ``VideoConfig.backend``.

Two ship: ``decord`` (what the paper's code and qwen-vl-utils use) and ``pyav`` (:mod:`vau_r1.data.pyav`, the
fallback for files decord cannot read); :func:`register_backend` adds others (e.g. torchcodec).

A backend decodes only the selected frames, one at a time, turns each upright (display-matrix rotation;
decord does this itself) and hands it to ``transform`` at once (the caller resizes it there), so peak memory
follows the output, not the source. It reports each frame's presentation time, so variable-frame-rate
video gets true timestamps.
"""

from __future__ import annotations

import numpy as np

from vau_r1.data.frames import Backend, DecodedFrames, FrameSelector, FrameTransform, upright
from vau_r1.data.pyav import read_pyav

__all__ = [
    "BACKENDS", "Backend", "DecodedFrames", "FrameSelector", "FrameTransform", "register_backend", "upright",
]  # fmt: skip


def _read_decord(path: str, select: FrameSelector, transform: FrameTransform) -> DecodedFrames:
    """decord reader: select indices from (len, avg fps) as qwen-vl-utils, then decode them one by one.

    ``get_batch([i])`` per index walks the stream exactly as one ``get_batch(indices)`` does (seek when the
    next index is not ahead, else decode forward), so the frames are the same, but only one is held at a time.
    decord applies the display rotation itself (a ``transpose`` filter); on 90°/270° this build fails a
    buffer-size check instead, and :mod:`vau_r1.data.pyav` reads those files.
    """
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0))
    total_frames, video_fps = len(reader), float(reader.get_avg_fps())
    indices = tuple(int(i) for i in select(total_frames, video_fps))
    frames, size = [], (0, 0)
    for index in indices:
        frame = reader.get_batch([index]).asnumpy()[0]
        size = (int(frame.shape[0]), int(frame.shape[1]))
        frames.append(transform(frame))
    starts = reader.get_frame_timestamp([0, *indices])[:, 0].astype(np.float64)
    timestamps = tuple(float(t) for t in starts[1:] - starts[0])
    return DecodedFrames(frames, indices, timestamps, total_frames, video_fps, size)


#: Decoding backends by name (``VideoConfig.backend``); add one with :func:`register_backend`.
BACKENDS: dict[str, Backend] = {"decord": _read_decord, "pyav": read_pyav}


def register_backend(name: str, backend: Backend) -> None:
    """Make ``backend`` selectable as ``video.backend=<name>`` (e.g. a torchcodec reader)."""
    if name in BACKENDS:
        raise ValueError(f"video backend {name!r} is already registered; registered: {sorted(BACKENDS)}")
    BACKENDS[name] = backend
