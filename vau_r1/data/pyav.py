"""The PyAV (FFmpeg) video backend: reads what decord cannot (AV1, MPEG-TS, GIF, raw H.264, rotated, tall, ...).

:func:`read_pyav` follows the :data:`vau_r1.data.backends.Backend` contract: one demux pass counts the frames
(no decoding), ``select`` picks indices from (count, average fps) exactly as for decord, then one decode pass
converts only the selected frames to RGB, turns each upright and hands it to ``transform`` at once. Frames
that are not selected are decoded (codecs need them) but never converted or kept.
"""

from __future__ import annotations

from fractions import Fraction

from vau_r1.data.frames import DecodedFrames, FrameSelector, FrameTransform, upright

__all__ = ["read_pyav"]


def _open(path: str):  # -> (container, stream); av types are untyped
    import av

    container = av.open(path)
    if not container.streams.video:
        container.close()
        raise ValueError("the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _count_and_rate(path: str) -> tuple[int, float]:
    """Frames in the first video stream (demuxed packets with data) and its average frame rate."""
    container, stream = _open(path)
    with container:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        total_frames = sum(1 for packet in container.demux(stream) if packet.size)
        duration_s = float(container.duration) / 1e6 if container.duration else 0.0
    if rate:
        return total_frames, float(rate)
    return total_frames, (total_frames / duration_s if duration_s > 0 else 0.0)


def _seconds(pts: int | None, time_base: Fraction | None) -> float | None:
    return None if pts is None or time_base is None else float(pts * time_base)


def read_pyav(path: str, select: FrameSelector, transform: FrameTransform) -> DecodedFrames:
    """Decode the selected frames of ``path`` with PyAV (see the module docstring).

    Raises:
        ValueError: no video stream; RuntimeError: the stream ends before a selected frame;
        ``av.error.FFmpegError``: FFmpeg cannot read the file.
    """
    total_frames, video_fps = _count_and_rate(path)
    indices = tuple(int(i) for i in select(total_frames, video_fps))
    wanted, last = set(indices), max(indices, default=-1)
    frames, times, size, first_s, decoded = [], [], (0, 0), None, 0
    container, stream = _open(path)
    with container:
        for ordinal, frame in enumerate(container.decode(stream)):
            decoded = ordinal + 1
            seconds = _seconds(frame.pts, frame.time_base)
            if ordinal == 0:
                first_s = seconds
            if ordinal in wanted:
                image = upright(frame.to_ndarray(format="rgb24"), int(frame.rotation or 0))
                size = (int(image.shape[0]), int(image.shape[1]))
                frames.append(transform(image))
                known = seconds is not None and first_s is not None
                times.append(seconds - first_s if known else ordinal / video_fps)
            if ordinal >= last:
                break
    if len(frames) != len(indices):
        raise RuntimeError(
            f"the stream ended after {decoded} decoded frames, before frame "
            f"{indices[len(frames)]} of the {total_frames} its container lists"
        )
    return DecodedFrames(frames, indices, tuple(float(t) for t in times), total_frames, video_fps, size)
