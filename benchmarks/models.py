"""The models and prompts the benchmark suite measures on: one small Qwen2.5-VL at the VAU regime.

``bench_model("small")`` is a random Qwen2.5-VL with the real Qwen2.5 tokenizer (151,936 logits per
token), a 4-layer 256-wide decoder and a 4-block 128-wide vision tower: small enough for one CPU thread,
large enough that the vision pass, the prompt prefill and the decode loop keep realistic proportions.
``bench_model("proportional")`` (the P1/P2 headline) keeps the per-token cost shares of Qwen2.5-VL-3B instead:
there the ``lm_head`` (2,048 × 151,936) is about 10% of a token's multiply-adds (the 36 decoder layers about
2.8 G) and the vision tower costs about 0.8× the language model per visual token. "small" has the real
vocabulary on a 4-layer 256-wide decoder, so its ``lm_head`` is ~92% of a token's work and every measure there
is a measure of the vocabulary projection; "proportional" pads the tiny BPE to 4,096 logits on a 6-layer
256-wide decoder (``lm_head`` ≈ 12% of a token) with an 8-block vision tower (≈ 0.9× the decoder per visual
token). Both are reported: the suite's ``full_vocab`` rows are "small".
``bench_model("smoke")`` is the test suite's tiny model (seconds; used to check exactness in CI).
``video_prompt(tokenizer, video_tokens, batch)`` builds ``batch`` left-padded video prompts of about
``video_tokens`` visual tokens each (a synthetic clip at 2 fps), as the trainer encodes them.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vau_r1.data.video import VideoClip
from vau_r1.data.vision import video_inputs
from vau_r1.model.processing import encode_prompts
from vau_r1.model.tiny import TinyConfig, build_tiny_model

__all__ = ["SIZES", "bench_model", "video_prompt"]

#: Model sizes by name (TinyConfig fields).
SIZES: dict[str, dict[str, Any]] = {
    "smoke": {},
    "small": {
        "tokenizer": "qwen2.5", "hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vision_hidden_size": 128,
        "vision_intermediate_size": 384, "vision_depth": 4, "vision_num_heads": 4, "initializer_range": 0.02,
    },
    "proportional": {
        "tokenizer": "tiny_bpe", "vocab_size": 4096, "hidden_size": 256, "intermediate_size": 1376,
        "num_hidden_layers": 6, "num_attention_heads": 8, "num_key_value_heads": 1, "vision_hidden_size": 128,
        "vision_intermediate_size": 384, "vision_depth": 8, "vision_num_heads": 4, "initializer_range": 0.02,
    },
}  # fmt: skip


def bench_model(size: str = "small", family: str = "qwen2_5_vl") -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a named size, float32, eval mode, same weights every call."""
    return build_tiny_model(TinyConfig(family=family, **SIZES[size]))


def _clip(video_tokens: int, seed: int) -> VideoClip:
    """A random 2 fps clip whose Qwen patching gives about ``video_tokens`` visual tokens (28-px blocks)."""
    frames = 8 if video_tokens >= 512 else 4
    blocks = max(1, round(math.sqrt(video_tokens / (frames // 2))))  # per side, tokens = t/2 * blocks^2
    side = 28 * blocks
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (frames, 3, side, side), generator=generator).float()
    return VideoClip(
        frames=pixels, timestamps_s=tuple(i / 2.0 for i in range(frames)), frame_indices=tuple(range(frames)),
        sample_fps=2.0, duration_s=frames / 2.0, video_fps=2.0, total_frames=frames, path=f"bench-{seed}.mp4",
        original_size=(side, side),
    )  # fmt: skip


def video_prompt(
    tokenizer: Any, video_tokens: int, batch: int = 1, family: str = "qwen2_5_vl"
) -> dict[str, torch.Tensor]:
    """Model inputs of ``batch`` left-padded QA-style video prompts (``input_ids`` ``[B, P]``, video tensors)."""
    questions = ["What happens in the video? Answer with A, B, C or D.", "Is there any anomaly in the video?"]
    messages, videos = [], []
    for b in range(batch):
        text = questions[b % 2] + " Think first." * b  # different lengths, so batch > 1 has left padding
        messages.append([{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}])
        videos.append(video_inputs(_clip(video_tokens, seed=b)))
    prompt = encode_prompts(tokenizer, messages, videos, padding_side="left", family=family)
    return dict(prompt.model_kwargs())
