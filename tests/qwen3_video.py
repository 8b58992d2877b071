"""Videos and video-data checks shared by the Qwen3-VL and Qwen3.5 tests (used by ``tests/qwen3_family.py``).

:func:`clip` makes in-memory clips with chosen frame times. The checks compare the project's patching with settings
written out here (:data:`QWEN3_PATCHING`, the defaults of transformers 5.23's ``Qwen3VLVideoProcessor``) or with
that processor itself, not with the registry under test.
"""

from __future__ import annotations

import pytest
import torch

from vau_r1.data.mini_bench import write_mini_bench
from vau_r1.data.paths import resolve_video
from vau_r1.data.video import VideoClip, VideoConfig, load_clip
from vau_r1.data.vision import video_inputs
from vau_r1.eval.probes import Probe
from vau_r1.eval.runner import VideoItems
from vau_r1.model.families import get_family, video_processing_for
from vau_r1.tasks.dataset import VideoPromptDataset, load_training_samples

#: Qwen3VLVideoProcessor's settings (transformers 5.23 defaults), written out rather than read from the registry.
QWEN3_PATCHING = {"patch_size": 16, "temporal_patch_size": 2, "merge_size": 2, "image_mean": (0.5, 0.5, 0.5),
                  "image_std": (0.5, 0.5, 0.5)}  # fmt: skip


FPS = 2.0


def clip(indices: tuple[int, ...], video_fps: float = FPS, side: int = 56, seed: int = 0) -> VideoClip:
    """A clip of random frames sampled at stream ``indices`` of a ``video_fps`` stream (times ``index / fps``)."""
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (len(indices), 3, side, side), generator=gen).float()
    total = indices[-1] + 1
    return VideoClip(
        frames=frames,
        timestamps_s=tuple(i / video_fps for i in indices),
        frame_indices=indices,
        sample_fps=len(indices) / total * video_fps,
        duration_s=total / video_fps,
        video_fps=video_fps,
        total_frames=total,
        path="memory.mp4",
        original_size=(side, side),
    )


def check_video_processor_parity(family: str) -> None:
    """Our patches of a family-sized clip equal transformers' ``Qwen3VLVideoProcessor`` (skips without torchvision)."""
    try:
        import torchvision  # noqa: F401
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
    except Exception as exc:  # ImportError, or a RuntimeError from a torchvision built for another torch
        pytest.skip(
            f"torchvision is not importable ({type(exc).__name__}: {exc}); install a torchvision matching "
            "torch to compare with transformers' Qwen3-VL video processor"
        )
    settings = get_family(family)
    video = clip((0, 1, 2, 3, 4), side=64)  # 64 = 2 x patch 16 x merge 2: no resize needed
    ours = video_inputs(video, **settings.video_processing_kwargs())
    processor = Qwen3VLVideoProcessor()
    theirs = processor(videos=[video.frames], do_sample_frames=False, do_resize=False, return_tensors="pt")
    assert ours.video_grid_thw.tolist() == theirs["video_grid_thw"].tolist() == [[3, 4, 4]]
    assert torch.allclose(ours.pixel_values_videos, theirs["pixel_values_videos"], atol=1e-5)


def check_data_paths_patch_for_the_model(family: str, root) -> None:
    """Training items and eval items (clean and probed) of a real checkpoint's config carry Qwen3's patches.

    The clips are 64x64 (a multiple of 32, ``video.image_factor=32``): Qwen2.5-VL's 14-pixel patching cannot even
    cut them, so an item patched the old way fails instead of passing by chance.
    """
    processing = video_processing_for(get_family(family).load_class().config_class())  # no weights: the config
    assert processing == QWEN3_PATCHING
    csv = write_mini_bench(root, num_clips=2, duration_s=2.0, fps=4.0, width=64, height=64)
    config = VideoConfig(fps=2.0, min_pixels=1024, max_pixels=4096, total_pixels=None, image_factor=32)
    samples = load_training_samples(csv, "tag")
    expected = video_inputs(load_clip(resolve_video(root / "videos", samples[0]), config), **QWEN3_PATCHING)
    t = expected.video_grid_thw[0, 0]
    assert expected.video_grid_thw.tolist() == [[t, 4, 4]] and expected.pixel_values_videos.shape[1] == 3 * 2 * 16**2
    train = VideoPromptDataset(samples, root / "videos", "tag", config, video_processing=processing)[0].video
    evaluated = VideoItems(samples, root / "videos", config, video_processing=processing)[0].video
    for video in (train, evaluated):
        assert torch.equal(video.video_grid_thw, expected.video_grid_thw)
        assert torch.equal(video.pixel_values_videos, expected.pixel_values_videos)
    probed = VideoItems(samples, root / "videos", config, Probe.build("reverse", samples), video_processing=processing)
    assert probed[0].video.pixel_values_videos.shape == expected.pixel_values_videos.shape
    with pytest.raises(ValueError, match=r"patch_size\*merge_size=28"):  # the Qwen2.5-VL default
        VideoPromptDataset(samples, root / "videos", "tag", config)[0]
