"""GRPO sampling and objective settings (the ``grpo`` section, ``vau_r1/configs/grpo/*.yaml``).

Example:
    >>> try:
    ...     GRPOConfig(num_generations=1)
    ... except ConfigError as error:
    ...     print(error)
    grpo.num_generations=1 gives zero-variance groups (no learning signal); set it to 2 or more
"""

from __future__ import annotations

from dataclasses import dataclass

from vau_r1.grpo.advantages import SCALES
from vau_r1.grpo.loss import LOSS_TYPES
from vau_r1.policy.logprobs import DEFAULT_CHUNK_TOKENS
from vau_r1.sections import check


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO sampling and objective (``vau_r1/configs/grpo/*.yaml``; each field is documented there)."""

    num_generations: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    max_prompt_tokens: int | None = None
    max_completion_tokens: int = 1024
    beta: float = 0.04
    epsilon: float = 0.2
    epsilon_high: float | None = None
    num_iterations: int = 1
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    advantage_eps: float = 1e-4
    mask_truncated_completions: bool = False
    reuse_vision_features: bool = True
    share_prompt: bool = True
    logprob_chunk_tokens: int | None = DEFAULT_CHUNK_TOKENS

    def __post_init__(self) -> None:
        g = "grpo."
        check(
            self.num_generations >= 2,
            f"{g}num_generations={self.num_generations} gives zero-variance groups (no learning signal); "
            "set it to 2 or more",
        )
        check(self.temperature > 0, f"{g}temperature={self.temperature} must be > 0 (sampling only; 1.0 = paper)")
        check(0 < self.top_p <= 1, f"{g}top_p={self.top_p} must be in (0, 1]; 1.0 disables nucleus filtering")
        check(self.top_k >= 0, f"{g}top_k={self.top_k} must be >= 0; 0 disables top-k filtering")
        check(self.max_completion_tokens >= 1, f"{g}max_completion_tokens must be >= 1")
        check(
            self.max_prompt_tokens is None or self.max_prompt_tokens >= 1,
            f"{g}max_prompt_tokens={self.max_prompt_tokens} must be null (no limit) or >= 1",
        )
        check(self.beta >= 0, f"{g}beta={self.beta} must be >= 0; 0 disables the KL term and the reference model")
        check(self.epsilon > 0, f"{g}epsilon={self.epsilon} must be > 0 (clip range, TRL default 0.2)")
        check(
            self.epsilon_high is None or self.epsilon_high >= self.epsilon,
            f"{g}epsilon_high={self.epsilon_high} must be null (= epsilon) or >= epsilon={self.epsilon}",
        )
        check(self.num_iterations >= 1, f"{g}num_iterations={self.num_iterations} must be >= 1 (1 = paper)")
        check(self.loss_type in LOSS_TYPES, f"{g}loss_type={self.loss_type!r}; expected one of {list(LOSS_TYPES)}")
        check(
            self.scale_rewards in SCALES, f"{g}scale_rewards={self.scale_rewards!r}; expected one of {list(SCALES)}"
        )
        check(self.advantage_eps > 0, f"{g}advantage_eps must be > 0 (paper: 1e-4)")
        check(
            self.logprob_chunk_tokens is None or self.logprob_chunk_tokens >= 1,
            f"{g}logprob_chunk_tokens={self.logprob_chunk_tokens} must be null (full logits) or >= 1",
        )
