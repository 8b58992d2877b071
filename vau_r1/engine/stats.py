"""Step metrics: per-rank sums reduced across ranks into means and standard deviations.

Metric keys (hierarchical): ``reward/<name>/mean|std``, ``reward/total/mean|std``, ``advantage/std``,
``train/kl``, ``train/clip_ratio/region|low|high``, ``train/loss``, ``completion/length/mean``,
``completion/truncated``, ``groups/frac_zero_std``, ``data/skipped_videos``, ``data/prompts``,
``train/grad_norm``, ``train/lr``, ``time/step_s``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from vau_r1.grpo.loss import LossStats


class StepStats:
    """Accumulates ``(sum, sum of squares, count)`` per key on one rank; :meth:`reduce` makes global stats.

    Keys must be registered in the same order on every rank (:meth:`register`), so that ranks whose batch
    was empty still take part in the reduction.
    """

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._acc: dict[str, list[float]] = {}
        self.register(keys)

    def register(self, keys: Iterable[str]) -> None:
        """Make ``keys`` exist (with zero count) so every rank reduces the same vector."""
        for key in keys:
            self._acc.setdefault(key, [0.0, 0.0, 0.0])

    def add(self, key: str, values: torch.Tensor | Sequence[float] | float) -> None:
        """Add finite values (NaN is ignored: "not applicable")."""
        x = torch.as_tensor(values, dtype=torch.float64).detach().cpu().reshape(-1)
        x = x[~x.isnan()]
        acc = self._acc.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += x.sum().item()
        acc[1] += (x * x).sum().item()
        acc[2] += x.numel()

    def add_loss_stats(self, stats: LossStats) -> None:
        """Add the clip fractions and KL of one loss call (averaged over calls)."""
        self.add("train/clip_ratio/region", stats.clip_region)
        self.add("train/clip_ratio/low", stats.clip_low)
        self.add("train/clip_ratio/high", stats.clip_high)
        if stats.kl is not None:
            self.add("train/kl", stats.kl)

    def reduce(
        self, accelerator: Any, std_keys: Iterable[str] = (), sum_keys: Iterable[str] = ()
    ) -> dict[str, float]:
        """Global statistics over all ranks with one all-reduce.

        A key in ``std_keys`` gives ``<key>/mean`` and ``<key>/std`` (population std over all values), a key
        in ``sum_keys`` gives the global sum, any other key its global mean. Keys without values are left out
        (except sums, which are 0).
        """
        keys = list(self._acc)
        local = torch.tensor([self._acc[k] for k in keys], dtype=torch.float64).reshape(-1, 3)
        if accelerator is not None and accelerator.num_processes > 1 and keys:
            local = accelerator.reduce(local.to(accelerator.device), reduction="sum").cpu()
        std_keys, sum_keys = set(std_keys), set(sum_keys)
        out: dict[str, float] = {}
        for (total, squares, count), key in zip(local.tolist(), keys, strict=True):
            if key in sum_keys:
                out[key] = total
            elif count == 0:
                continue
            elif key in std_keys:
                mean = total / count
                out[f"{key}/mean"] = mean
                out[f"{key}/std"] = math.sqrt(max(squares / count - mean * mean, 0.0))
            else:
                out[key] = total / count
        return out
