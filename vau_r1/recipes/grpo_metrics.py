"""What the trainer reports about each step: metric keys, per-experience statistics, completion tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vau_r1.engine.stats import StepStats
from vau_r1.grpo.experience import Experience
from vau_r1.tasks.dataset import ExampleBatch

#: Metrics reported as global sums over ranks and micro-batches (the others are means).
SUM_KEYS: tuple[str, ...] = ("data/skipped", "data/prompts")


def std_keys(rewards: Sequence[Any]) -> list[str]:
    """Metrics reported as ``<key>/mean`` and ``<key>/std``."""
    return [f"reward/{r.name}" for r in rewards] + ["reward/total", "advantage", "completion/length"]


def stat_keys(rewards: Sequence[Any]) -> list[str]:
    """Every metric key a step can produce, in a fixed order (identical on all ranks)."""
    return [
        *(f"reward/{r.name}" for r in rewards),
        "reward/total",
        "advantage",
        "groups/frac_zero_std",
        "completion/length",
        "completion/truncated",
        "train/loss",
        "train/kl",
        "train/clip_ratio/region",
        "train/clip_ratio/low",
        "train/clip_ratio/high",
        "train/grad_norm",
        "data/prompts",
        "data/skipped",
        "time/step_s",
    ]


def experience_stats(stats: StepStats, batch: ExampleBatch, exp: Experience | None, rewards: Sequence[Any]) -> None:
    """Add one micro-batch's rewards, advantages, group and completion statistics to ``stats``."""
    stats.add("data/skipped", float(len(batch.skipped)))
    stats.add("data/prompts", float(len(batch.examples)))
    if exp is None:
        return
    for k, reward in enumerate(rewards):
        stats.add(f"reward/{reward.name}", exp.rewards[:, k])
    stats.add("reward/total", exp.total)
    stats.add("advantage", exp.advantages.values)
    groups = exp.advantages.group_std.numel()
    stats.add("groups/frac_zero_std", [float(exp.advantages.frac_zero_std)] * groups)  # weight by group count
    stats.add("completion/length", exp.rollout.lengths.float())
    stats.add("completion/truncated", exp.rollout.is_truncated.float())


def completion_rows(exp: Experience, rewards: Sequence[Any], step: int) -> tuple[list[str], list[list[Any]]]:
    """A table of ``exp``'s completions: video, target, completion text, each reward, total, advantage."""
    columns = ["step", "video", "answer", "span", "completion", *(r.name for r in rewards), "total", "advantage"]
    G = exp.rollout.num_generations
    rows = []
    for i, text in enumerate(exp.texts):
        example = exp.examples[i // G]
        scores = [None if v != v else round(float(v), 4) for v in exp.rewards[i].tolist()]  # NaN → None
        total = float(exp.total[i])
        rows.append([
            step, example.sample.video, example.columns.get("answer"), example.columns.get("span"), text,
            *scores, None if total != total else round(total, 4), round(float(exp.advantages.values[i]), 4),
        ])  # fmt: skip
    return columns, rows
