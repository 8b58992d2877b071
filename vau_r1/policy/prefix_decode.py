"""Shared-prefix decode attention: the ``G`` completions of a prompt read its keys and values once, not ``G`` times.

After the prefill, every completion of a group attends to the same prompt keys and values. Repeating the cache
``G`` times (``generate``, and this project before) copies them ``G`` times and makes every decode step read
``B*G`` copies of a ~1.5k-token prompt (and ``torch.cat`` them again when the step's key is appended). Here the
prompt's keys and values stay ``[B, kv_heads, P, head_dim]`` (:class:`SharedPrefix`), the per-row cache holds only
the completion tokens, and each attention layer splits the softmax in two exact parts::

    prefix:     s_p = q · K_p[group]ᵀ   over the prompt keys of the row's group (one batched product per step)
    completion: s_c = q · K_cᵀ          over the row's own completion keys
    out = (Σ exp(s_p - m) V_p + Σ exp(s_c - m) V_c) / (Σ exp(s_p - m) + Σ exp(s_c - m)),  m = max(s_p, s_c)

which is softmax attention over the concatenation, computed in float32 (the cascade / shared-prefix attention of
FlashInfer and Hydragen). The prompt's padding is masked from :attr:`SharedPrefix.prompt_mask`; completion rows
that finished have left the decode batch, so every live row's completion keys are all valid.

It is an attention implementation registered with transformers (:data:`ATTENTION_NAME`), switched on for the
text model only around decode steps (:func:`prefix_attention`). transformers builds no mask for it, so a call
without a :class:`SharedPrefix` (a prefill, say) raises instead of attending unmasked. Only caches whose every
layer is a plain full-attention ``DynamicLayer`` qualify (:func:`supports`): Qwen3.5's Gated DeltaNet layers
keep the repeated-cache path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer

__all__ = ["ATTENTION_NAME", "SharedPrefix", "prefix_attention", "shared_prefix_attention", "supports"]

#: Name of the attention implementation in transformers' ``AttentionInterface``.
ATTENTION_NAME = "vau_r1_shared_prefix"


@dataclass
class SharedPrefix:
    """The prompts' keys and values, once per group, and which group each decoding row belongs to.

    Attributes:
        keys: per layer, ``[B, kv_heads, P, head_dim]`` float32 prompt keys (after the rotary embedding); float32
            once here, so that a bfloat16 model's steps do not convert them again.
        values: per layer, ``[B, kv_heads, P, head_dim]`` float32.
        prompt_mask: ``[B, 1, 1, P]`` bool, False on left padding; None when no prompt is padded.
        rows: ``[n]`` rollout row of each decoding row (row ``b*G + i`` is completion ``i`` of prompt ``b``).
        num_generations: ``G``.
    """

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    prompt_mask: torch.Tensor | None
    rows: torch.Tensor
    num_generations: int

    @classmethod
    def from_prefill(cls, cache: Cache, attention_mask: torch.Tensor, num_generations: int) -> SharedPrefix:
        """Take the prompt keys/values out of a prefilled ``cache`` (``[B, ...]``), which is left empty."""
        keys = [layer.keys.float() for layer in cache.layers]
        values = [layer.values.float() for layer in cache.layers]
        rows = torch.arange(attention_mask.shape[0] * num_generations, device=attention_mask.device)
        for layer in cache.layers:  # empty again: the first decode step's keys start the completion tokens
            layer.reset()
        valid = attention_mask.bool()[:, None, None, :]
        return cls(keys, values, None if bool(valid.all()) else valid, rows, num_generations)


def supports(cache: Cache) -> bool:
    """Whether every layer of a prefilled ``cache`` is a plain full-attention ``DynamicLayer``."""
    return all(type(layer) is DynamicLayer and layer.keys is not None for layer in cache.layers)


def _prefix_part(query: torch.Tensor, prefix: SharedPrefix, layer: int):
    """Row-wise ``(max [n,k,r,1], sum of exp [n,k,r,1], unnormalised output [n,k,r,d])`` over the prompt keys.

    ``query`` is already scaled; the ``[B, kv, G*rep, P]`` scores are masked and exponentiated in place.
    """
    n, kv, rep, d = query.shape
    keys, values = prefix.keys[layer], prefix.values[layer]  # [B, kv, P, d] float32
    batch, G = keys.shape[0], prefix.num_generations
    every_row = n == batch * G  # no row has finished: rows are 0..B*G-1 in order (keep() preserves order)
    slots = query if every_row else query.new_zeros(batch * G, kv, rep, d).index_copy_(0, prefix.rows, query)
    grouped = slots.view(batch, G, kv, rep, d).permute(0, 2, 1, 3, 4).reshape(batch, kv, G * rep, d)
    scores = torch.matmul(grouped, keys.transpose(-1, -2))  # [B, kv, G*rep, P]
    if prefix.prompt_mask is not None:
        scores.masked_fill_(~prefix.prompt_mask, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True)  # [B, kv, G*rep, 1]
    weights = scores.sub_(top).exp_()
    parts = torch.cat([top, weights.sum(dim=-1, keepdim=True), torch.matmul(weights, values)], dim=-1)
    parts = parts.view(batch, kv, G, rep, d + 2).permute(0, 2, 1, 3, 4).reshape(batch * G, kv, rep, d + 2)
    parts = parts if every_row else parts[prefix.rows]  # [n, kv, rep, 2 + d]: max, sum of exp, unnormalised output
    return parts[..., :1], parts[..., 1:2], parts[..., 2:]


def shared_prefix_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    shared_prefix: SharedPrefix | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Attention of one decode step over a shared prompt plus each row's completion.

    ``query`` ``[n, H, 1, d]``; ``key``/``value`` ``[n, kv, t, d]``, the row's completion tokens so far (this
    step's included). Returns ``([n, 1, H, d], None)`` as transformers' attention functions do.

    Raises:
        RuntimeError: called without ``shared_prefix`` (transformers made no mask for this implementation).
    """
    if shared_prefix is None:
        raise RuntimeError(
            f"attention implementation {ATTENTION_NAME!r} ran without a SharedPrefix (layer "
            f"{getattr(module, 'layer_idx', '?')}); switch it on with prefix_attention() around decode steps only"
        )
    n, heads, q_len, d = query.shape
    if q_len != 1:
        raise ValueError(f"shared-prefix attention decodes one token per row, got {q_len}")
    scaling = d**-0.5 if scaling is None else scaling
    with torch.autocast(query.device.type, enabled=False):  # float32 products even under bf16 autocast
        out = _attend(query, key, value, shared_prefix, module.layer_idx, scaling)
    return out.reshape(n, 1, heads, d).to(query.dtype), None


def _attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, prefix: SharedPrefix, layer: int,
            scaling: float) -> torch.Tensor:  # fmt: skip
    """``[n, kv, rep, d]`` float32 attention output of the two parts, combined."""
    n, heads, _, d = query.shape
    kv = key.shape[1]
    q = query.float().reshape(n, kv, heads // kv, d) * scaling  # head h reads kv head h // (H / kv), as repeat_kv
    top_p, total_p, out_p = _prefix_part(q, prefix, layer)
    scores_c = torch.matmul(q, key.float().transpose(-1, -2))  # [n, kv, rep, t]
    top = torch.maximum(top_p, scores_c.amax(dim=-1, keepdim=True))
    weights_c = scores_c.sub_(top).exp_()
    scale_p = torch.exp(top_p - top)
    out = out_p * scale_p + torch.matmul(weights_c, value.float())
    return out / (total_p * scale_p + weights_c.sum(dim=-1, keepdim=True))


AttentionInterface.register(ATTENTION_NAME, shared_prefix_attention)


@contextmanager
def prefix_attention(model: nn.Module) -> Iterator[None]:
    """Switch the text model's attention to :func:`shared_prefix_attention` for the block, then back."""
    config = model.config.get_text_config()
    previous = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    try:
        yield
    finally:
        config._attn_implementation = previous
