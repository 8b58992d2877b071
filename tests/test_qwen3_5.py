"""Qwen3.5: Qwen3-VL's timestamped video path on a hybrid Gated DeltaNet + full-attention language model.

The same tests as Qwen3-VL (``tests/qwen3_family.py``, :class:`FamilyTests`), plus the rollout's KV-cache
expansion: transformers' ``DynamicCache.batch_repeat_interleave`` cannot repeat the linear-attention (conv and
recurrent) states, which :func:`vau_r1.model.cache.repeat_cache` does.
"""

from __future__ import annotations

import pytest
import qwen3_family as checks
import torch
from transformers import DynamicCache

from vau_r1.model.builder import DEFAULT_LORA_TARGETS
from vau_r1.model.cache import repeat_cache
from vau_r1.policy.rollout import prompt_positions

FAMILY = "qwen3_5"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestQwen3_5(checks.FamilyTests):
    family = FAMILY
    lora_targets = frozenset({*DEFAULT_LORA_TARGETS, "in_proj_qkv", "in_proj_z", "out_proj"})

    def test_the_tiny_model_is_hybrid(self, tiny):
        layer_types = tiny[0].config.text_config.layer_types
        assert layer_types == ["linear_attention", "full_attention"]

    def test_cache_expansion_repeats_the_linear_attention_states(self, tiny):
        model, tokenizer = tiny
        prompt = checks.prompt_batch(FAMILY, tokenizer)
        positions = prompt_positions(model, prompt)

        def prefill(inputs, pos):
            cache = DynamicCache(config=model.config.get_text_config())
            with torch.no_grad():
                model(**inputs, position_ids=pos, past_key_values=cache, use_cache=True, logits_to_keep=1)
            return cache

        with pytest.raises(AttributeError):  # the stock call this library's rollout used before
            prefill(prompt, positions).batch_repeat_interleave(2)
        expanded = repeat_cache(prefill(prompt, positions), 2)
        doubled = {k: v.repeat_interleave(2, dim=0) for k, v in prompt.items() if k != "pixel_values_videos"}
        sizes = prompt["video_grid_thw"].prod(-1).tolist()
        chunks = torch.split(prompt["pixel_values_videos"], sizes)
        doubled["pixel_values_videos"] = torch.cat([c for c in chunks for _ in range(2)])
        reference = prefill(doubled, positions.repeat_interleave(2, dim=1))
        linear = expanded.layers[0]
        assert linear.conv_states[0].shape[0] == 4 and linear.recurrent_states[0].shape[0] == 4
        for ours, theirs in zip(expanded.layers, reference.layers, strict=True):
            for name in ("conv_states", "recurrent_states"):
                if hasattr(ours, name):
                    assert torch.allclose(getattr(ours, name)[0], getattr(theirs, name)[0], atol=1e-5)
            if getattr(ours, "keys", None) is not None:
                assert torch.allclose(ours.keys, theirs.keys, atol=1e-5)
