"""The GRPO recipe for video prompts, on accelerate: one process, DDP, DeepSpeed ZeRO-2/3 or FSDP2.

One optimisation step, as :meth:`GRPOTrainer.step` reads (``B`` prompts per micro-batch, ``G`` completions
each, ``P`` prompt and ``L`` completion tokens, ``K`` rewards)::

    for each of the A accumulation micro-batches (this rank's shard):
        encode     prompts + videos                        input_ids [B, P], pixel_values_videos [N, D]
        rollout    G completions per prompt                completion_ids [B*G, L]
        rewards    weighted rewards, None = not applicable  per reward [B*G, K], total [B*G]
        advantages (r - mean_group) / (std_group + eps)    [B*G]
        old/ref    log-probs without gradients             [B*G, L] (num_iterations > 1 / beta > 0)
    repeat num_iterations times:
        loss       clipped surrogate (+ beta * k3 KL), backward per micro-batch, gradients synced after the last
        optimizer  clip gradients, AdamW step, LR schedule step

The loop around the step (data order, logging, checkpoints, resume) is :class:`~vau_r1.engine.loop.TrainEngine`'s.
Ranks draw different prompts and sampling seeds, start from the same weights, and stay identical through the
gradient all-reduce (DDP) or hold consistent shards of one model (ZeRO, FSDP2; :mod:`vau_r1.engine.sharding`).
Under ZeRO-3 and FSDP2 the rollout runs with the weights gathered once, and every rank runs the same passes
in the same order: a rank whose micro-batch lost all its videos samples a stand-in prompt (zero weight in the
loss), and every prompt has one video, so the vision tower runs equally often on every rank.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import torch
from torch import nn

from vau_r1.engine.distributed import global_loss_tokens, sampling_seed
from vau_r1.engine.loggers import MetricLogger
from vau_r1.engine.loop import TrainEngine
from vau_r1.engine.stats import StepStats
from vau_r1.grpo.advantages import group_advantages
from vau_r1.grpo.experience import (
    Experience,
    LogpFn,
    encode_examples,
    eos_token_ids,
    frozen_logps,
    loss_mask,
    reference_logps,
    score_rollout,
)  # fmt: skip
from vau_r1.grpo.loss import policy_loss
from vau_r1.model.families import family_of
from vau_r1.policy.rollout import SamplingParams, generate_rollout
from vau_r1.policy.scorer import CompletionScorer
from vau_r1.recipes.config import RunConfig
from vau_r1.recipes.grpo_metrics import SUM_KEYS, completion_rows, experience_stats, stat_keys, std_keys
from vau_r1.tasks.dataset import Example, ExampleBatch, VideoPromptDataset, first_loadable


class GRPOTrainer:
    """Trains ``model`` with GRPO on ``dataset``.

    Args:
        cfg: the validated run config.
        model: the policy (``...ForConditionalGeneration``, or a PEFT model around one), not yet wrapped.
        tokenizer: its tokenizer (chat template included).
        dataset: the training prompts.
        rewards: weighted rewards (:func:`vau_r1.rewards.build_rewards`).
        accelerator: the run's accelerator.
        ref_model: frozen reference for the KL term; ``None`` with ``beta == 0`` or with LoRA (the policy with
            its adapters disabled is the reference then). Partitioned like the policy under ZeRO-3/FSDP2.
        metric_logger: where metrics go (rank 0); defaults to nothing.
        manifest: saved with every checkpoint (:func:`vau_r1.engine.checkpoint.build_manifest`).
        config_yaml: resolved config text saved with every checkpoint.
    """

    def __init__(
        self,
        cfg: RunConfig,
        model: nn.Module,
        tokenizer: Any,
        dataset: VideoPromptDataset,
        rewards: list,
        accelerator: Any,
        ref_model: nn.Module | None = None,
        metric_logger: MetricLogger | None = None,
        manifest: dict[str, Any] | None = None,
        config_yaml: str = "",
    ) -> None:
        self.cfg, self.tokenizer, self.dataset, self.rewards = cfg, tokenizer, dataset, rewards
        self.accelerator, grpo = accelerator, cfg.grpo
        self.engine = TrainEngine(
            cfg.trainer, cfg.loop_settings(), tokenizer, dataset, accelerator, metric_logger, manifest, config_yaml,
            progress_desc="grpo", progress_metrics=(("reward", "reward/total/mean"),),
        )  # fmt: skip
        scorer = CompletionScorer(model, grpo.reuse_vision_features, grpo.logprob_chunk_tokens, grpo.share_prompt)
        self.engine.prepare(scorer, updates_per_step=grpo.num_iterations)
        self.sampling = SamplingParams(
            grpo.num_generations, grpo.max_completion_tokens, grpo.temperature, grpo.top_p, grpo.top_k,
            grpo.share_prompt,
        )
        self.family = family_of(self.model)
        self.logps = partial(frozen_logps, grpo=grpo, autocast=self.engine.autocast)
        self.ref_model, self.ref_logps = self._reference(ref_model)
        self.last_experiences: list[Experience] = []
        self._placeholder: Experience | None = None
        self._standin: Example | None = None

    @property
    def model(self) -> nn.Module:
        """The unwrapped policy (what checkpoints save and the rollout samples from)."""
        return self.engine.model

    def fit(self, until_step: int | None = None) -> dict[str, float]:
        """Train to the last step (or ``until_step``), resuming if configured; returns the last metrics."""
        return self.engine.fit(self.step, until_step)

    # ------------------------------------------------------------------ the step, top to bottom

    def step(self, micro_batches: list[ExampleBatch]) -> dict[str, float]:
        """One optimisation step: rollout → rewards → advantages → old/ref log-probs → loss → optimizer."""
        start_s, grpo = time.perf_counter(), self.cfg.grpo
        # encode, rollout, rewards, advantages, old/ref log-probs: one Experience per micro-batch
        experiences = [self.make_experience(batch, i) for i, batch in enumerate(micro_batches)]
        stats = StepStats(stat_keys(self.rewards, self.cfg.data.task_list))  # per-task keys: every rank
        local_tokens = sum(float(e.loss_mask.sum()) for e in experiences if e is not None)
        num_items = global_loss_tokens(self.accelerator, local_tokens) if grpo.loss_type == "dapo" else None
        for _ in range(grpo.num_iterations):  # μ policy updates per rollout
            # loss and backward per micro-batch; the gradients are synchronised after the last one
            self.engine.accumulate(experiences, lambda exp: self.backward(exp, num_items, len(experiences), stats))
            # optimizer: clip, AdamW step, LR schedule step
            stats.add("train/grad_norm", self.engine.optimizer_step())
        for batch, exp in zip(micro_batches, experiences, strict=True):
            experience_stats(stats, batch, exp, self.rewards)
        self.last_experiences = [e for e in experiences if e is not None]
        stats.add("time/step_s", time.perf_counter() - start_s)
        metrics = stats.reduce(self.accelerator, std_keys=std_keys(self.rewards), sum_keys=SUM_KEYS)
        metrics["train/lr"] = self.engine.scheduler.get_last_lr()[0]
        self.log_completions(self.engine.step_count + 1)
        return metrics

    def make_experience(self, batch: ExampleBatch, micro_index: int) -> Experience | None:
        """The experience of one micro-batch, with the weights gathered once (``None`` if all its videos failed).

        A micro-batch with no example still runs every pass on a stand-in prompt (kept for its zero-weight
        backward), so that all ranks make the same collective calls.
        """
        examples = batch.examples or [self.standin()]
        missing = [ex.sample.video for ex in examples if ex.video is None or ex.video.video_grid_thw.numel() == 0]
        if missing:  # a rank skipping the vision tower would hang the others under ZeRO-3 (docs/paper.md §6.3)
            raise RuntimeError(f"prompts without a video: {missing}; every GRPO prompt must carry one video")
        seed = sampling_seed(self.cfg.seed, self.accelerator.process_index, self.engine.consumed_batches + micro_index)
        generator = torch.Generator(self.accelerator.device).manual_seed(seed)
        exp = self.engine.sharding.with_full_parameters(
            self.engine.scorer, lambda: self.experience(examples, generator)
        )
        self._placeholder = exp
        return exp if batch.examples else None

    def experience(self, examples: list[Example], generator: torch.Generator) -> Experience:
        """Encode → rollout → rewards → advantages → loss mask → old/ref log-probs for ``B`` examples."""
        grpo, G = self.cfg.grpo, self.cfg.grpo.num_generations
        device = self.accelerator.device
        prompt = encode_examples(self.tokenizer, examples, self.family, grpo.max_prompt_tokens, device)  # [B, P]
        with self.engine.autocast():  # completion_ids [B*G, L], 1 through the first EOS in completion_mask
            rollout = generate_rollout(
                self.model, prompt, self.sampling, eos_token_ids=eos_token_ids(self.model, self.tokenizer),
                pad_token_id=self.tokenizer.pad_token_id, generator=generator,
            )  # fmt: skip
        texts = self.tokenizer.batch_decode(rollout.completion_ids.cpu(), skip_special_tokens=True)  # B*G
        per_func, total = score_rollout(self.rewards, texts, examples, G)  # [B*G, K], [B*G]
        adv = group_advantages(total, G, grpo.scale_rewards, grpo.advantage_eps)  # values [B*G]
        adv = adv._replace(values=adv.values.to(self.accelerator.device))
        mask = loss_mask(rollout, grpo.mask_truncated_completions)  # [B*G, L]
        exp = Experience(list(examples), prompt, rollout, texts, per_func, total, adv, mask)
        if grpo.num_iterations > 1:  # the sampling policy's log-probs, for the clipped ratio  [B*G, L]
            exp.old_logp = self.logps(self.model, prompt, rollout)
        if self.ref_logps is not None:  # the reference's log-probs, for the KL term  [B*G, L]
            exp.ref_logp = self.ref_logps(prompt, rollout)
        return exp

    def backward(self, exp: Experience | None, num_items: float | None, num_micro: int, stats: StepStats) -> None:
        """Policy log-probs, GRPO loss and backward for one micro-batch (a zero-weight pass if it is empty)."""
        weight = 1.0
        if exp is None:  # every rank must run the same forward/backward for the gradients to sync
            exp, weight = self._placeholder, 0.0
        grpo, roll = self.cfg.grpo, exp.rollout
        with self.engine.autocast():  # [B*G, L], with gradients
            logp = self.engine.scorer(exp.prompt, roll.completion_ids, roll.completion_mask, grpo.temperature)
        loss, loss_stats = policy_loss(
            logp, exp.old_logp, exp.advantages.values, exp.loss_mask,
            epsilon=grpo.epsilon, epsilon_high=grpo.epsilon_high, beta=grpo.beta, ref_logp=exp.ref_logp,
            loss_type=grpo.loss_type, max_completion_length=grpo.max_completion_tokens,
            num_items_in_batch=num_items,
        )  # fmt: skip
        # dapo's normaliser already spans all micro-batches; the other losses are means per micro-batch.
        scale = weight if grpo.loss_type == "dapo" else weight / num_micro
        self.accelerator.backward(loss * scale)
        if weight:
            stats.add("train/loss", loss.detach())
            stats.add_loss_stats(loss_stats)

    # ------------------------------------------------------------------ helpers

    def standin(self) -> Example:
        """The prompt a rank with an empty micro-batch runs its passes on (the dataset's first loadable one)."""
        if self._standin is None:
            self._standin = first_loadable(self.dataset)
        return self._standin

    def _reference(self, ref_model: nn.Module | None) -> tuple[nn.Module | None, LogpFn | None]:
        """The reference model (partitioned under ZeRO-3/FSDP2) and the function computing its log-probs."""
        grpo = self.cfg.grpo
        if ref_model is not None:
            ref_model = ref_model.to(self.accelerator.device).eval()
        if ref_model is None or not self.engine.sharding.partitioned:
            return ref_model, reference_logps(self.logps, grpo.beta, self.model, ref_model)
        frozen = self.engine.sharding.prepare_frozen(
            CompletionScorer(ref_model, grpo.reuse_vision_features, grpo.logprob_chunk_tokens, grpo.share_prompt)
        )

        @torch.no_grad()
        def ref_logps(prompt: dict, rollout: Any) -> torch.Tensor:
            with self.engine.autocast():
                return frozen(prompt, rollout.completion_ids, rollout.completion_mask, grpo.temperature)

        return frozen, ref_logps

    def log_completions(self, step: int) -> None:
        """Every ``trainer.log_completions_every`` steps, a table of the step's first micro-batch's completions."""
        every = self.cfg.trainer.log_completions_every
        if every and step % every == 0 and self.last_experiences:
            columns, rows = completion_rows(self.last_experiences[0], self.rewards, step)
            self.engine.metric_logger.log_table("completions", columns, rows, step)
