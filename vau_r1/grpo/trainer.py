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
from tqdm.auto import tqdm
from transformers import get_scheduler

from vau_r1 import checkpoint
from vau_r1.config import ConfigError, RunConfig
from vau_r1.data.dataset import Example, ExampleBatch, VideoPromptDataset, resumable_batches
from vau_r1.distributed import ShardedBatchSampler, check_replicas_in_sync, sampling_seed
from vau_r1.grpo.experience import Experience, ExperienceMaker, global_loss_tokens, reference_logps
from vau_r1.grpo.loss import policy_loss
from vau_r1.grpo.policy import CompletionScorer
from vau_r1.grpo.reporting import SUM_KEYS, completion_rows, experience_stats, stat_keys, std_keys
from vau_r1.grpo.stats import StepStats
from vau_r1.loggers import MetricLogger, NullLogger
from vau_r1.model.families import family_of
from vau_r1.sharding import Sharding


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
        manifest: saved with every checkpoint (:func:`vau_r1.checkpoint.build_manifest`).
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
        self.accelerator, self.metric_logger = accelerator, metric_logger or NullLogger()
        self.manifest, self.config_yaml = manifest or {}, config_yaml
        tc = cfg.trainer
        self.sampler = ShardedBatchSampler(
            len(dataset), tc.per_device_batch_size, accelerator.process_index, accelerator.num_processes,
            seed=cfg.seed, shuffle=cfg.data.shuffle,
        )  # fmt: skip
        self.total_steps = tc.max_steps or tc.num_epochs * len(self.sampler) // tc.gradient_accumulation_steps
        if self.total_steps < 1:
            raise ConfigError(
                f"trainer.gradient_accumulation_steps={tc.gradient_accumulation_steps} exceeds the "
                f"{len(self.sampler)} batches of an epoch; lower it, or set trainer.max_steps"
            )
        self.sharding = Sharding(accelerator)
        self._prepare(model)
        self.maker = ExperienceMaker(
            tokenizer, rewards, cfg.grpo, family_of(self.model), accelerator.device, accelerator.autocast
        )
        self.ref_model, self.ref_logps = self._reference(ref_model)
        self.step_count, self.consumed_batches = 0, 0
        self.last_experiences: list[Experience] = []
        self.last_metrics: dict[str, float] = {}
        self._placeholder: Experience | None = None
        self._standin: list[Example] | None = None

    def _prepare(self, model: nn.Module) -> None:
        """Wrap the policy for training (DDP, DeepSpeed or FSDP2); build AdamW and the LR schedule over it."""
        tc, grpo = self.cfg.trainer, self.cfg.grpo
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable, lr=tc.learning_rate, betas=tc.adam_betas, eps=tc.adam_eps, weight_decay=tc.weight_decay
        )
        scorer = CompletionScorer(model, grpo.reuse_vision_features, grpo.logprob_chunk_tokens)
        self.sharding.configure(scorer, tc.per_device_batch_size, tc.max_grad_norm)
        self.scorer, self.optimizer = self.accelerator.prepare(scorer, optimizer)
        # On the prepared optimizer (DeepSpeed may swap in its own, e.g. CPU Adam with offload); not prepared
        # itself, as accelerate would step it once per process.
        self.scheduler = get_scheduler(
            tc.lr_scheduler, self.optimizer, num_warmup_steps=tc.warmup_steps,
            num_training_steps=self.total_steps * grpo.num_iterations,
        )  # fmt: skip

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

    @property
    def model(self) -> nn.Module:
        """The unwrapped policy model (what checkpoints save and generation uses)."""
        return self.accelerator.unwrap_model(self.scorer).model

    # ------------------------------------------------------------------ loop

    def fit(self, until_step: int | None = None) -> dict[str, float]:
        """Train up to ``trainer.max_steps`` (or ``until_step``, to stop early), resuming if configured.

        Returns:
            The metrics of the last step.
        """
        resume_from = checkpoint.resolve_resume(self.cfg.resume, self.cfg.output_dir)
        if resume_from is not None:
            self.load(resume_from)
        stop = min(self.total_steps, until_step or self.total_steps)
        batches = resumable_batches(self.dataset, self.sampler, self.consumed_batches, self.cfg.data.num_workers)
        bar = tqdm(total=stop, initial=self.step_count, desc="grpo", disable=not self.accelerator.is_main_process)
        metrics: dict[str, float] = {}
        while self.step_count < stop:
            micro = [next(batches) for _ in range(self.cfg.trainer.gradient_accumulation_steps)]
            metrics = self.last_metrics = self.step(micro)
            self.step_count += 1
            self.consumed_batches += len(micro)
            self._log(metrics)
            bar.update(1)
            bar.set_postfix(reward=f"{metrics.get('reward/total/mean', float('nan')):.3f}")
            if self.step_count % self.cfg.trainer.save_every == 0 or (
                self.step_count == self.total_steps and self.cfg.trainer.save_final
            ):
                self.save()
        bar.close()
        return metrics

    def step(self, micro_batches: list[ExampleBatch]) -> dict[str, float]:
        """One optimisation step: rollout → score → advantages → loss → optimizer (μ updates per rollout)."""
        start_s = time.perf_counter()
        experiences = [self.make_experience(batch, i) for i, batch in enumerate(micro_batches)]
        stats = StepStats(stat_keys(self.rewards))
        num_items = global_loss_tokens(self.accelerator, experiences) if self.cfg.grpo.loss_type == "dapo" else None
        for _ in range(self.cfg.grpo.num_iterations):
            for i, exp in enumerate(experiences):
                with self.sharding.micro_batch(self.scorer, last=i == len(experiences) - 1):
                    self.backward(exp, num_items, len(experiences), stats)
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

    def optimizer_step(self) -> float:
        """Clip gradients, step the optimizer and the LR schedule; returns the pre-clip gradient norm."""
        params = [p for p in self.scorer.parameters() if p.requires_grad]
        max_norm = self.cfg.trainer.max_grad_norm
        # DeepSpeed clips (trainer.max_grad_norm) and steps inside backward; this returns its pre-clip norm.
        norm = self.accelerator.clip_grad_norm_(params, max_norm if max_norm is not None else float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float("nan") if norm is None else float(norm)

    # ------------------------------------------------------------------ helpers

    def _log(self, metrics: dict[str, float]) -> None:
        tc = self.cfg.trainer
        if self.step_count % tc.log_every == 0 or self.step_count == 1:
            self.metric_logger.log(metrics, self.step_count)
        every = tc.log_completions_every
        if every and self.step_count % every == 0 and self.last_experiences:
            columns, rows = completion_rows(self.last_experiences[0], self.rewards, self.step_count)
            self.metric_logger.log_table("completions", columns, rows, self.step_count)

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> None:
        """Check that ranks agree, then write a checkpoint for the current step (all ranks take part)."""
        with self.sharding.full_parameters(self.scorer):
            digests = check_replicas_in_sync(self.accelerator, self.model)
        checkpoint.save_checkpoint(
            self.cfg.output_dir, self.step_count, accelerator=self.accelerator, model=self.model,
            tokenizer=self.tokenizer, optimizer=self.optimizer, scheduler=self.scheduler,
            trainer_state={"step": self.step_count, "consumed_batches": self.consumed_batches,
                           "total_steps": self.total_steps, "strategy": self.sharding.name,
                           "param_digest_per_rank": digests},
            manifest=self.manifest, config_yaml=self.config_yaml, keep_last=self.cfg.trainer.keep_last,
            prepared=self.scorer if self.sharding.enabled else None,
        )  # fmt: skip

    def load(self, path: Any) -> None:
        """Continue from checkpoint ``path``: weights, optimizer, schedule, RNG and data position."""
        state = checkpoint.load_checkpoint(
            path, accelerator=self.accelerator, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
            prepared=self.scorer if self.sharding.enabled else None,
        )  # fmt: skip
        self.step_count, self.consumed_batches = int(state["step"]), int(state["consumed_batches"])
