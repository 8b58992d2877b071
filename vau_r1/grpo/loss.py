"""GRPO policy loss: clipped surrogate, k3 KL penalty, and the four token-aggregation rules.

Per token ``(i, t)`` of completion ``i`` (``docs/paper.md`` §6.1 step 9, TRL ``_compute_loss``)::

    ratio    = exp(logp - old_logp)                      # ≡ 1 on-policy (old_logp = logp.detach())
    KL       = exp(ref - logp) - (ref - logp) - 1         # k3 estimator, ≥ 0
    ℓ        = -min(ratio·A_i, clip(ratio, 1-ε, 1+ε_high)·A_i) + β·KL

Aggregation over the completion mask ``m`` (``N`` sequences, ``L`` padded length):

* ``grpo``    (paper): ``mean_i [Σ_t ℓ·m / Σ_t m]`` — per-sequence mean, then mean over sequences.
* ``bnpo``:   ``Σ ℓ·m / Σ m`` over the local batch — token mean.
* ``dr_grpo``: ``Σ ℓ·m / (N · max_completion_length)`` — constant normaliser, no length bias.
* ``dapo``:   ``Σ ℓ·m / num_items_in_batch`` — token mean with a global token count (all ranks and
  accumulation steps), falling back to the local ``Σ m``.

Gradient-accumulation scaling (dividing by the number of micro-batches) is the caller's job.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

LossType = Literal["grpo", "dr_grpo", "dapo", "bnpo"]
LOSS_TYPES: tuple[str, ...] = ("grpo", "dr_grpo", "dapo", "bnpo")


class LossStats(NamedTuple):
    """Detached 0-dim diagnostics of one :func:`policy_loss` call; token means are over the mask.

    Attributes:
        clip_low: fraction of tokens with ``ratio < 1-ε`` and ``A < 0`` (clipped from below).
        clip_high: fraction of tokens with ``ratio > 1+ε_high`` and ``A > 0`` (clipped from above).
        clip_region: fraction clipped either way.
        kl: mean k3 KL to the reference, or ``None`` when no ``ref_logp`` was given.
        ratio: mean importance ratio (1 on-policy).
    """

    clip_low: torch.Tensor
    clip_high: torch.Tensor
    clip_region: torch.Tensor
    kl: torch.Tensor | None
    ratio: torch.Tensor

    def as_metrics(self, prefix: str = "train/") -> dict[str, float]:
        """Plain floats under hierarchical metric keys (``train/clip_ratio/low`` ...); syncs the device."""
        metrics = {
            f"{prefix}clip_ratio/low": self.clip_low.item(),
            f"{prefix}clip_ratio/high": self.clip_high.item(),
            f"{prefix}clip_ratio/region": self.clip_region.item(),
            f"{prefix}ratio": self.ratio.item(),
        }
        if self.kl is not None:
            metrics[f"{prefix}kl"] = self.kl.item()
        return metrics


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(π ‖ π_ref): ``exp(ref - logp) - (ref - logp) - 1``.

    Args:
        logp: ``[N, L]`` log-probs of the sampled tokens under the policy.
        ref_logp: ``[N, L]`` log-probs of the same tokens under the reference model.

    Returns:
        ``[N, L]`` non-negative estimates (0 where the two agree).

    Example:
        >>> kl_k3(torch.tensor([[0.0]]), torch.tensor([[1.0]]))  # e - 1 - 1
        tensor([[0.7183]])
    """
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def truncation_mask(completion_mask: torch.Tensor, is_truncated: torch.Tensor) -> torch.Tensor:
    """Zero the mask of completions cut off at ``max_completion_length`` (TRL ``mask_truncated_completions``).

    Args:
        completion_mask: ``[N, L]`` 1 on completion tokens (through the first EOS), 0 on padding.
        is_truncated: ``[N]`` bool, True where no EOS was generated.

    Returns:
        ``[N, L]`` mask of ``completion_mask``'s dtype with the truncated rows zeroed.
    """
    keep = (~is_truncated.bool()).to(completion_mask.dtype).unsqueeze(1)  # [N, 1]
    return completion_mask * keep


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Detached mean of ``x`` [N, L] over ``mask`` [N, L] (bool); 0 when the mask is empty."""
    x = x.detach().float()
    return torch.where(mask, x, torch.zeros_like(x)).sum() / mask.sum().clamp(min=1)


def _aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    max_completion_length: int | None,
    num_items_in_batch: torch.Tensor | float | None,
) -> torch.Tensor:
    """Reduce ``per_token`` [N, L] (already zero outside ``mask``) to the scalar loss of ``loss_type``."""
    if loss_type == "grpo":
        seq_len = mask.sum(dim=1).clamp(min=1)  # [N]; an empty row contributes 0 but still counts in the mean
        return (per_token.sum(dim=1) / seq_len).mean()
    if loss_type == "bnpo":
        return per_token.sum() / mask.sum().clamp(min=1)
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("loss_type='dr_grpo' needs max_completion_length (the generation cap in tokens)")
        return per_token.sum() / (per_token.shape[0] * max_completion_length)
    if loss_type == "dapo":
        total = mask.sum() if num_items_in_batch is None else num_items_in_batch
        return per_token.sum() / torch.as_tensor(total, dtype=per_token.dtype, device=per_token.device).clamp(min=1)
    raise ValueError(f"Unknown loss_type {loss_type!r}; expected one of {list(LOSS_TYPES)}")


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    adv: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    loss_type: LossType = "grpo",
    max_completion_length: int | None = None,
    num_items_in_batch: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """Clipped GRPO surrogate plus ``β``·k3 KL, aggregated by ``loss_type`` (see the module docstring).

    Args:
        logp: ``[N, L]`` policy log-probs of the sampled tokens (carries the gradient).
        old_logp: ``[N, L]`` log-probs under the sampling policy, or ``None`` on-policy (μ = 1), which uses
            ``logp.detach()``: ratio ≡ 1 but ``∇ratio = ∇logp`` (the paper's formulation).
        adv: ``[N]`` per-sequence advantages (``[N, L]`` per-token also broadcasts).
        mask: ``[N, L]`` 1/True on completion tokens; positions outside it may hold any value (even NaN).
        epsilon: lower clip range ε (TRL default 0.2); irrelevant on-policy.
        epsilon_high: upper clip range; ``None`` means ``epsilon`` (DAPO "clip-higher" sets it larger).
        beta: KL coefficient; 0 ignores ``ref_logp`` in the loss.
        ref_logp: ``[N, L]`` reference-model log-probs; required when ``beta > 0``.
        loss_type: ``"grpo"`` | ``"bnpo"`` | ``"dr_grpo"`` | ``"dapo"``.
        max_completion_length: generation cap in tokens; required for ``dr_grpo``.
        num_items_in_batch: global completion-token count for ``dapo``; ``None`` uses the local ``mask.sum()``.

    Returns:
        ``(loss, stats)``: a 0-dim differentiable loss and detached :class:`LossStats`.

    Raises:
        ValueError: unknown ``loss_type``, ``beta > 0`` without ``ref_logp``, or ``dr_grpo`` without a length.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"Unknown loss_type {loss_type!r}; expected one of {list(LOSS_TYPES)}")
    if beta > 0 and ref_logp is None:
        raise ValueError(f"beta={beta} > 0 needs ref_logp (reference-model log-probs); pass it or set beta=0")
    valid = mask.bool()  # [N, L]
    zeros = torch.zeros_like(logp)
    old = logp.detach() if old_logp is None else old_logp.detach()
    # Sanitise padded positions before exp(): an inf there would give a NaN gradient even when masked out.
    log_ratio = torch.where(valid, logp - old, zeros)  # [N, L]
    ratio = torch.exp(log_ratio)  # [N, L]
    adv = adv.detach().to(logp.dtype)
    adv = adv.unsqueeze(1) if adv.dim() == 1 else adv  # [N, 1] or [N, L]
    eps_high = epsilon if epsilon_high is None else epsilon_high
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + eps_high)
    per_token = -torch.min(ratio * adv, clipped * adv)  # [N, L]

    kl = None
    if ref_logp is not None:
        safe_logp = torch.where(valid, logp, zeros)
        safe_ref = torch.where(valid, ref_logp.detach().to(logp.dtype), zeros)
        kl = kl_k3(safe_logp, safe_ref)  # [N, L]
        if beta > 0:
            per_token = per_token + beta * kl
    per_token = torch.where(valid, per_token, zeros)
    loss = _aggregate(per_token, valid, loss_type, max_completion_length, num_items_in_batch)

    low = (ratio < 1.0 - epsilon) & (adv < 0)  # [N, L]
    high = (ratio > 1.0 + eps_high) & (adv > 0)  # [N, L]
    stats = LossStats(
        clip_low=_masked_mean(low, valid),
        clip_high=_masked_mean(high, valid),
        clip_region=_masked_mean(low | high, valid),
        kl=None if kl is None else _masked_mean(kl, valid),
        ratio=_masked_mean(ratio, valid),
    )
    return loss, stats
