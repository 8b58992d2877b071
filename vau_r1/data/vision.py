"""Torchvision-free preprocessing of a :class:`~vau_r1.data.video.VideoClip` into Qwen-VL video inputs.

Qwen3-VL and Qwen3.5 (``Qwen3VLVideoProcessor``) patch the same way with other settings: 16-pixel patches
and (0.5, 0.5, 0.5) mean/std; ``vau_r1.model.families.video_processing_for(model.config)`` gives the arguments
of :func:`video_inputs` for a loaded model (the training dataset, eval items, probes and ``predict`` use it).

Reproduces transformers' ``Qwen2VLVideoProcessor`` (``models/qwen2_vl/video_processing_qwen2_vl.py``) for
frames that :func:`~vau_r1.data.video.load_clip` has already resized: rescale by 1/255, normalise with the
OpenAI-CLIP mean/std, pad T to a multiple of ``temporal_patch_size`` by repeating the last frame, and
flatten into patches in the processor's order. transformers' own video processor needs torchvision, which
this library does not require.

Token arithmetic: one video token per ``merge_size × merge_size`` block of ``patch_size`` patches per
``temporal_patch_size`` frames, i.e. ``t * h * w // merge_size**2`` for a grid ``(t, h, w)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vau_r1.data.video import VideoClip, VideoConfig, clip_size, smart_nframes

#: CLIP normalisation used by Qwen2/2.5-VL (``transformers.image_utils.OPENAI_CLIP_MEAN`` / ``_STD``).
OPENAI_CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

__all__ = ["OPENAI_CLIP_MEAN", "OPENAI_CLIP_STD", "VideoInputs", "count_video_tokens", "patchify", "video_inputs"]


@dataclass(frozen=True, eq=False)
class VideoInputs:
    """Model inputs for one video, as the Qwen2.5-VL processor would return them.

    Attributes:
        pixel_values_videos: float32 [N, C * temporal_patch_size * patch_size**2], N = t * h * w.
        video_grid_thw: int64 [1, 3], the (t, h, w) grid in patches.
        second_per_grid_ts: seconds per temporal patch, ``temporal_patch_size / sample_fps``.
        num_video_tokens: ``<|video_pad|>`` tokens the prompt needs, ``t * h * w // merge_size**2``.
        timestamps_s: presentation time (s) of each sampled frame (``VideoClip.timestamps_s``), before the
            temporal padding; Qwen3-VL / Qwen3.5 prompts write each temporal patch's mean time as text.
        temporal_patch_size: frames per temporal patch the patches were built with.
    """

    pixel_values_videos: torch.Tensor
    video_grid_thw: torch.Tensor
    second_per_grid_ts: float
    num_video_tokens: int
    timestamps_s: tuple[float, ...] = ()
    temporal_patch_size: int = 2


def patchify(
    frames: torch.Tensor, patch_size: int = 14, temporal_patch_size: int = 2, merge_size: int = 2
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Flatten normalised frames [T, C, H, W] into Qwen's patch sequence.

    T is padded to a multiple of ``temporal_patch_size`` by repeating the last frame. Patches are ordered
    (t, h-block, w-block, h-in-block, w-in-block) and each holds (C, temporal, patch_y, patch_x) values,
    exactly as ``Qwen2VLVideoProcessor.patchify``.

    Returns:
        ``(patches [t*h*w, C*tp*p*p], (t, h, w))``.

    Raises:
        ValueError: H or W is not a multiple of ``patch_size * merge_size``.
    """
    num_frames, channels, height, width = frames.shape
    factor = patch_size * merge_size
    if height % factor or width % factor:
        raise ValueError(
            f"frame size {height}x{width} is not a multiple of patch_size*merge_size={factor}; "
            f"load the clip with video.image_factor={factor}"
        )
    if pad := -num_frames % temporal_patch_size:
        frames = torch.cat([frames, frames[-1:].expand(pad, -1, -1, -1)])
    grid_t, grid_h, grid_w = (num_frames + pad) // temporal_patch_size, height // patch_size, width // patch_size
    patches = frames.reshape(
        grid_t, temporal_patch_size, channels,
        grid_h // merge_size, merge_size, patch_size,
        grid_w // merge_size, merge_size, patch_size,
    )  # fmt: skip
    # -> (t, h-block, w-block, h-in-block, w-in-block, C, temporal, patch_y, patch_x)
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    flat = patches.reshape(grid_t * grid_h * grid_w, channels * temporal_patch_size * patch_size * patch_size)
    return flat, (grid_t, grid_h, grid_w)


def video_inputs(
    clip: VideoClip,
    patch_size: int = 14,
    temporal_patch_size: int = 2,
    merge_size: int = 2,
    image_mean: Sequence[float] = OPENAI_CLIP_MEAN,
    image_std: Sequence[float] = OPENAI_CLIP_STD,
) -> VideoInputs:
    """Rescale (1/255), normalise and patchify a clip's frames into Qwen2/2.5-VL video inputs.

    Args:
        clip: frames float32 [T, 3, H, W] in 0..255 with H, W multiples of ``patch_size * merge_size``.
        patch_size: spatial patch of the vision encoder, in pixels.
        temporal_patch_size: frames per temporal patch.
        merge_size: patches merged per side into one language-model token.
        image_mean: per-channel mean on the 0..1 scale.
        image_std: per-channel std on the 0..1 scale.

    Returns:
        :class:`VideoInputs`; ``second_per_grid_ts`` uses the clip's ``sample_fps``, ``timestamps_s`` its frame times.
    """
    mean = torch.tensor(image_mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(image_std, dtype=torch.float32).view(1, -1, 1, 1)
    normalised = (clip.frames.float() / 255.0 - mean) / std
    patches, grid = patchify(normalised, patch_size, temporal_patch_size, merge_size)
    return VideoInputs(
        pixel_values_videos=patches,
        video_grid_thw=torch.tensor([grid], dtype=torch.long),
        second_per_grid_ts=temporal_patch_size / clip.sample_fps,
        num_video_tokens=math.prod(grid) // merge_size**2,
        timestamps_s=tuple(float(t) for t in clip.timestamps_s),
        temporal_patch_size=temporal_patch_size,
    )


def count_video_tokens(
    config: VideoConfig,
    total_frames: int,
    video_fps: float,
    height: int,
    width: int,
    patch_size: int = 14,
    temporal_patch_size: int = 2,
    merge_size: int = 2,
) -> int:
    """Video tokens a ``height`` × ``width`` video will cost under ``config``, without decoding it.

    Uses the same frame count and resize rules as :func:`~vau_r1.data.video.load_clip`, so it equals
    ``video_inputs(load_clip(path, config)).num_video_tokens`` (for preflight memory planning).

    >>> count_video_tokens(VideoConfig(), total_frames=300, video_fps=30.0, height=360, width=640)  # 10 s
    2990

    Raises:
        ValueError: the video is too short for the config, or ``config.image_factor`` is not
            ``patch_size * merge_size``.
    """
    if config.image_factor != patch_size * merge_size:
        raise ValueError(
            f"video.image_factor={config.image_factor} must equal patch_size*merge_size={patch_size * merge_size}"
        )
    nframes = smart_nframes(config, total_frames, video_fps)
    resized_h, resized_w = clip_size(config, nframes, height, width)
    grid_t = math.ceil(nframes / temporal_patch_size)
    return grid_t * (resized_h // patch_size) * (resized_w // patch_size) // merge_size**2
