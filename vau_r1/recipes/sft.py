"""Supervised fine-tuning on video prompts: the baseline the paper compares GRPO with (``docs/paper.md`` §7).

One optimisation step (:meth:`SFTTrainer.step`)::

    for each of the A accumulation micro-batches (B examples each, this rank's shard):
        encode    prompt (left-padded, with its video) + target ids closed by <|im_end|> (right-padded)
        loss      - sum of the target tokens' log-probs / target tokens of the whole step (all ranks)
    optimizer     clip gradients, AdamW step, LR schedule step

The forward pass is :class:`~vau_r1.policy.scorer.CompletionScorer`, the pass GRPO scores completions with
(vision tower once per video, ``second_per_grid_ts`` and ``mm_token_type_ids`` passed, logits only over the
target), and the loop, the data order and the checkpoints are :class:`~vau_r1.engine.loop.TrainEngine`'s, shared
with GRPO. An SFT checkpoint's ``model/`` folder (weights and tokenizer) therefore starts a GRPO run as it is:
``vau-r1 train experiment=... model.name_or_path=<run>/checkpoints/step_XXXXXX/model``.

Per task (co-training, ``data.tasks``): ``train/loss/<task>`` (the token mean over that task's targets in the
step), ``data/prompts/<task>`` and ``data/target_tokens/<task>`` (summed over ranks), keyed by the configured
task list so that every rank reduces the same vector; a task absent from a step leaves its loss out of that step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vau_r1.data.schema import TASKS
from vau_r1.engine.distributed import global_loss_tokens
from vau_r1.engine.loggers import MetricLogger
from vau_r1.engine.loop import TrainEngine
from vau_r1.engine.stats import StepStats
from vau_r1.model.families import family_of
from vau_r1.policy.scorer import CompletionScorer
from vau_r1.recipes.config import RunConfig
from vau_r1.sft.batching import SFTBatch, SFTTargets, build_sft_batch
from vau_r1.tasks.dataset import Example, ExampleBatch, VideoPromptDataset, first_loadable

#: Every metric key a step can produce without the per-task ones, in a fixed order (identical on all ranks).
STAT_KEYS: tuple[str, ...] = (
    "train/loss", "train/grad_norm", "data/prompts", "data/skipped", "data/target_tokens", "data/truncated",
    "time/step_s",
)  # fmt: skip
#: Metrics reported as global sums over ranks and micro-batches (the others are means), per-task counts included.
SUM_KEYS: tuple[str, ...] = (
    "data/prompts", "data/skipped", "data/target_tokens", "data/truncated",
    *(f"data/{count}/{t}" for t in TASKS for count in ("prompts", "target_tokens")),
)  # fmt: skip


def stat_keys(tasks: Sequence[str]) -> list[str]:
    """:data:`STAT_KEYS` plus ``train/loss/<task>``, ``data/prompts/<task>``, ``data/target_tokens/<task>``."""
    per_task = [f"{key}/{t}" for t in tasks for key in ("train/loss", "data/prompts", "data/target_tokens")]
    return [*STAT_KEYS, *per_task]


def sft_targets(cfg: RunConfig) -> SFTTargets:
    """The run's target rule: ``sft.target_preset`` (default ``data.prompt_preset``) and ``sft.think``."""
    return SFTTargets(cfg.sft.target_preset or cfg.data.prompt_preset, cfg.sft.think)


class SFTTrainer:
    """Trains ``model`` to produce each example's target after its video prompt (token-mean cross-entropy).

    Args:
        cfg: the validated run config (``algorithm: sft``; ``sft`` holds the target settings).
        model: the model (``...ForConditionalGeneration``, or a PEFT model around one), not yet wrapped.
        tokenizer: its tokenizer (chat template included).
        dataset: the training examples; each example's ``columns["task"]`` picks its target.
        accelerator: the run's accelerator.
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
        accelerator: Any,
        metric_logger: MetricLogger | None = None,
        manifest: dict[str, Any] | None = None,
        config_yaml: str = "",
    ) -> None:
        self.cfg, self.tokenizer, self.dataset, self.accelerator = cfg, tokenizer, dataset, accelerator
        self.engine = TrainEngine(
            cfg.trainer, cfg.loop_settings(), tokenizer, dataset, accelerator, metric_logger, manifest, config_yaml,
            progress_desc="sft", progress_metrics=(("loss", "train/loss"),),
        )  # fmt: skip
        self.family = family_of(model)
        self.targets = sft_targets(cfg)
        self.engine.prepare(CompletionScorer(model))
        self._placeholder: SFTBatch | None = None

    @property
    def model(self) -> nn.Module:
        """The unwrapped model (what checkpoints save)."""
        return self.engine.model

    def fit(self, until_step: int | None = None) -> dict[str, float]:
        """Train to the last step (or ``until_step``), resuming if configured; returns the last metrics."""
        return self.engine.fit(self.step, until_step)

    def encode(self, examples: list[Example]) -> SFTBatch:
        """Prompts and targets of ``examples`` as an :class:`SFTBatch` on the device."""
        texts = [self.targets.text(ex.sample, ex.columns["task"]) for ex in examples]
        batch = build_sft_batch(
            self.tokenizer, [ex.messages for ex in examples], [ex.video for ex in examples], texts,
            family=self.family, max_seq_tokens=self.cfg.sft.max_seq_tokens,
        )  # fmt: skip
        return batch.to(self.accelerator.device)

    def step(self, micro_batches: list[ExampleBatch]) -> dict[str, float]:
        """One optimisation step: encode → token-mean cross-entropy over the step's targets → backward → optimizer."""
        start_s = time.perf_counter()
        stats = StepStats(stat_keys(self.cfg.data.task_list))
        batches = [self.encode(mb.examples) if mb.examples else None for mb in micro_batches]  # target_ids [B, L]
        local_tokens = sum(float(b.loss_mask.sum()) for b in batches if b is not None)
        num_items = global_loss_tokens(self.accelerator, local_tokens)
        tasks = [[ex.columns["task"] for ex in mb.examples] for mb in micro_batches]  # one per example
        self.engine.accumulate(list(zip(batches, tasks, strict=True)),
                               lambda item: self.backward(item[0], num_items, stats, item[1]))  # fmt: skip
        stats.add("train/grad_norm", self.engine.optimizer_step())
        for micro, batch, micro_tasks in zip(micro_batches, batches, tasks, strict=True):
            stats.add("data/prompts", float(len(micro.examples)))
            for task in dict.fromkeys(micro_tasks):
                stats.add(f"data/prompts/{task}", float(micro_tasks.count(task)))
            stats.add("data/skipped", float(len(micro.skipped)))
            if batch is not None:
                stats.add("data/target_tokens", float(batch.num_tokens))
                stats.add("data/truncated", batch.truncated.float().sum())
        stats.add("time/step_s", time.perf_counter() - start_s)
        metrics = stats.reduce(self.accelerator, sum_keys=SUM_KEYS)
        metrics["train/lr"] = self.engine.scheduler.get_last_lr()[0]
        return metrics

    def backward(
        self, batch: SFTBatch | None, num_items: float, stats: StepStats, tasks: Sequence[str] = ()
    ) -> None:
        """Loss and backward of one micro-batch (a zero-weight pass when all its videos were skipped).

        ``num_items`` is the step's target-token count over all ranks divided by the process count, so that
        DDP's gradient average gives the token mean over the global batch. ``tasks`` (one per row) splits the
        logged loss by task.
        """
        weight = 1.0
        if batch is None:  # every rank must run the same forward/backward for the gradients to sync
            batch, weight = self.placeholder(), 0.0
        with self.engine.autocast():
            logp = self.engine.scorer(batch.prompt, batch.target_ids, batch.loss_mask)  # [B, L]
        nll = -logp * batch.loss_mask
        self.accelerator.backward(nll.sum() * (weight / num_items))
        if weight:
            stats.add("train/loss", nll.detach()[batch.loss_mask.bool()])  # token mean over the step
            for task in dict.fromkeys(tasks):
                rows = torch.tensor([t == task for t in tasks], device=nll.device)
                mask = batch.loss_mask.bool() & rows[:, None]
                stats.add(f"train/loss/{task}", nll.detach()[mask])
                stats.add(f"data/target_tokens/{task}", float(mask.sum()))

    def placeholder(self) -> SFTBatch:
        """The batch a rank with an empty micro-batch runs its zero-weight pass on (the first loadable example)."""
        if self._placeholder is None:
            self._placeholder = self.encode([first_loadable(self.dataset)])
        return self._placeholder
