"""The GRPO training loop for video prompts, on accelerate: one process, DDP, DeepSpeed ZeRO-2/3 or FSDP2.

One optimisation step (:meth:`GRPOTrainer.step`)::

    for each of the A accumulation micro-batches (B prompts each, this rank's shard):
        rollout   G completions per prompt, with the video (vision tower + prefill once)
        score     weighted rewards (None = not applicable), per completion against its own target
        advantage group-relative: (r - mean_group) / (std_group + eps)
        old/ref   log-probs without gradients (only when num_iterations > 1 / beta > 0)
    repeat num_iterations times:
        loss      clipped surrogate (+ beta * k3 KL) over the A micro-batches, gradients synced after the last
        optimizer clip gradients, AdamW step, LR schedule step

Ranks draw different prompts (:class:`~vau_r1.distributed.ShardedBatchSampler`) and different sampling
seeds, start from the same weights, and stay identical through the gradient all-reduce (DDP) or hold
consistent shards of one model (ZeRO, FSDP2; :mod:`vau_r1.sharding`). Under ZeRO-3 and FSDP2 the rollout
runs with the weights gathered once, and every rank runs the same passes in the same order: a rank whose
micro-batch lost all its videos samples a stand-in prompt (zero weight in the loss), and every prompt has
one video, so the vision tower runs equally often on every rank (a mismatch breaks ZeRO-3's collectives).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from vau_r1.config import RunConfig
from vau_r1.data.dataset import Example, ExampleBatch, VideoPromptDataset
from vau_r1.distributed import sampling_seed
from vau_r1.grpo.experience import Experience, ExperienceMaker, global_loss_tokens, reference_logps
from vau_r1.grpo.loss import policy_loss
from vau_r1.grpo.policy import CompletionScorer
from vau_r1.grpo.reporting import SUM_KEYS, completion_rows, experience_stats, stat_keys, std_keys
from vau_r1.grpo.stats import StepStats
from vau_r1.loggers import MetricLogger
from vau_r1.loop import TrainLoop
from vau_r1.model.families import family_of


class GRPOTrainer(TrainLoop):
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
        manifest: saved with every checkpoint (:func:`vau_r1.checkpoint.build_manifest`).
        config_yaml: resolved config text saved with every checkpoint.
    """

    progress_desc = "grpo"
    progress_metrics = (("reward", "reward/total/mean"),)

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
        super().__init__(cfg, tokenizer, dataset, accelerator, metric_logger, manifest, config_yaml)
        grpo = cfg.grpo
        self.rewards = rewards
        self.prepare(CompletionScorer(model, grpo.reuse_vision_features, grpo.logprob_chunk_tokens),
                     updates_per_step=grpo.num_iterations)  # fmt: skip
        self.maker = ExperienceMaker(
            tokenizer, rewards, grpo, family_of(self.model), accelerator.device, accelerator.autocast
        )
        self.ref_model, self.ref_logps = self._reference(ref_model)
        self.last_experiences: list[Experience] = []
        self._placeholder: Experience | None = None
        self._standin: list[Example] | None = None

    def _reference(self, ref_model: nn.Module | None) -> tuple[nn.Module | None, Any]:
        """The reference model (partitioned under ZeRO-3/FSDP2) and the function computing its log-probs."""
        grpo = self.cfg.grpo
        if ref_model is not None:
            ref_model = ref_model.to(self.accelerator.device).eval()
        if ref_model is None or not self.sharding.partitioned:
            return ref_model, reference_logps(self.maker, grpo.beta, self.model, ref_model)
        frozen = self.sharding.prepare_frozen(
            CompletionScorer(ref_model, grpo.reuse_vision_features, grpo.logprob_chunk_tokens)
        )

        @torch.no_grad()
        def ref_logps(prompt: dict, rollout: Any) -> torch.Tensor:
            with self.accelerator.autocast():
                return frozen(prompt, rollout.completion_ids, rollout.completion_mask, grpo.temperature)

        return frozen, ref_logps

    # ------------------------------------------------------------------ loop

    def step(self, micro_batches: list[ExampleBatch]) -> dict[str, float]:
        """One optimisation step: rollout → score → advantages → loss → optimizer (μ updates per rollout)."""
        start_s = time.perf_counter()
        experiences = [self.make_experience(batch, i) for i, batch in enumerate(micro_batches)]
        stats = StepStats(stat_keys(self.rewards))
        num_items = global_loss_tokens(self.accelerator, experiences) if self.cfg.grpo.loss_type == "dapo" else None
        for _ in range(self.cfg.grpo.num_iterations):
            self.accumulate(experiences, lambda exp: self.backward(exp, num_items, len(experiences), stats))
            stats.add("train/grad_norm", self.optimizer_step())
        for batch, exp in zip(micro_batches, experiences, strict=True):
            experience_stats(stats, batch, exp, self.rewards)
        self.last_experiences = [e for e in experiences if e is not None]
        stats.add("time/step_s", time.perf_counter() - start_s)
        metrics = stats.reduce(self.accelerator, std_keys=std_keys(self.rewards), sum_keys=SUM_KEYS)
        metrics["train/lr"] = self.scheduler.get_last_lr()[0]
        return metrics

    # ------------------------------------------------------------------ phases

    def make_experience(self, batch: ExampleBatch, micro_index: int) -> Experience | None:
        """Rollout, rewards and advantages of one micro-batch (``None`` if all its videos were skipped).

        A skipped micro-batch still runs every pass on a stand-in prompt (kept for its zero-weight backward),
        so that all ranks make the same collective calls.
        """
        examples = batch.examples or self._standin_examples()
        missing = [ex.sample.video for ex in examples if ex.video is None or ex.video.video_grid_thw.numel() == 0]
        if missing:  # a rank skipping the vision tower would hang the others under ZeRO-3 (anchors.md §3.5)
            raise RuntimeError(f"prompts without a video: {missing}; every GRPO prompt must carry one video")
        seed = sampling_seed(self.cfg.seed, self.accelerator.process_index, self.consumed_batches + micro_index)
        generator = torch.Generator(self.accelerator.device).manual_seed(seed)
        exp = self.sharding.with_full_parameters(
            self.scorer, lambda: self.maker.make(examples, self.model, generator, self.ref_logps)
        )
        self._placeholder = exp
        if batch.examples:
            self._standin = batch.examples[:1]
        return exp if batch.examples else None

    def _standin_examples(self) -> list[Example]:
        """This rank's last loadable prompt, or the dataset's first loadable one."""
        if self._standin is None:
            loaded = (self.dataset[i] for i in range(len(self.dataset)))
            self._standin = [next((item for item in loaded if isinstance(item, Example)), None)]
            if self._standin[0] is None:
                raise RuntimeError("no video of the dataset can be loaded; check data.video_root and data.annotations")
        return self._standin

    def backward(self, exp: Experience | None, num_items: float | None, num_micro: int, stats: StepStats) -> None:
        """Policy log-probs, GRPO loss and backward for one micro-batch (a zero-weight pass if it is empty)."""
        weight = 1.0
        if exp is None:  # every rank must run the same forward/backward for the gradients to sync
            exp, weight = self._placeholder, 0.0
        grpo = self.cfg.grpo
        roll = exp.rollout
        with self.accelerator.autocast():
            logp = self.scorer(exp.prompt, roll.completion_ids, roll.completion_mask, grpo.temperature)
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

    def log_step(self, metrics: dict[str, float]) -> None:
        """Log the metrics, and every ``trainer.log_completions_every`` steps a table of completions."""
        super().log_step(metrics)
        every = self.cfg.trainer.log_completions_every
        if every and self.step_count % every == 0 and self.last_experiences:
            columns, rows = completion_rows(self.last_experiences[0], self.rewards, self.step_count)
            self.metric_logger.log_table("completions", columns, rows, self.step_count)
