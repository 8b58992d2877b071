"""Group-relative advantages: combine per-function rewards, then normalise within each prompt's group.

Layout (used by every function here and by the trainer): the batch is **prompt-major**. The ``G``
completions of prompt ``b`` occupy the contiguous rows ``b*G .. b*G + G-1``, so completion ``i`` of
prompt ``b`` sits at row ``b*G + i`` and ``rewards.view(B, G)`` recovers the groups.

Standard deviation: the paper's code (``docs/paper.md`` §6.1 step 8) computes
``A_i = (r_i - mean_g r) / (std_g r + 1e-4)`` with ``torch.std``, i.e. the **unbiased** (N-1)
estimator, and TRL's ``nanstd`` applies the same Bessel correction (also with ``+ 1e-4``). Both are
therefore the default here (``std_unbiased=True``, ``eps=1e-4``); set ``std_unbiased=False`` for
the population std.

Missing rewards: a reward function returns ``None`` when it does not apply; it reaches this module as
NaN. A row whose rewards are all NaN is *unscorable*: it is left out of its group's mean and std and
gets advantage exactly 0, so it neither biases the baseline nor moves the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch

Scale = Literal["group", "batch", "none"]
SCALES: tuple[str, ...] = ("group", "batch", "none")


class Advantages(NamedTuple):
    """Output of :func:`group_advantages`.

    Attributes:
        values: ``[B*G]`` advantages, finite everywhere (0 for unscorable rows and zero-std groups).
        group_std: ``[B]`` NaN-aware std of each group's rewards (0 where a group has < 2 scored rows).
        frac_zero_std: 0-dim float tensor, fraction of the ``B`` groups whose scored rewards are all equal
            (no learning signal; TRL logs it as ``frac_reward_zero_std``).
    """

    values: torch.Tensor
    group_std: torch.Tensor
    frac_zero_std: torch.Tensor


def combine_rewards(per_func: torch.Tensor, weights: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Weighted, NaN-aware sum of the per-function rewards.

    Args:
        per_func: ``[N, K]`` rewards of ``K`` functions for ``N`` completions; NaN where a function
            returned ``None``.
        weights: ``[K]`` weight of each function.

    Returns:
        ``[N]`` total reward: ``nansum_k(w_k * r_nk)``; NaN for a row whose ``K`` rewards are all NaN.

    Example:
        >>> nan = float("nan")
        >>> combine_rewards(torch.tensor([[1.0, 0.5], [nan, 1.0], [nan, nan]]), [1.0, 2.0])
        tensor([2., 2., nan])
    """
    if per_func.dim() != 2:
        raise ValueError(f"per_func must be [N, K]; got shape {tuple(per_func.shape)}")
    w = torch.as_tensor(weights, dtype=per_func.dtype, device=per_func.device)  # [K]
    if w.shape != (per_func.shape[1],):
        raise ValueError(f"weights must be [{per_func.shape[1]}], one per reward function; got {tuple(w.shape)}")
    total = (per_func * w).nansum(dim=1)  # [N]
    unscorable = per_func.isnan().all(dim=1)  # [N]
    return total.masked_fill(unscorable, float("nan"))


def _nanstd(x: torch.Tensor, dim: int | None, unbiased: bool) -> torch.Tensor:
    """NaN-aware std over ``dim`` (all elements when None); 0 where fewer than 2 values are finite."""
    valid = ~x.isnan()
    count = valid.sum(dim=dim) if dim is not None else valid.sum()
    mean = x.nanmean(dim=dim, keepdim=dim is not None)
    sq_dev = torch.where(valid, (x - mean) ** 2, torch.zeros_like(x))
    sq_sum = sq_dev.sum(dim=dim) if dim is not None else sq_dev.sum()
    denom = (count - 1) if unbiased else count
    var = sq_sum / denom.clamp(min=1)
    return torch.where(count >= 2, var.sqrt(), torch.zeros_like(var))


def group_advantages(
    rewards: torch.Tensor,
    num_generations: int,
    scale: Scale = "group",
    eps: float = 1e-4,
    std_unbiased: bool = True,
    batch_std: torch.Tensor | float | None = None,
) -> Advantages:
    """Group-relative advantages ``(r - mean_group) / (std + eps)``.

    Args:
        rewards: ``[B*G]`` total rewards, prompt-major (row ``b*G + i`` is completion ``i`` of prompt ``b``);
            NaN marks an unscorable completion.
        num_generations: ``G``, completions per prompt (contiguous block size).
        scale: ``"group"`` divides by each group's std (paper, TRL default); ``"batch"`` by the std of all
            scored rewards in the batch (or ``batch_std``); ``"none"`` does not divide (Dr. GRPO).
        eps: added to the std before dividing (paper and TRL: 1e-4).
        std_unbiased: Bessel-corrected (N-1) std, as ``torch.std`` in the paper's code and TRL's ``nanstd``.
        batch_std: with ``scale="batch"``, a precomputed std (e.g. over all ranks' rewards) that replaces the
            local one.

    Returns:
        :class:`Advantages` with ``values`` ``[B*G]``, ``group_std`` ``[B]``, ``frac_zero_std`` (0-dim).
        Zero-variance groups (all scored rewards equal, or fewer than 2 scored) and NaN rows get exactly 0.

    Example:
        >>> group_advantages(torch.tensor([1.0, 0.0, 2.0, 2.0]), 2).values
        tensor([ 0.7070, -0.7070,  0.0000,  0.0000])
    """
    if scale not in SCALES:
        raise ValueError(f"Unknown advantage scale {scale!r}; expected one of {list(SCALES)}")
    if rewards.dim() != 1 or num_generations < 1 or rewards.numel() % num_generations:
        raise ValueError(
            f"rewards must be 1-D with a length divisible by num_generations={num_generations}; "
            f"got shape {tuple(rewards.shape)}"
        )
    grouped = rewards.view(-1, num_generations)  # [B, G]
    scored = ~grouped.isnan()  # [B, G]
    mean = grouped.nanmean(dim=1, keepdim=True)  # [B, 1]; NaN for an all-NaN group
    group_std = _nanstd(grouped, dim=1, unbiased=std_unbiased)  # [B]
    # Exact test (max == min over scored rows) rather than std ≈ 0, so a constant group is never scaled
    # by 1/eps from round-off in its mean.
    hi = grouped.masked_fill(~scored, float("-inf")).amax(dim=1)  # [B]
    lo = grouped.masked_fill(~scored, float("inf")).amin(dim=1)  # [B]
    zero_std = (scored.sum(dim=1) < 2) | (hi == lo)  # [B]

    adv = grouped - mean  # [B, G]
    if scale == "group":
        adv = adv / (group_std.unsqueeze(1) + eps)
    elif scale == "batch":
        std = _nanstd(rewards, dim=None, unbiased=std_unbiased) if batch_std is None else batch_std
        adv = adv / (torch.as_tensor(std, dtype=adv.dtype, device=adv.device) + eps)
    keep = scored & ~zero_std.unsqueeze(1)  # [B, G]
    adv = torch.where(keep, adv, torch.zeros_like(adv))
    return Advantages(
        values=adv.reshape(-1),
        group_std=group_std,
        frac_zero_std=zero_std.to(rewards.dtype).mean(),
    )
