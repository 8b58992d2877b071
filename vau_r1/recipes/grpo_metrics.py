"""What the trainer reports about each step: metric keys, per-experience statistics, completion tables.

Per task (co-training, ``data.tasks``): ``reward/<name>/<task>/mean|std`` (a reward that does not apply to the
task never appears), ``reward/total/<task>/mean|std`` and ``data/prompts/<task>`` (the step's prompts of the
task, summed over ranks). Their keys come from the configured task list, never from the batch, so every rank
reduces the same vector even when its batch lacks a task; a task absent from a step's batches leaves its
means out of that step (its count is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vau_r1.data.schema import TASKS
from vau_r1.engine.stats import StepStats
from vau_r1.grpo.experience import Experience
from vau_r1.tasks.dataset import ExampleBatch

#: Metrics reported as global sums over ranks and micro-batches (the others are means); ``data/prompts/<task>``
#: for every task (only the trained tasks' keys are registered, by :func:`stat_keys`).
SUM_KEYS: tuple[str, ...] = ("data/skipped", "data/prompts", *(f"data/prompts/{task}" for task in TASKS))


def task_reward_keys(rewards: Sequence[Any], tasks: Sequence[str]) -> list[str]:
    """``reward/<name>/<task>`` and ``reward/total/<task>`` for every reward and task, task-major."""
    return [key for task in tasks for key in (*(f"reward/{r.name}/{task}" for r in rewards), f"reward/total/{task}")]


def std_keys(rewards: Sequence[Any]) -> list[str]:
    """Metrics reported as ``<key>/mean`` and ``<key>/std`` (the per-task rewards of every task included)."""
    return [f"reward/{r.name}" for r in rewards] + ["reward/total", "advantage", "completion/length",
                                                    *task_reward_keys(rewards, TASKS)]  # fmt: skip


def stat_keys(rewards: Sequence[Any], tasks: Sequence[str] = ()) -> list[str]:
    """Every metric key a step can produce, in a fixed order (identical on all ranks).

    Args:
        rewards: the weighted rewards.
        tasks: the configured tasks (``data.task_list``), whose per-task keys are registered; not the batch's.
    """
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
        *task_reward_keys(rewards, tasks),
        *(f"data/prompts/{task}" for task in tasks),
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
    task_stats(stats, exp, rewards)


def task_stats(stats: StepStats, exp: Experience, rewards: Sequence[Any]) -> None:
    """Each task's prompt count and rewards (NaN: not applicable, ignored) of one micro-batch's experience."""
    G = exp.rollout.num_generations
    tasks = [example.columns["task"] for example in exp.examples]  # one per prompt
    for task in dict.fromkeys(tasks):
        rows = [i for i in range(len(tasks) * G) if tasks[i // G] == task]  # prompt-major completions
        stats.add(f"data/prompts/{task}", float(tasks.count(task)))
        for k, reward in enumerate(rewards):
            stats.add(f"reward/{reward.name}/{task}", exp.rewards[rows, k])
        stats.add(f"reward/total/{task}", exp.total[rows])


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
