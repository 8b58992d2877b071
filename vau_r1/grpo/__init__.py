"""GRPO math as pure tensor functions: advantages, the clipped policy loss, and token log-probs.

Batches are prompt-major: completion ``i`` of prompt ``b`` sits at row ``b*G + i``.
"""

from __future__ import annotations

from vau_r1.grpo.advantages import SCALES, Advantages, combine_rewards, group_advantages
from vau_r1.grpo.loss import LOSS_TYPES, LossStats, kl_k3, policy_loss, truncation_mask
from vau_r1.policy.logprobs import chunked_logprobs, token_logprobs

__all__ = [
    "LOSS_TYPES",
    "SCALES",
    "Advantages",
    "LossStats",
    "chunked_logprobs",
    "combine_rewards",
    "group_advantages",
    "kl_k3",
    "policy_loss",
    "token_logprobs",
    "truncation_mask",
]
