"""The training engine shared by the recipes: data order, wrapping, optimiser, schedule, logging, checkpoints.

It runs on one process, DDP, DeepSpeed ZeRO-2/3 or FSDP2 (``trainer.strategy``; the differences live in
:class:`~vau_r1.engine.sharding.Sharding`). A recipe (:mod:`vau_r1.recipes`) owns a :class:`TrainEngine` and
hands :meth:`TrainEngine.fit` its step function; the loop around the step is the same for every algorithm::

    fit(step):  resume if configured
                until the last step:
                    take gradient_accumulation_steps micro-batches of this rank's shard
                    step(micro-batches) → metrics   (the recipe: forward, engine.accumulate, engine.optimizer_step)
                    + time/data_wait_s, the seconds spent waiting for those micro-batches (decoding not hidden
                      by DataLoader workers)
                    log, update the progress bar, save every save_every steps (and after the last)

Every recipe therefore writes the same checkpoint layout (:mod:`vau_r1.engine.checkpoint`) and resumes exactly:
the data position is derived from the count of consumed batches, the RNG states and the optimiser and
schedule are restored, and :func:`~vau_r1.engine.distributed.sampling_seed` derives per-step randomness.
The engine reads the ``trainer`` section and the run-level keys (:class:`~vau_r1.engine.config.LoopSettings`),
not the whole run config.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from vau_r1.engine import checkpoint
from vau_r1.engine.config import LoopSettings, TrainerConfig
from vau_r1.engine.distributed import ShardedBatchSampler, StepWatchdog, check_replicas_in_sync
from vau_r1.engine.loggers import MetricLogger, NullLogger
from vau_r1.engine.sharding import Sharding
from vau_r1.sections import ConfigError
from vau_r1.tasks.dataset import ExampleBatch, resumable_batches

T = TypeVar("T")


#: What a recipe's step is: this rank's micro-batches of one optimisation step → the step's metrics.
StepFn = Callable[[list[ExampleBatch]], dict[str, float]]


class TrainEngine:
    """Data order, optimisation, logging and checkpoints of a training run; the recipe supplies the step.

    Args:
        trainer: the ``trainer`` section (optimiser, schedule, accumulation, checkpoints, logging cadence).
        run: the run-level keys (algorithm, output dir, seed, resume, data order).
        tokenizer: saved beside the model in every checkpoint.
        dataset: the training examples.
        accelerator: the run's accelerator.
        metric_logger: where metrics go (rank 0); defaults to nothing.
        manifest: saved with every checkpoint (:func:`vau_r1.engine.checkpoint.build_manifest`).
        config_yaml: resolved config text saved with every checkpoint.
        progress_desc: label of the progress bar.
        progress_metrics: metrics shown next to the progress bar, ``(label, metric key)`` pairs.

    Raises:
        ConfigError: an epoch has fewer batches than one optimisation step needs.
    """

    def __init__(
        self,
        trainer: TrainerConfig,
        run: LoopSettings,
        tokenizer: Any,
        dataset: Any,
        accelerator: Any,
        metric_logger: MetricLogger | None = None,
        manifest: dict[str, Any] | None = None,
        config_yaml: str = "",
        progress_desc: str = "train",
        progress_metrics: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.trainer, self.run, self.tokenizer, self.dataset = trainer, run, tokenizer, dataset
        self.accelerator = accelerator
        self.metric_logger = metric_logger or NullLogger()
        self.manifest, self.config_yaml = manifest or {}, config_yaml
        self.progress_desc, self.progress_metrics = progress_desc, progress_metrics
        tc = trainer
        self.sampler = ShardedBatchSampler(
            len(dataset), tc.per_device_batch_size, accelerator.process_index, accelerator.num_processes,
            seed=run.seed, shuffle=run.shuffle,
        )  # fmt: skip
        epochs_steps = tc.num_epochs * len(self.sampler) // tc.gradient_accumulation_steps
        self.total_steps: int = tc.max_steps or epochs_steps
        if self.total_steps < 1:
            raise ConfigError(
                f"trainer.gradient_accumulation_steps={tc.gradient_accumulation_steps} exceeds the "
                f"{len(self.sampler)} batches of an epoch; lower it, or set trainer.max_steps"
            )
        self.step_count, self.consumed_batches = 0, 0
        self.last_metrics: dict[str, float] = {}
        self.sharding = Sharding(accelerator)
        self.watchdog = StepWatchdog(accelerator, tc.collective_timeout_s)
        self.scorer: nn.Module | None = None  # the prepared (wrapped) module whose forward trains the model
        self.weights_dtype: torch.dtype | None = None  # the model's bf16/fp16 when it trains as fp32 masters

    def prepare(self, module: nn.Module, updates_per_step: int = 1) -> None:
        """Wrap ``module`` for training (DDP, DeepSpeed or FSDP2); build AdamW and the LR schedule over it.

        Args:
            module: a module holding the model as ``module.model`` (a
                :class:`~vau_r1.policy.scorer.CompletionScorer`), so that one ``forward`` covers every trained
                weight and the wrapper synchronises all of them.
            updates_per_step: optimiser updates per :meth:`step` (the schedule is stepped once per update).
        """
        tc = self.trainer
        module.train()
        self.weights_dtype = self.sharding.keep_fp32_masters(module.model)
        trainable = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(
            trainable, lr=tc.learning_rate, betas=tc.adam_betas, eps=tc.adam_eps, weight_decay=tc.weight_decay
        )
        self.sharding.configure(module, tc.per_device_batch_size, tc.max_grad_norm)
        self.scorer, self.optimizer = self.accelerator.prepare(module, optimizer)
        # On the prepared optimizer (DeepSpeed may swap in its own) but not prepared itself: accelerate would
        # step it once per process.
        num_updates = self.total_steps * updates_per_step
        self.scheduler = get_scheduler(
            tc.lr_scheduler, self.optimizer, num_warmup_steps=tc.warmup_steps, num_training_steps=num_updates
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of every forward (recipes use it instead of ``accelerator.autocast()``).

        The accelerator's, or, when it has none (``mixed_precision: no``) and the weights train as fp32 masters
        (:meth:`~vau_r1.engine.sharding.Sharding.keep_fp32_masters`), one to the model's own bf16/fp16.
        """
        if self.weights_dtype is None or self.accelerator.mixed_precision != "no":
            return self.accelerator.autocast()
        return torch.autocast(self.accelerator.device.type, dtype=self.weights_dtype)

    @property
    def model(self) -> nn.Module:
        """The unwrapped model (what checkpoints save and generation uses)."""
        return self.accelerator.unwrap_model(self.scorer).model

    # ------------------------------------------------------------------ loop

    def fit(self, step: StepFn, until_step: int | None = None) -> dict[str, float]:
        """Run ``step`` up to the last step (or ``until_step``, to stop early), resuming if ``run.resume`` says so.

        Returns:
            The metrics of the last step.
        """
        resume_from = checkpoint.resolve_resume(self.run.resume, self.run.output_dir)
        if resume_from is not None:
            self.load(resume_from)
        stop = min(self.total_steps, until_step or self.total_steps)
        tc = self.trainer
        batches = resumable_batches(self.dataset, self.sampler, self.consumed_batches, self.run.num_workers)
        bar = tqdm(
            total=stop, initial=self.step_count, desc=self.progress_desc, disable=not self.accelerator.is_main_process
        )
        while self.step_count < stop:
            with self.watchdog.step(self.step_count + 1):  # a silent rank: an error naming the step, no hang
                wait_start_s = time.perf_counter()
                micro = [next(batches) for _ in range(tc.gradient_accumulation_steps)]
                data_wait_s = time.perf_counter() - wait_start_s  # the step is stalled on decoding this long
                self.last_metrics = {**step(micro), "time/data_wait_s": data_wait_s}
                self.step_count += 1
                self.consumed_batches += len(micro)
                self.log_step(self.last_metrics)
                bar.update(1)
                shown = {label: f"{self.last_metrics[key]:.4g}" for label, key in self.progress_metrics
                         if key in self.last_metrics}  # fmt: skip
                bar.set_postfix(shown, refresh=False)
                final = self.step_count == self.total_steps and tc.save_final
                if self.step_count % tc.save_every == 0 or final:
                    self.save()
        bar.close()
        return self.last_metrics

    def accumulate(self, items: Sequence[T], backward: Callable[[T], None]) -> None:
        """Call ``backward`` on each micro-batch item; gradients are synchronised after the last one."""
        for i, item in enumerate(items):
            with self.sharding.micro_batch(self.scorer, last=i == len(items) - 1):
                backward(item)

    def optimizer_step(self) -> float:
        """Clip gradients, step the optimizer and the LR schedule; returns the pre-clip gradient norm.

        Under DeepSpeed the clipping and the step happen inside the last ``backward``; the norm is DeepSpeed's
        (NaN when it reports none).
        """
        max_norm = self.trainer.max_grad_norm
        trainable = [p for p in self.scorer.parameters() if p.requires_grad]
        norm = self.accelerator.clip_grad_norm_(trainable, float("inf") if max_norm is None else max_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float("nan") if norm is None else float(norm)

    def log_step(self, metrics: dict[str, float]) -> None:
        """Log the step's metrics every ``trainer.log_every`` steps (and at step 1)."""
        if self.step_count == 1 or self.step_count % self.trainer.log_every == 0:
            self.metric_logger.log(metrics, self.step_count)

    # ------------------------------------------------------------------ checkpoints

    def trainer_state(self) -> dict[str, Any]:
        """The JSON loop state saved in ``trainer_state.json``."""
        return {
            "algorithm": self.run.algorithm,
            "step": self.step_count,
            "consumed_batches": self.consumed_batches,
            "total_steps": self.total_steps,
            "strategy": self.sharding.name,
        }

    def save(self) -> None:
        """Check that ranks agree, then write a checkpoint of the current step (all ranks take part)."""
        with self.sharding.full_parameters(self.scorer):
            digests = check_replicas_in_sync(self.accelerator, self.model)
        state = {**self.trainer_state(), "param_digest_per_rank": digests}
        checkpoint.save_checkpoint(
            self.run.output_dir,
            self.step_count,
            accelerator=self.accelerator,
            model=self.model,
            tokenizer=self.tokenizer,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            trainer_state=state,
            manifest=self.manifest,
            config_yaml=self.config_yaml,
            keep_last=self.trainer.keep_last,
            prepared=self.scorer if self.sharding.enabled else None,
            save_dtype=self.weights_dtype,
        )

    def load(self, path: Any) -> None:
        """Continue from checkpoint ``path``: weights, optimizer, schedule, RNG and data position."""
        parts = {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler}
        prepared = self.scorer if self.sharding.enabled else None
        state = checkpoint.load_checkpoint(path, accelerator=self.accelerator, prepared=prepared, **parts)
        self.step_count, self.consumed_batches = int(state["step"]), int(state["consumed_batches"])
