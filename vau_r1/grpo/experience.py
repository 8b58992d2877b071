"""From a batch of prompts to scored experience: encode → rollout → rewards → advantages (+ old/ref log-probs).

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

from vau_r1.config import GRPOConfig
from vau_r1.data.dataset import Example
from vau_r1.grpo.advantages import Advantages, combine_rewards, group_advantages
from vau_r1.grpo.loss import truncation_mask
from vau_r1.grpo.policy import CompletionScorer
from vau_r1.grpo.rollout import Rollout, SamplingParams, generate_rollout
from vau_r1.model.processing import encode_prompts
from vau_r1.rewards import WeightedReward, score_completions


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


class ExperienceMaker:
    """Turns a list of examples into an :class:`Experience`.

    Args:
        tokenizer: Qwen tokenizer with the chat template.
        rewards: the configured weighted rewards.
        grpo: GRPO settings (sampling, advantages, truncation masking).
        family: model family, decides the video kwargs of the prompts.
        device: where tensors go.
        autocast: context manager factory for mixed precision (``accelerator.autocast``).
    """

    def __init__(
        self,
        tokenizer: Any,
        rewards: Sequence[WeightedReward],
        grpo: GRPOConfig,
        family: str,
        device: torch.device,
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.tokenizer, self.rewards, self.grpo = tokenizer, list(rewards), grpo
        self.family, self.device, self.autocast = family, device, autocast
        self.sampling = SamplingParams(
            grpo.num_generations, grpo.max_completion_tokens, grpo.temperature, grpo.top_p, grpo.top_k
        )

    def encode(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        """Left-padded model inputs of the prompts, with their videos, on the device."""
        batch = encode_prompts(
            self.tokenizer,
            [ex.messages for ex in examples],
            [ex.video for ex in examples],
            padding_side="left",
            max_prompt_tokens=self.grpo.max_prompt_tokens,
            family=self.family,
        )
        return {k: v.to(self.device) for k, v in batch.model_kwargs().items()}

    def make(
        self,
        examples: Sequence[Example],
        model: nn.Module,
        generator: torch.Generator,
        ref_logps: Callable[[dict, Rollout], torch.Tensor] | None = None,
    ) -> Experience:
        """Encode, sample ``G`` completions per prompt, score them and compute advantages.

        Args:
            examples: ``B`` loaded examples.
            model: the unwrapped policy (generation and, for μ > 1, the old log-probs).
            generator: seeded sampling RNG on the device.
            ref_logps: computes reference log-probs ``[B*G, L]`` (``None`` when ``beta == 0``).
        """
        G = self.grpo.num_generations
        prompt = self.encode(examples)
        with self.autocast():
            rollout = generate_rollout(
                model, prompt, self.sampling, eos_token_ids=self.eos_ids(model),
                pad_token_id=self.tokenizer.pad_token_id, generator=generator,
            )  # fmt: skip
        texts = self.tokenizer.batch_decode(rollout.completion_ids.cpu(), skip_special_tokens=True)
        per_func, total = score_rollout(self.rewards, texts, examples, G)
        adv = group_advantages(total, G, self.grpo.scale_rewards, self.grpo.advantage_eps)
        adv = adv._replace(values=adv.values.to(self.device))
        mask = rollout.completion_mask
        if self.grpo.mask_truncated_completions:
            mask = truncation_mask(mask, rollout.is_truncated)
        exp = Experience(list(examples), prompt, rollout, texts, per_func, total, adv, mask)
        if self.grpo.num_iterations > 1:
            exp.old_logp = self.logps(model, prompt, rollout)
        if ref_logps is not None:
            exp.ref_logp = ref_logps(prompt, rollout)
        return exp

    def eos_ids(self, model: nn.Module) -> list[int]:
        """Ids that end a completion: the generation config's EOS ids and the tokenizer's EOS."""
        eos = model.generation_config.eos_token_id
        ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    @torch.no_grad()
    def logps(self, model: nn.Module, prompt: dict[str, torch.Tensor], rollout: Rollout) -> torch.Tensor:
        """``[B*G, L]`` log-probs of the rollout under ``model`` without gradients, in eval mode."""
        scorer = CompletionScorer(model, self.grpo.reuse_vision_features, self.grpo.logprob_chunk_tokens)
        was_training = model.training
        model.eval()
        try:
            with self.autocast():
                return scorer(prompt, rollout.completion_ids, rollout.completion_mask, self.grpo.temperature)
        finally:
            model.train(was_training)


def reference_logps(
    maker: ExperienceMaker, beta: float, policy: nn.Module, ref_model: nn.Module | None
) -> Callable[[dict, Rollout], torch.Tensor] | None:
    """How reference log-probs are computed: ``None`` with ``beta == 0``, else the frozen copy's log-probs,
    or (LoRA, no copy) the policy's log-probs with its adapters disabled.

    Raises:
        ValueError: ``beta > 0`` but there is neither a reference model nor an adapter to disable.
    """
    if beta == 0:
        return None
    if ref_model is not None:
        return lambda prompt, rollout: maker.logps(ref_model, prompt, rollout)
    if not hasattr(policy, "disable_adapter"):
        raise ValueError("grpo.beta > 0 needs a reference model: pass ref_model, use LoRA, or set grpo.beta=0")

    def adapter_free(prompt: dict, rollout: Rollout) -> torch.Tensor:
        with policy.disable_adapter():
            return maker.logps(policy, prompt, rollout)

    return adapter_free


def first_loadable_experience(
    maker: ExperienceMaker, dataset: Any, model: nn.Module, ref_logps: Callable | None
) -> Experience:
    """Experience of the first example whose video loads (for zero-weight passes of ranks with no data).

    Raises:
        RuntimeError: no video of the dataset can be loaded.
    """
    for index in range(len(dataset)):
        item = dataset[index]
        if isinstance(item, Example):
            generator = torch.Generator(maker.device).manual_seed(0)
            return maker.make([item], model, generator, ref_logps)
    raise RuntimeError("no video of the dataset can be loaded; check data.video_root and data.annotations")


def global_loss_tokens(accelerator: Any, experiences: Sequence[Experience | None]) -> float:
    """Loss tokens of a whole step summed over ranks, divided by the process count (dapo's normaliser).

    DDP averages gradients over processes, so dividing each rank's token sum by this gives the token mean
    over the global batch.
    """
    local = sum(float(e.loss_mask.sum()) for e in experiences if e is not None)
    total = torch.tensor([local], dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        total = accelerator.reduce(total, reduction="sum")
    return max(total.item(), 1.0) / accelerator.num_processes
