"""Packed shared-prefix inputs: a prompt and its ``G`` completions in one row, so the prompt runs once per group.

The unshared policy pass scores ``B*G`` rows ``[prompt_b, c_bi]``: the language model runs every prompt (about
1.5k video tokens) ``G`` times, forward and backward. Here each prompt ``b`` gets one packed row of length
``T = P + G*L``::

    [ prompt_b (left-padded, P) | c_b1 (L) | c_b2 (L) | ... | c_bG (L) ]

and a 4-D attention mask that makes the row compute exactly what the ``G`` unshared rows compute:

* a prompt token attends causally to the non-pad prompt tokens;
* token ``t`` of completion ``i`` attends to the non-pad prompt tokens and to the non-pad tokens ``<= t`` of
  completion ``i`` only (never to another completion);
* a query with nothing to attend to (a left-pad prompt token) attends to itself, so no row of the softmax is
  empty (no NaN); as a key it is still hidden from every other query, so it changes nothing else.

Positions are the unshared pass's: the prompt's 3-D mRoPE positions, and completion token ``t`` at
``last_prompt_position + 1 + t`` on all three axes (0 on padding after EOS, as ``get_rope_index`` gives a
masked token). Completion ``i``'s token 0 is predicted by the last prompt position, token ``t > 0`` by its
own position ``t - 1`` (:func:`gather_index`). Row order stays prompt-major (``b*G + i``).

All functions are pure tensor helpers; :class:`~vau_r1.policy.scorer.CompletionScorer` (``share_prompt=True``)
runs the model on what they build.
"""

from __future__ import annotations

import torch

__all__ = [
    "additive_mask",
    "gather_index",
    "packed_attention_mask",
    "packed_key_mask",
    "packed_positions",
    "packed_tokens",
    "segment_ids",
]


def packed_tokens(prompt_tokens: torch.Tensor, completion_tokens: torch.Tensor) -> torch.Tensor:
    """``[B, P + G*L]``: each prompt's row ``[B, P]`` followed by its ``G`` completions ``[B*G, L]`` in order.

    Works for any per-token tensor: ``input_ids``, attention masks, ``mm_token_type_ids``.
    """
    batch = prompt_tokens.shape[0]
    return torch.cat([prompt_tokens, completion_tokens.to(prompt_tokens.dtype).reshape(batch, -1)], dim=1)


def packed_key_mask(prompt_mask: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` bool, True on real tokens (non-pad prompt tokens, completion tokens through the first EOS)."""
    return packed_tokens(prompt_mask.bool(), completion_mask.bool())


def segment_ids(prompt_len: int, num_generations: int, completion_len: int, device: torch.device | None = None):
    """``[T]`` long: 0 on the prompt, ``i + 1`` on completion ``i``.

    >>> segment_ids(2, 2, 3).tolist()
    [0, 0, 1, 1, 1, 2, 2, 2]
    """
    completions = torch.arange(1, num_generations + 1, device=device).repeat_interleave(completion_len)
    return torch.cat([torch.zeros(prompt_len, dtype=torch.long, device=device), completions])


def packed_attention_mask(key_mask: torch.Tensor, prompt_len: int, num_generations: int) -> torch.Tensor:
    """``[B, 1, T, T]`` bool mask (True = attend) of the packed rows, for ``sdpa``.

    Args:
        key_mask: ``[B, T]`` real tokens (:func:`packed_key_mask`).
        prompt_len: ``P``.
        num_generations: ``G``; ``T - P`` must be a multiple of it.
    """
    total = key_mask.shape[1]
    seg = segment_ids(prompt_len, num_generations, (total - prompt_len) // num_generations, key_mask.device)
    position = torch.arange(total, device=key_mask.device)
    causal = position[None, :] <= position[:, None]  # [T(q), T(k)]
    same_branch = (seg[None, :] == 0) | (seg[None, :] == seg[:, None])  # key in the prompt or in q's completion
    allowed = (causal & same_branch)[None] & key_mask[:, None, :]  # [B, T, T]
    lonely = ~allowed.any(dim=-1)  # [B, T] queries with no key (left padding): let them see themselves
    allowed = allowed | (torch.eye(total, dtype=torch.bool, device=key_mask.device)[None] & lonely[..., None])
    return allowed[:, None]


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The bool ``mask`` as an additive float mask (0 = attend, dtype minimum = not), for ``eager`` attention."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, torch.finfo(dtype).min)


def packed_positions(prompt_positions: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """``[3, B, T]`` mRoPE positions: the prompt's, then ``last_prompt_position + 1 + t`` per completion token.

    Args:
        prompt_positions: ``[3, B, P]`` of left-padded prompts (:func:`vau_r1.policy.rollout.prompt_positions`).
        completion_mask: ``[B*G, L]``; padding after EOS gets position 0, as in the unshared pass.
    """
    batch = prompt_positions.shape[1]
    num_rows, length = completion_mask.shape
    last = prompt_positions[:, :, -1:].repeat_interleave(num_rows // batch, dim=1)  # [3, B*G, 1]
    steps = torch.arange(1, length + 1, device=prompt_positions.device)
    completion = (last + steps) * completion_mask.to(prompt_positions.dtype)  # [3, B*G, L]
    return torch.cat([prompt_positions, completion.reshape(3, batch, -1)], dim=2)


def gather_index(batch: int, prompt_len: int, num_generations: int, completion_len: int, device=None):
    """``[B*G, L]`` indices into the flattened ``[B*T]`` packed positions whose hidden states predict each token.

    Completion ``i`` of prompt ``b`` (row ``b*G + i``): token 0 is predicted at ``P - 1`` (the last prompt token),
    token ``t > 0`` at ``P + i*L + t - 1``; all offset by ``b*T``.

    >>> gather_index(1, 3, 2, 2).tolist()
    [[2, 3], [2, 5]]
    """
    total = prompt_len + num_generations * completion_len
    branch = torch.arange(num_generations, device=device)[:, None]  # [G, 1]
    step = torch.arange(completion_len, device=device)[None, :]  # [1, L]
    own = prompt_len + branch * completion_len + step - 1  # [G, L]
    within = torch.where(step == 0, torch.full_like(own, prompt_len - 1), own)
    rows = torch.arange(batch, device=device)[:, None, None] * total  # [B, 1, 1]
    return (rows + within[None]).reshape(batch * num_generations, completion_len)
