"""Qwen3-VL / Qwen3.5 video text: each temporal patch's time written before its own vision block.

What ``Qwen3VLProcessor.replace_video_token`` (transformers 5.23) does to the chat template's ``<|video_pad|>``:
for every temporal patch, ``<{t:.1f} seconds><|vision_start|>`` + one pad + ``<|vision_end|>`` (the pads are
expanded to ``h * w // merge_size**2`` by :mod:`vau_r1.model.processing`), inside the template's own
``<|vision_start|>`` … ``<|vision_end|>``. ``t`` comes from the video's own frame times (``timestamps_s``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vau_r1.model.tokenizer import VIDEO_PAD_TOKEN, VISION_END_TOKEN, VISION_START_TOKEN

__all__ = ["frame_blocks", "patch_timestamps_s", "timestamp_text"]


def patch_timestamps_s(timestamps_s: Sequence[float], temporal_patch_size: int = 2) -> list[float]:
    """Time (s) of each temporal patch, as ``Qwen3VLProcessor._calculate_timestamps`` computes it.

    The frame list is padded to a multiple of ``temporal_patch_size`` by repeating the last frame (as the
    patches are), and each patch gets the mean of its first and last frame's time.

    >>> patch_timestamps_s([0.0, 0.5, 1.0, 1.5, 2.0])
    [0.25, 1.25, 2.0]
    """
    times = [float(t) for t in timestamps_s]
    times += times[-1:] * (-len(times) % temporal_patch_size)
    return [(times[i] + times[i + temporal_patch_size - 1]) / 2 for i in range(0, len(times), temporal_patch_size)]


def frame_blocks(video: Any, merge_size: int, sample: int) -> tuple[str, list[int]]:
    """The timestamped per-patch text that replaces one ``<|video_pad|>``, and the pads of each of its blocks."""
    t, h, w = (int(x) for x in video.video_grid_thw.reshape(-1).tolist())
    timestamps = getattr(video, "timestamps_s", None)
    if not timestamps:
        raise ValueError(
            f"sample {sample}: this model family writes each frame's time into the prompt but the video has no "
            "timestamps_s; build its inputs with vau_r1.data.vision.video_inputs(clip, ...)"
        )
    times = patch_timestamps_s(timestamps, int(getattr(video, "temporal_patch_size", 2)))
    if len(times) != t:
        raise ValueError(f"sample {sample}: {len(timestamps)} frame timestamps give {len(times)} patches, grid t={t}")
    block = VISION_START_TOKEN + VIDEO_PAD_TOKEN + VISION_END_TOKEN
    return "".join(f"<{time_s:.1f} seconds>{block}" for time_s in times), [h * w // merge_size**2] * t


def timestamp_text(text: str, videos: Sequence[Any], merge_size: int, sample: int) -> tuple[str, list[int]]:
    """Replace the i-th ``<|video_pad|>`` of ``text`` by video i's timestamped frame blocks (Qwen3-VL layout)."""
    pieces = text.split(VIDEO_PAD_TOKEN)
    if len(pieces) - 1 != len(videos):
        raise ValueError(
            f"sample {sample}: the rendered prompt has {len(pieces) - 1} video placeholder(s) but {len(videos)} "
            "video(s) were given; pass one video per {'type': 'video'} content part"
        )
    out, counts = [pieces[0]], []
    for video, piece in zip(videos, pieces[1:], strict=True):
        blocks, block_counts = frame_blocks(video, merge_size, sample)
        out += [blocks, piece]
        counts += block_counts
    return "".join(out), counts
