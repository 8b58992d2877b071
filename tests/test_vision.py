"""Qwen2-VL patch layout, normalisation and token counts, checked against slow references and transformers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vau_r1.data.synthetic import write_synthetic_video
from vau_r1.data.video import VideoClip, VideoConfig, load_clip, resize_frames, smart_resize
from vau_r1.data.vision import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, count_video_tokens, patchify, video_inputs


def _clip(frames: torch.Tensor, sample_fps: float = 2.0) -> VideoClip:
    num_frames, _, height, width = frames.shape
    timestamps = tuple(i / sample_fps for i in range(num_frames))
    return VideoClip(frames, timestamps, tuple(range(num_frames)), sample_fps, num_frames / sample_fps,
                     sample_fps, num_frames, "synthetic", (height, width))  # fmt: skip


def _slow_patchify(frames: torch.Tensor, p: int = 14, tp: int = 2, m: int = 2) -> torch.Tensor:
    """Reference: loop over (t, block row, block col, row in block, col in block), each patch as (C, tp, p, p)."""
    rows = []
    for t in range(frames.shape[0] // tp):
        for block_y in range(frames.shape[2] // (p * m)):
            for block_x in range(frames.shape[3] // (p * m)):
                for in_y in range(m):
                    for in_x in range(m):
                        y, x = (block_y * m + in_y) * p, (block_x * m + in_x) * p
                        patch = frames[t * tp : (t + 1) * tp, :, y : y + p, x : x + p]  # [tp, C, p, p]
                        rows.append(patch.permute(1, 0, 2, 3).reshape(-1))
    return torch.stack(rows)


def test_patchify_matches_slow_reference() -> None:
    frames = torch.randn(4, 3, 56, 84, generator=torch.Generator().manual_seed(0))
    patches, grid = patchify(frames)
    assert grid == (2, 4, 6) and patches.shape == (2 * 4 * 6, 3 * 2 * 14 * 14)
    assert torch.equal(patches, _slow_patchify(frames))


def test_patchify_pads_time_by_repeating_the_last_frame() -> None:
    frames = torch.arange(3, dtype=torch.float32).view(3, 1, 1, 1).expand(3, 3, 28, 28)
    patches, grid = patchify(frames)
    assert grid == (2, 2, 2)
    last_group = patches[4:].reshape(4, 3, 2, 14, 14)  # second temporal group: frames 2 and its copy
    assert torch.all(last_group == 2.0)


def test_patchify_rejects_sizes_off_the_grid() -> None:
    with pytest.raises(ValueError, match="image_factor=28"):
        patchify(torch.zeros(2, 3, 42, 56))


def test_normalisation_uses_clip_mean_and_std() -> None:
    from transformers.image_utils import OPENAI_CLIP_MEAN as HF_MEAN
    from transformers.image_utils import OPENAI_CLIP_STD as HF_STD

    assert list(OPENAI_CLIP_MEAN) == list(HF_MEAN) and list(OPENAI_CLIP_STD) == list(HF_STD)
    inputs = video_inputs(_clip(torch.full((2, 3, 28, 28), 200.0)))
    per_channel = inputs.pixel_values_videos.reshape(-1, 3, 2 * 14 * 14)
    for channel in range(3):
        expected = (200.0 / 255.0 - OPENAI_CLIP_MEAN[channel]) / OPENAI_CLIP_STD[channel]
        assert torch.allclose(per_channel[:, channel], torch.tensor(expected), atol=1e-6)


def test_video_inputs_fields() -> None:
    inputs = video_inputs(_clip(torch.zeros(6, 3, 56, 112), sample_fps=0.5))
    assert inputs.video_grid_thw.dtype == torch.long and inputs.video_grid_thw.tolist() == [[3, 4, 8]]
    assert inputs.pixel_values_videos.dtype == torch.float32 and inputs.pixel_values_videos.shape == (96, 1176)
    # transformers' Qwen2-VL processor: <|video_pad|> count = grid_thw.prod() // merge_size**2
    assert inputs.num_video_tokens == int(inputs.video_grid_thw.prod()) // 4 == 24
    assert inputs.second_per_grid_ts == pytest.approx(4.0)  # 2 frames per patch at 0.5 fps


def test_layout_matches_transformers_image_processor_per_frame() -> None:
    """Each frame of a 2-frame clip, as an image through transformers' (torchvision-free) PIL processor.

    The image processor repeats one frame over the temporal patch, so temporal slot k of our video
    patches must equal slot 0 of frame k's image patches. Tolerance 1e-5 (float32 arithmetic order).
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    frames = torch.randint(0, 256, (2, 3, 56, 84), generator=torch.Generator().manual_seed(1)).float()
    ours = video_inputs(_clip(frames))
    processor = Qwen2VLImageProcessorPil(do_resize=False)
    for k in range(2):
        image = processor(images=[frames[k].to(torch.uint8).numpy()], return_tensors="pt")
        assert image["image_grid_thw"].tolist() == [[1, 4, 6]] == ours.video_grid_thw.tolist()
        theirs = image["pixel_values"].reshape(-1, 3, 2, 14, 14)[:, :, 0]
        assert torch.allclose(ours.pixel_values_videos.reshape(-1, 3, 2, 14, 14)[:, :, k], theirs, atol=1e-5)


@settings(max_examples=300, deadline=None)
@given(
    height=st.integers(28, 4000),
    width=st.integers(28, 4000),
    min_tokens=st.integers(1, 512),
    extra_tokens=st.integers(0, 16000),
)
def test_smart_resize_agrees_with_transformers(height: int, width: int, min_tokens: int, extra_tokens: int) -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

    if max(height, width) / min(height, width) > 200:
        return
    min_pixels, max_pixels = min_tokens * 784, (min_tokens + extra_tokens) * 784
    assert smart_resize(height, width, 28, min_pixels, max_pixels) == hf_smart_resize(
        height, width, 28, min_pixels, max_pixels
    )


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("paper_train", 2990),  # 20 frames of 364×644: 10 groups × 13×23 tokens
        ("paper_eval_tag", 2990),  # same frames: the 256·28² floor and 768·28² cap don't bind
        ("paper_eval_qa", 1495),  # 1 fps: 10 frames
    ],
)
def test_count_video_tokens_hand_computed(preset: str, expected: int) -> None:
    config = VideoConfig.from_preset(preset)
    assert count_video_tokens(config, total_frames=300, video_fps=30.0, height=360, width=640) == expected


def test_count_video_tokens_long_video_hits_the_min_pixels_floor() -> None:
    # 5 min at 30 fps: 600 frames; budget 2809856/600*2 < int(12544*1.05) = 13171 → 84×140 frames (3×5 tokens)
    config = VideoConfig.from_preset("paper_train")
    assert count_video_tokens(config, 9000, 30.0, 1080, 1920) == 300 * 15


def test_count_video_tokens_rejects_mismatched_factor() -> None:
    with pytest.raises(ValueError, match="image_factor"):
        count_video_tokens(VideoConfig(image_factor=32), 300, 30.0, 360, 640)


@pytest.mark.parametrize(
    ("preset", "size", "duration_s"),
    [("tiny_cpu", (64, 48), 8.0), ("paper_train", (160, 120), 5.0), ("paper_eval_qa", (64, 48), 6.0)],
)
def test_count_matches_decoded_clip(tmp_path: Path, preset: str, size: tuple[int, int], duration_s: float) -> None:
    config = VideoConfig.from_preset(preset)
    path = write_synthetic_video(tmp_path / "v.mp4", duration_s, 10.0, *size, event=(1.0, 2.0))
    inputs = video_inputs(load_clip(path, config))
    predicted = count_video_tokens(config, round(duration_s * 10), 10.0, size[1], size[0])
    assert inputs.num_video_tokens == predicted
    t, h, w = inputs.video_grid_thw[0].tolist()
    assert inputs.pixel_values_videos.shape[0] == t * h * w and predicted == math.prod((t, h, w)) // 4
    if preset == "tiny_cpu":  # 8 s at 2 fps on 56×56 frames: 16 frames, 32 tokens
        assert (t, h, w) == (8, 4, 4) and predicted == 32


def test_resize_frames_is_clamped_integral_and_identity_at_same_size() -> None:
    frames = torch.zeros(3, 3, 48, 64, dtype=torch.uint8)
    frames[:, :, ::2] = 255  # stripes: bicubic overshoots, which must be clamped
    resized = resize_frames(frames, (28, 56))
    assert resized.dtype == torch.float32 and resized.shape == (3, 3, 28, 56)
    assert torch.equal(resized, resized.round()) and resized.min() >= 0 and resized.max() <= 255
    assert torch.equal(resize_frames(frames, (48, 64)), frames.float())
    flat = torch.full((2, 3, 48, 64), 77, dtype=torch.uint8)
    assert torch.equal(resize_frames(flat, (280, 392)), torch.full((2, 3, 280, 392), 77.0))
