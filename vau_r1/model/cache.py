"""Repeat a prefilled KV cache ``G`` times along the batch, or keep some of its rows, linear-attention states included.

``DynamicCache.batch_repeat_interleave`` (transformers 5.23) calls each layer's own method, and
``LinearAttentionLayer`` (Qwen3.5's Gated DeltaNet layers) has none: the call raises ``AttributeError``. Worse, the
hybrid ``LinearAttentionAndFullAttentionLayer`` inherits ``DynamicLayer``'s, which repeats the keys and values but
not the conv and recurrent states, so the ``G`` copies would silently decode from one prompt's state with the
wrong batch size. :func:`repeat_cache` repeats all of them; :func:`select_cache_rows` (rows that finished leave a
decode batch) is its inverse, with the same care (``batch_select_indices`` skips those states too).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers.cache_utils import Cache, DynamicLayer, LinearAttentionCacheLayerMixin

__all__ = ["repeat_cache", "select_cache_rows"]


def _each_layer(
    cache: Cache, states: Callable[[torch.Tensor], torch.Tensor], keys_values: Callable[[DynamicLayer], None],
    refusal: str,
) -> Cache:  # fmt: skip
    """Apply ``states`` to every initialised conv/recurrent state and ``keys_values`` to every ``DynamicLayer``.

    Raises:
        TypeError: ``refusal`` (with ``{kind}``) for a layer kind that is neither (rather than a silently
            unchanged state).
    """
    for layer in cache.layers:
        known = False
        if isinstance(layer, LinearAttentionCacheLayerMixin):
            for values, ready in ((layer.conv_states, layer.is_conv_states_initialized),
                                  (layer.recurrent_states, layer.is_recurrent_states_initialized)):  # fmt: skip
                for index, initialised in ready.items():
                    if initialised and values[index] is not None:
                        values[index] = states(values[index])
            known = True
        if isinstance(layer, DynamicLayer):
            keys_values(layer)
            known = True
        if not known:
            raise TypeError(refusal.format(kind=type(layer).__name__))
    return cache


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
    return _each_layer(
        cache, lambda state: state.repeat_interleave(repeats, dim=0),
        lambda layer: DynamicLayer.batch_repeat_interleave(layer, repeats),
        "cannot repeat a {kind} cache layer along the batch",
    )  # fmt: skip


def select_cache_rows(cache: Cache, index: torch.Tensor) -> Cache:
    """Keep the batch rows ``index`` of every layer of ``cache``, in place; the inverse of :func:`repeat_cache`.

    Raises:
        TypeError: a layer kind this function does not know (rather than a silently unselected state).
    """
    return _each_layer(
        cache, lambda state: state[index], lambda layer: DynamicLayer.batch_select_indices(layer, index),
        "cannot select rows of a {kind} cache layer",
    )  # fmt: skip
