"""Video decoding backends: ``backend(path, select, transform) -> DecodedFrames``, chosen by ``VideoConfig.backend``.

Two ship: ``decord`` (what the paper's code and qwen-vl-utils use) and ``pyav`` (:mod:`vau_r1.data.pyav`, the
fallback for files decord cannot read); :func:`register_backend` adds others (e.g. torchcodec).

A backend decodes only the selected frames, one at a time, turns each upright (display-matrix rotation;
decord does this itself) and hands it to ``transform`` at once (the caller resizes it there), so peak memory
follows the output, not the source. It reports each frame's presentation time, so variable-frame-rate
video gets true timestamps.
"""

from __future__ import annotations

import functools

import numpy as np

from vau_r1.data.frames import Backend, DecodedFrames, FrameSelector, FrameTransform, PreferNextBackend, upright
from vau_r1.data.pyav import read_pyav

__all__ = [
    "BACKENDS", "READ_AHEAD_LIMIT_BYTES", "Backend", "DecodedFrames", "FrameSelector", "FrameTransform",
    "PreferNextBackend", "backend_for", "register_backend", "upright",
]  # fmt: skip

#: Source RGB bytes of the sampled frames above which decord hands a densely sampled file to the next backend.
#: decord 0.6 decodes ahead of a slow consumer (``VideoReader::NextFrameImpl`` keeps pushing packets while no
#: frame is ready, and its decoder thread turns them all into RGB frames): when most of the stream is sampled,
#: nearly all of it is buffered at full size (~2.5 GB for 120 frames of 4K), whatever the output size.
READ_AHEAD_LIMIT_BYTES = 1 << 30


def _source_size(path: str) -> tuple[int, int]:
    """(height, width) of the first video stream from the container header; nothing is decoded."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        return int(stream.codec_context.height), int(stream.codec_context.width)


def _check_read_ahead(path: str, indices: tuple[int, ...], total_frames: int, limit_bytes: int) -> None:
    """Raise :class:`PreferNextBackend` when decord would buffer more than ``limit_bytes`` of source frames."""
    if 2 * len(indices) <= total_frames:  # sparse sampling: decord seeks, and read-ahead stays small
        return
    height, width = _source_size(path)
    need_bytes = len(indices) * height * width * 3
    if need_bytes > limit_bytes:
        raise PreferNextBackend(
            f"{len(indices)} of {total_frames} frames of {width}x{height} sampled: decord would buffer about "
            f"{need_bytes / 2**30:.1f} GiB of decoded frames ahead (limit {limit_bytes / 2**30:.1f} GiB)"
        )


def _read_decord(
    path: str, select: FrameSelector, transform: FrameTransform, read_ahead_limit_bytes: int | None = None
) -> DecodedFrames:
    """decord reader: select indices from (len, avg fps) as qwen-vl-utils, then decode them one by one.

    ``get_batch([i])`` per index walks the stream exactly as one ``get_batch(indices)`` does (seek when the
    next index is not ahead, else decode forward), so the frames are the same, but only one is held at a time.
    decord applies the display rotation itself (a ``transpose`` filter); on 90°/270° this build fails a
    buffer-size check instead, and :mod:`vau_r1.data.pyav` reads those files. With ``read_ahead_limit_bytes``
    (set by :func:`backend_for` when a next backend exists), a dense selection of large frames is declined
    (:class:`PreferNextBackend`) before any frame is decoded.
    """
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0))
    total_frames, video_fps = len(reader), float(reader.get_avg_fps())
    indices = tuple(int(i) for i in select(total_frames, video_fps))
    if read_ahead_limit_bytes is not None:
        _check_read_ahead(path, indices, total_frames, read_ahead_limit_bytes)
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


def backend_for(name: str, *, has_next: bool) -> Backend:
    """The reader registered as ``name``; decord declines dense 4K-class reads when ``has_next`` (a fallback)."""
    backend = BACKENDS[name]
    if backend is _read_decord and has_next:
        return functools.partial(_read_decord, read_ahead_limit_bytes=READ_AHEAD_LIMIT_BYTES)
    return backend


def register_backend(name: str, backend: Backend) -> None:
    """Make ``backend`` selectable as ``video.backend=<name>`` (e.g. a torchcodec reader)."""
    if name in BACKENDS:
        raise ValueError(f"video backend {name!r} is already registered; registered: {sorted(BACKENDS)}")
    BACKENDS[name] = backend
