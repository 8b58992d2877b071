"""Rule-based rewards for GRPO on VAU tasks, with TRL's reward contract.

Every reward is ``fn(completions, **columns) -> list[float | None]``: ``completions`` are strings
or TRL conversational messages, dataset columns arrive as keyword lists aligned with them
(``task``, ``answer``, ``span``, ...), and ``None`` marks a sample the reward does not apply to.
They plug into ``trl.GRPOTrainer(reward_funcs=[...])`` as they are, or into this library's
trainer through the registry::

    rewards = build_rewards([{"name": "format", "weight": 1.0}, {"name": "accuracy", "weight": 1.0}])
    per_func, total = score_completions(rewards, completions, {"task": tasks, "answer": answers})

Registered names: ``format``, ``format_no_think``, ``accuracy``, ``temporal_iou``, ``tiou_v2``. Their values: the
format rewards 0 or 1 (never ``None``), ``accuracy`` 0, 1 or ``None``, the IoU rewards [0, 1] or ``None``; none
raises, whatever the completions and columns hold (``tests/robustness/test_reward_fuzz.py``). A reward's
keyword-only parameters are options a config binds (``{name: temporal_iou, options: {normal_iou: 0.4}}``);
:func:`balanced_normal_iou` computes the ``normal_iou`` that gives blind "always Normal" no edge.
"""

from __future__ import annotations

from vau_r1.rewards.accuracy import accuracy_reward
from vau_r1.rewards.balance import balanced_normal_iou
from vau_r1.rewards.format import format_reward, no_think_format_reward
from vau_r1.rewards.registry import (
    REWARDS,
    RewardFn,
    RewardScores,
    WeightedReward,
    bind_options,
    build_rewards,
    get_reward,
    register,
    reward_options,
    score_completions,
)

# Only the reward functions: re-exporting ``temporal_iou`` would shadow the submodule of that name.
from vau_r1.rewards.temporal_iou import temporal_iou_reward, tiou_v2_reward

__all__ = [
    "REWARDS",
    "RewardFn",
    "RewardScores",
    "WeightedReward",
    "accuracy_reward",
    "balanced_normal_iou",
    "bind_options",
    "build_rewards",
    "format_reward",
    "get_reward",
    "no_think_format_reward",
    "register",
    "reward_options",
    "score_completions",
    "temporal_iou_reward",
    "tiou_v2_reward",
]
