"""Token counts for ``vau-r1 plan``: visual tokens of the run's videos (or the longest clip its settings allow)
and the prompt's text tokens, all without decoding a video or loading a model.

Visual tokens use :func:`vau_r1.data.vision.count_video_tokens` (the same frame-count and resize rules as
training). Real counts come from the synthetic mini split's settings (``data.mini_bench``) or from the videos
of ``data.annotations`` under ``data.video_root`` (:func:`vau_r1.data.video.probe_video` reads their size, fps
and length); the settings bound is the largest count over :data:`PLAUSIBLE_SIZES` and durations up to
``max_duration_s``.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vau_r1.data.video import VideoConfig
from vau_r1.data.vision import count_video_tokens

logger = logging.getLogger(__name__)

#: Source frame sizes (height, width) tried for the settings bound: 360p, 720p and 1080p, landscape.
PLAUSIBLE_SIZES: tuple[tuple[int, int], ...] = ((360, 640), (720, 1280), (1080, 1920))
#: Source frame rate assumed for the settings bound.
PLAUSIBLE_FPS = 30.0


@dataclass(frozen=True)
class VideoTokens:
    """Visual tokens per video: from real videos (``counts``, may be empty) and the settings bound."""

    counts: tuple[int, ...]
    source: str
    bound: int
    bound_clip: str

    @property
    def planned(self) -> int:
        """What the estimate uses: the largest real count, else the settings bound."""
        return max(self.counts) if self.counts else self.bound

    def summary(self) -> dict[str, Any]:
        """min/median/max of the real counts (when known) and the settings bound."""
        real = {"min": min(self.counts), "median": statistics.median(self.counts), "max": max(self.counts),
                "videos": len(self.counts)} if self.counts else None  # fmt: skip
        return {"from_data": real, "data_source": self.source, "settings_bound": self.bound,
                "bound_clip": self.bound_clip, "planned": self.planned}  # fmt: skip


def settings_bound(config: VideoConfig, max_duration_s: float) -> tuple[int, str]:
    """The most visual tokens any plausible clip up to ``max_duration_s`` costs under ``config``, and that clip."""
    best, clip = 0, ""
    durations = sorted({1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 240.0, 480.0, float(max_duration_s)})
    for duration_s in (d for d in durations if d <= max_duration_s):
        for height, width in PLAUSIBLE_SIZES:
            try:
                tokens = count_video_tokens(config, round(duration_s * PLAUSIBLE_FPS), PLAUSIBLE_FPS, height, width)
            except ValueError:
                continue  # too short for the frame rules
            if tokens > best:
                best, clip = tokens, f"{duration_s:g} s at {width}x{height}"
    return best, clip


def _probe_counts(config: VideoConfig, data: Any, max_videos: int) -> tuple[list[int], str]:
    """Visual tokens of up to ``max_videos`` videos of the annotation file that exist under ``video_root``."""
    from vau_r1.data.annotations import load_annotations
    from vau_r1.data.paths import resolve_video
    from vau_r1.data.video import VideoError, probe_video

    if not Path(data.annotations).is_file() or not Path(data.video_root).is_dir():
        return [], f"no annotations/videos at {data.annotations} / {data.video_root}"
    samples = load_annotations(data.annotations, source=data.source).samples
    counts: list[int] = []
    for sample in samples[:max_videos]:
        try:
            info = probe_video(resolve_video(data.video_root, sample), config.decode_timeout_s, config.backend,
                               config.fallback_backends)  # fmt: skip
            counts.append(count_video_tokens(config, info.num_frames, info.fps, info.height, info.width))
        except (FileNotFoundError, VideoError, ValueError) as error:
            logger.info("plan: skipping %s: %s", sample.video, str(error).splitlines()[0])
    return counts, f"{len(counts)} of the first {min(len(samples), max_videos)} videos of {data.annotations}"


def video_tokens(config: VideoConfig, data: Any, max_duration_s: float, max_videos: int) -> VideoTokens:
    """Visual tokens of the run's videos (mini split settings or probed files) and the settings bound."""
    bound, clip = settings_bound(config, max_duration_s)
    mini = data.mini_bench
    if mini is not None:  # every synthetic clip has the same size and length
        frames = round(mini.duration_s * mini.fps)
        count = count_video_tokens(config, frames, mini.fps, mini.height, mini.width)
        return VideoTokens((count,) * mini.num_clips, f"data.mini_bench ({mini.num_clips} clips)", bound, clip)
    counts, source = _probe_counts(config, data, max_videos)
    return VideoTokens(tuple(counts), source, bound, clip)


@dataclass
class _FakeVideo:
    """One visual token's worth of video inputs: enough for :func:`encode_prompts` to render the prompt."""

    pixel_values_videos: torch.Tensor
    video_grid_thw: torch.Tensor
    second_per_grid_ts: float = 1.0
    timestamps_s: tuple[float, ...] = (0.0, 0.5)
    temporal_patch_size: int = 2


def prompt_text_tokens(tokenizer: Any, family: str, tasks: Sequence[str], preset: str, samples: Sequence[Any]) -> int:
    """The longest prompt's text tokens (everything but the visual tokens) over ``samples`` and ``tasks``."""
    from vau_r1.data.annotations import skip_reason
    from vau_r1.model.processing import encode_prompts
    from vau_r1.tasks.messages import build_messages

    fake = _FakeVideo(torch.zeros(4, 3 * 2 * 14 * 14), torch.tensor([[1, 2, 2]]))
    longest = 0
    for task in tasks:
        for sample in samples:
            if skip_reason(sample, task, purpose="train") is not None:
                continue
            messages = build_messages(sample, task, preset, video=sample.video, duration_s=60.0)
            ids = encode_prompts(tokenizer, [messages], [fake], family=family).input_ids
            longest = max(longest, ids.shape[1] - 1)
    return longest
