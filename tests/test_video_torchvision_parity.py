"""Parity with the reference pipeline: qwen-vl-utils resizing (torchvision) + transformers' Qwen2-VL video processor.

Needs torchvision, which the library itself does not use; the whole module skips, with the reason, where
torchvision can't be imported (for example a CPU-only torch without a matching torchvision build).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

try:
    import torchvision.transforms.functional as tv_functional
    from torchvision.transforms import InterpolationMode
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
except Exception as exc:  # ImportError, or a RuntimeError from a torchvision built for another torch
    pytest.skip(
        f"torchvision is not importable ({type(exc).__name__}: {exc}); install a torchvision matching torch "
        "to run the parity checks against qwen-vl-utils + transformers",
        allow_module_level=True,
    )

from vau_r1.data.synthetic import write_synthetic_video
from vau_r1.data.video import VideoConfig, clip_size, frame_indices, load_clip, resize_frames, smart_nframes
from vau_r1.data.vision import video_inputs

CONFIGS = {
    "default": VideoConfig(),
    "paper_train": VideoConfig.from_preset("paper_train"),
    "budget_binds": VideoConfig(min_pixels=784, total_pixels=8 * 3136),
}


@pytest.fixture(scope="module")
def video_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_video(tmp_path_factory.mktemp("tv") / "v.mp4", 4.0, 10.0, 160, 120, event=(1.0, 2.5))


def _qwen_vl_utils_frames(path: Path, config: VideoConfig) -> torch.Tensor:
    """What qwen-vl-utils ``fetch_video`` returns with decord: v1 ``resize`` (bicubic, antialias), then float."""
    import decord

    reader = decord.VideoReader(str(path))
    nframes = smart_nframes(config, len(reader), reader.get_avg_fps())
    raw = torch.from_numpy(reader.get_batch(frame_indices(len(reader), nframes)).asnumpy()).permute(0, 3, 1, 2)
    size = list(clip_size(config, nframes, raw.shape[-2], raw.shape[-1]))
    return tv_functional.resize(raw, size, interpolation=InterpolationMode.BICUBIC, antialias=True).float()


def test_resize_equals_torchvision_uint8_path() -> None:
    frames = torch.randint(0, 256, (5, 3, 48, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for size in [(280, 392), (28, 56), (56, 56)]:
        expected = tv_functional.resize(frames, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        assert torch.equal(resize_frames(frames, size), expected.float())  # exact: same kernel, clamp, round


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_inputs_match_transformers_video_processor(video_path: Path, name: str) -> None:
    config = CONFIGS[name]
    reference_frames = _qwen_vl_utils_frames(video_path, config)
    clip = load_clip(video_path, config)
    assert torch.equal(clip.frames, reference_frames)
    # The paper's trainer sets the processor's pixel bounds to 3136 / 12845056, so its resize is a no-op
    # on frames already sized by qwen-vl-utils (docs/paper.md §3.1).
    processor = Qwen2VLVideoProcessor(min_pixels=3136, max_pixels=12845056)
    theirs = processor(
        videos=[reference_frames], do_sample_frames=False, cap_pixels_per_frame=False, return_tensors="pt"
    )
    ours = video_inputs(clip)
    assert ours.video_grid_thw.tolist() == theirs["video_grid_thw"].tolist()
    # Tolerance 1e-5 after normalisation: identical resized inputs, only the float32 order of the fused
    # rescale+normalise differs (measured ~1e-7). One uint8 level would be ~1.5e-2.
    assert torch.allclose(ours.pixel_values_videos, theirs["pixel_values_videos"], atol=1e-5)
