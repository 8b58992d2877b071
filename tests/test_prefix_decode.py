"""Shared-prefix decode attention: the G rows of a prompt read its keys once, with the same tokens and log-probs."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from qwen3_family import prompt_batch

from vau_r1.model.tiny import TinyConfig, build_tiny_model
from vau_r1.policy.prefix_decode import ATTENTION_NAME, SharedPrefix, prefix_attention, shared_prefix_attention
from vau_r1.policy.rollout import SamplingParams, _prefill, generate_rollout, prompt_positions
from vau_r1.policy.scorer import CompletionScorer


def _reference(query, prefix: SharedPrefix, key, value, valid: torch.Tensor, layer: int = 0) -> torch.Tensor:
    """Per live row: softmax attention over [its group's unpadded prompt keys ‖ its completion keys]."""
    out = []
    rep = query.shape[1] // key.shape[1]
    for i, row in enumerate(prefix.rows.tolist()):
        b = row // prefix.num_generations
        keys = torch.cat([prefix.keys[layer][b][:, valid[b]], key[i]], dim=1).repeat_interleave(rep, dim=0)
        values = torch.cat([prefix.values[layer][b][:, valid[b]], value[i]], dim=1).repeat_interleave(rep, dim=0)
        out.append(F.scaled_dot_product_attention(query[i], keys, values).transpose(0, 1))  # [1, H, d]
    return torch.stack(out)


def test_shared_prefix_attention_equals_softmax_over_the_concatenated_keys() -> None:
    generator = torch.Generator().manual_seed(0)
    B, G, kv, H, P, t, d = 2, 3, 2, 4, 7, 3, 8
    keys, values = torch.randn(B, kv, P, d, generator=generator), torch.randn(B, kv, P, d, generator=generator)
    valid = torch.ones(B, P, dtype=torch.bool)
    valid[1, :3] = False  # prompt 1 is left-padded
    for rows in (torch.arange(B * G), torch.tensor([0, 2, 3, 5])):  # every row, then after rows 1 and 4 ended
        prefix = SharedPrefix([keys], [values], valid[:, None, None, :], rows, G)
        n = len(rows)
        query = torch.randn(n, H, 1, d, generator=generator)
        key, value = torch.randn(n, kv, t, d, generator=generator), torch.randn(n, kv, t, d, generator=generator)
        got, weights = shared_prefix_attention(SimpleNamespace(layer_idx=0), query, key, value, None,
                                               scaling=d**-0.5, shared_prefix=prefix)  # fmt: skip
        assert weights is None and got.shape == (n, 1, H, d)
        torch.testing.assert_close(got, _reference(query, prefix, key, value, valid), rtol=1e-5, atol=1e-6)


def test_the_implementation_refuses_a_call_without_a_shared_prefix_and_is_switched_back() -> None:
    model, _ = build_tiny_model(TinyConfig())
    config = model.config.get_text_config()
    with pytest.raises(RuntimeError, match="ran without a SharedPrefix"), prefix_attention(model):
        assert config._attn_implementation == ATTENTION_NAME
        model(input_ids=torch.tensor([[1, 2, 3]]))
    assert config._attn_implementation == "sdpa" and model.config.vision_config._attn_implementation == "sdpa"


def _rollouts(model, tokenizer, prompt, params: SamplingParams):
    kwargs = {"eos_token_ids": list(range(40)), "pad_token_id": tokenizer.pad_token_id}  # rows stop at many steps
    shared = generate_rollout(model, prompt, params, **kwargs, generator=torch.Generator().manual_seed(3))
    plain = generate_rollout(model, prompt, replace(params, share_prompt=False), **kwargs,
                             generator=torch.Generator().manual_seed(3))  # fmt: skip
    return shared, plain


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"])
def test_rollout_with_the_prompt_shared_equals_the_repeated_cache(family: str) -> None:
    model, tokenizer = build_tiny_model(TinyConfig(family=family))
    prompt = prompt_batch(family, tokenizer)  # two groups of different lengths: one is left-padded
    assert (prompt["attention_mask"][:, 0] == 0).any()
    params = SamplingParams(4, 10, temperature=0.8, top_k=20)
    shared, plain = _rollouts(model, tokenizer, prompt, params)
    assert len(set(shared.lengths.tolist())) > 2  # rows left the decode batch at different steps
    assert torch.equal(shared.completion_ids, plain.completion_ids)
    assert torch.equal(shared.completion_mask, plain.completion_mask)
    torch.testing.assert_close(shared.sampled_logp, plain.sampled_logp, rtol=0, atol=1e-5)
    scored = CompletionScorer(model)(prompt, shared.completion_ids, shared.completion_mask, params.temperature)
    keep = shared.completion_mask.bool()
    assert float((scored.detach() - shared.sampled_logp)[keep].abs().max()) < 1e-4


def test_qwen3_5_linear_attention_layers_keep_the_repeated_cache() -> None:
    model, tokenizer = build_tiny_model(TinyConfig(family="qwen3_5"))
    prompt = prompt_batch("qwen3_5", tokenizer)
    with torch.no_grad():
        logits, _, prefix = _prefill(model, prompt, prompt_positions(model, prompt), 3, share=True)
    assert prefix is None and logits.shape[0] == 6  # the Gated DeltaNet states cannot be shared this way
    shared, plain = _rollouts(model, tokenizer, prompt, SamplingParams(3, 6, top_k=20))
    assert torch.equal(shared.completion_ids, plain.completion_ids)
    assert torch.equal(shared.sampled_logp, plain.sampled_logp)
