"""The pieces of a GRPO experience: prompts encoded, rollouts scored, the loss mask, no-grad log-probs.

The GRPO recipe (:meth:`vau_r1.recipes.grpo.GRPOTrainer.experience`) calls them in order:
encode → rollout → rewards → advantages → loss mask → old/ref log-probs.

Layout is prompt-major throughout: completion ``i`` of prompt ``b`` is row ``b*G + i``, and the reward
columns of prompt ``b`` are repeated ``G`` times in the same order (:func:`expand_columns`), so each
completion is scored against its own target.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from vau_r1.grpo.advantages import Advantages, combine_rewards
from vau_r1.grpo.config import GRPOConfig
from vau_r1.grpo.loss import truncation_mask
from vau_r1.model.processing import encode_prompts
from vau_r1.policy.rollout import Rollout
from vau_r1.policy.scorer import CompletionScorer
from vau_r1.rewards import WeightedReward, score_completions
from vau_r1.tasks.dataset import Example

#: Computes ``[B*G, L]`` log-probs of a rollout given its prompts (old policy, reference model).
LogpFn = Callable[[dict, Rollout], torch.Tensor]


@dataclass
class Experience:
    """Everything the loss needs about one micro-batch of ``B`` prompts and their ``B*G`` completions.

    Attributes:
        examples: the ``B`` examples, in order.
        prompt: the prompts' model inputs (``input_ids`` ``[B, P]``, video tensors, ...), on the device.
        rollout: the sampled completions (``[B*G, L]``).
        texts: ``B*G`` decoded completions.
        rewards: ``[B*G, K]`` per-reward values, NaN where a reward does not apply.
        total: ``[B*G]`` weighted total reward (NaN where no reward applies).
        advantages: group-relative advantages and group statistics.
        loss_mask: ``[B*G, L]`` completion tokens that enter the loss (truncated rows zeroed if configured).
        old_logp: ``[B*G, L]`` log-probs under the sampling policy (only for ``num_iterations > 1``).
        ref_logp: ``[B*G, L]`` log-probs under the reference model (only for ``beta > 0``).
    """

    examples: list[Example]
    prompt: dict[str, torch.Tensor]
    rollout: Rollout
    texts: list[str]
    rewards: torch.Tensor
    total: torch.Tensor
    advantages: Advantages
    loss_mask: torch.Tensor
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None


def encode_examples(
    tokenizer: Any, examples: Sequence[Example], family: str, max_prompt_tokens: int | None, device: torch.device
) -> dict[str, torch.Tensor]:
    """Left-padded model inputs of the prompts (``input_ids`` ``[B, P]``), with their videos, on ``device``."""
    batch = encode_prompts(
        tokenizer, [ex.messages for ex in examples], [ex.video for ex in examples],
        padding_side="left", max_prompt_tokens=max_prompt_tokens, family=family,
    )  # fmt: skip
    return {k: v.to(device) for k, v in batch.model_kwargs().items()}


def eos_token_ids(model: nn.Module, tokenizer: Any) -> list[int]:
    """Ids that end a completion: the generation config's EOS ids and the tokenizer's EOS."""
    eos = model.generation_config.eos_token_id
    ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def expand_columns(examples: Sequence[Example], num_generations: int) -> dict[str, list[Any]]:
    """Reward columns of ``B`` examples, each value repeated ``G`` times (prompt-major, ``B*G`` per column).

    >>> from types import SimpleNamespace as E
    >>> expand_columns([E(columns={"answer": "A"}), E(columns={"answer": "C"})], 2)
    {'answer': ['A', 'A', 'C', 'C']}
    """
    keys = list(examples[0].columns)
    return {k: [ex.columns[k] for ex in examples for _ in range(num_generations)] for k in keys}


def score_rollout(
    rewards: Sequence[WeightedReward], texts: list[str], examples: Sequence[Example], num_generations: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-reward scores ``[B*G, K]`` (NaN = not applicable) and the weighted total ``[B*G]``."""
    scores = score_completions(rewards, texts, expand_columns(examples, num_generations))
    nan = float("nan")
    per_func = torch.tensor([[nan if v is None else v for v in row] for row in scores.per_func], dtype=torch.float32)
    total = combine_rewards(per_func, [r.weight for r in rewards])
    return per_func, total


def loss_mask(rollout: Rollout, mask_truncated: bool) -> torch.Tensor:
    """``[B*G, L]`` completion tokens that enter the loss; rows cut at the length limit zeroed if asked."""
    mask = rollout.completion_mask
    return truncation_mask(mask, rollout.is_truncated) if mask_truncated else mask


@torch.no_grad()
def frozen_logps(
    model: nn.Module,
    prompt: dict[str, torch.Tensor],
    rollout: Rollout,
    grpo: GRPOConfig,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> torch.Tensor:
    """``[B*G, L]`` log-probs of the rollout under ``model`` without gradients, in eval mode."""
    scorer = CompletionScorer(model, grpo.reuse_vision_features, grpo.logprob_chunk_tokens, grpo.share_prompt)
    was_training = model.training
    model.eval()
    try:
        with autocast():
            return scorer(prompt, rollout.completion_ids, rollout.completion_mask, grpo.temperature)
    finally:
        model.train(was_training)


def reference_logps(
    logps: Callable[[nn.Module, dict, Rollout], torch.Tensor], beta: float, policy: nn.Module,
    ref_model: nn.Module | None,
) -> LogpFn | None:  # fmt: skip
    """How reference log-probs are computed: ``None`` with ``beta == 0``, else the frozen copy's log-probs,
    or (LoRA, no copy) the policy's log-probs with its adapters disabled.

    Args:
        logps: ``(model, prompt, rollout) → [B*G, L]`` no-grad log-probs (:func:`frozen_logps`, bound).

    Raises:
        ValueError: ``beta > 0`` but there is neither a reference model nor an adapter to disable.
    """
    if beta == 0:
        return None
    if ref_model is not None:
        return lambda prompt, rollout: logps(ref_model, prompt, rollout)
    if not hasattr(policy, "disable_adapter"):
        raise ValueError("grpo.beta > 0 needs a reference model: pass ref_model, use LoRA, or set grpo.beta=0")

    def adapter_free(prompt: dict, rollout: Rollout) -> torch.Tensor:
        with policy.disable_adapter():
            return logps(policy, prompt, rollout)

    return adapter_free
