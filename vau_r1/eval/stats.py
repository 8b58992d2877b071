"""Small, pure statistics of the evaluation: seeded derangements and bootstrap confidence intervals.

* :func:`derangement` — a uniformly drawn permutation without a fixed point (the ``swap`` probe gives
  row ``i`` the video of row ``derangement(n, seed)[i]``; the ``shuffle`` probe reorders frames with one);
* :func:`bootstrap_ci` — the percentile bootstrap interval of a mean (resampling test clips);
* :func:`ci95_by_metric` / :func:`paired_gap_ci95` — the same per metric of an :class:`~vau_r1.eval.metrics.EvalResult`
  (percentages, like the metrics), and for the clean − probed gap paired by clip.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["DEFAULT_RESAMPLES", "bootstrap_ci", "ci95_by_metric", "derangement", "paired_gap_ci95"]

#: Bootstrap resamples of the report's intervals.
DEFAULT_RESAMPLES = 2000

PerSample = Mapping[str, Mapping[str, float]]


def derangement(n: int, seed: int) -> list[int]:
    """A uniformly random permutation of ``range(n)`` with no fixed point, reproducible from ``seed``.

    Rejection sampling of shuffles (on average e ≈ 2.7 draws), so every derangement is equally likely.

    >>> d = derangement(5, seed=0)
    >>> sorted(d) == list(range(5)) and all(d[i] != i for i in range(5))
    True
    >>> derangement(2, seed=3), derangement(0, seed=3)
    ([1, 0], [])

    Raises:
        ValueError: ``n == 1`` (one element cannot move) or ``n < 0``.
    """
    if n < 0 or n == 1:
        raise ValueError(f"no derangement of {n} element(s): need 0 or at least 2")
    rng = random.Random(seed)
    order = list(range(n))
    while True:
        rng.shuffle(order)
        if all(value != index for index, value in enumerate(order)):
            return list(order)


def bootstrap_ci(
    values: Sequence[float], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement, seeded).

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    >>> bootstrap_ci([]) is None
    True

    Returns:
        ``(lo, hi)``, or ``None`` for no values or ``resamples == 0``.

    Raises:
        ValueError: ``level`` outside (0, 1) or ``resamples < 0``.
    """
    if not 0 < level < 1 or resamples < 0:
        raise ValueError(f"level={level} must be in (0, 1) and resamples={resamples} >= 0")
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0 or resamples == 0:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 500):  # chunks bound the index matrix's memory on large splits
        stop = min(start + 500, resamples)
        means[start:stop] = data[rng.integers(0, data.size, size=(stop - start, data.size))].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _values(per_sample: PerSample, metric: str) -> list[float]:
    return [scores[metric] for scores in per_sample.values() if metric in scores]


def _percent(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [100.0 * ci[0], 100.0 * ci[1]]


def ci95_by_metric(
    per_sample: PerSample, metrics: Sequence[str], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, list[float] | None]:
    """``{metric: [lo, hi]}`` in percent: the 95% bootstrap interval over the clips scored for each metric."""
    return {m: _percent(bootstrap_ci(_values(per_sample, m), seed=seed, resamples=resamples)) for m in metrics}


def paired_gap_ci95(
    clean: PerSample, probed: PerSample, metrics: Sequence[str], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES
) -> dict[str, list[float] | None]:
    """``{metric: [lo, hi]}`` in percent: the 95% interval of clean − probed, resampling clips (paired)."""
    out: dict[str, list[float] | None] = {}
    for metric in metrics:
        both = [v for v in clean if metric in clean[v] and metric in probed.get(v, {})]
        diffs = [clean[v][metric] - probed[v][metric] for v in both]
        out[metric] = _percent(bootstrap_ci(diffs, seed=seed, resamples=resamples))
    return out
