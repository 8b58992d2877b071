"""Repeat a prefilled KV cache ``G`` times along the batch, including linear-attention (Gated DeltaNet) states.

``DynamicCache.batch_repeat_interleave`` (transformers 5.23) calls each layer's own method, and
``LinearAttentionLayer`` (Qwen3.5's Gated DeltaNet layers) has none: the call raises ``AttributeError``. Worse, the
hybrid ``LinearAttentionAndFullAttentionLayer`` inherits ``DynamicLayer``'s, which repeats the keys and values but
not the conv and recurrent states, so the ``G`` copies would silently decode from one prompt's state with the
wrong batch size. :func:`repeat_cache` repeats all of them.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicLayer, LinearAttentionCacheLayerMixin

__all__ = ["repeat_cache"]


def _repeat_states(states: dict[int, torch.Tensor | None], ready: dict[int, bool], repeats: int) -> None:
    for index, initialised in ready.items():
        if initialised and states[index] is not None:
            states[index] = states[index].repeat_interleave(repeats, dim=0)


def repeat_cache(cache: Cache, repeats: int) -> Cache:
    """Repeat every layer of ``cache`` ``repeats`` times along the batch, in place (row ``b`` → ``b*G .. b*G+G-1``).

    Args:
        cache: a prefilled ``DynamicCache`` (full-attention, linear-attention or hybrid layers).
        repeats: ``G``.

    Returns:
        ``cache`` itself.

    Raises:
        TypeError: a layer kind this function does not know (rather than a silently unrepeated state).
    """
    for layer in cache.layers:
        known = False
        if isinstance(layer, LinearAttentionCacheLayerMixin):
            _repeat_states(layer.conv_states, layer.is_conv_states_initialized, repeats)
            _repeat_states(layer.recurrent_states, layer.is_recurrent_states_initialized, repeats)
            known = True
        if isinstance(layer, DynamicLayer):
            DynamicLayer.batch_repeat_interleave(layer, repeats)
            known = True
        if not known:
            raise TypeError(f"cannot repeat a {type(layer).__name__} cache layer along the batch")
    return cache
