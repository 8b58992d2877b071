"""The ``normal_iou`` value that pays a blind "always Normal" policy what a blind "always Anomaly" one earns.

With the paper's rule a correct ``[-1, -1]`` on a normal video scores 1.0
(:func:`~vau_r1.rewards.temporal_iou.temporal_iou`), while the best span a policy can give without looking at
the video scores far less on an anomalous one: on a 50% normal split, format + accuracy + IoU pays "always
Normal" 2.0 and "always Anomaly with the mean span" about 1.7. :func:`balanced_normal_iou` computes, from
the training spans, the ``normal_iou`` option that removes this free lunch::

    rewards:
      funcs:
        - {name: temporal_iou, weight: 1.0, options: {normal_iou: 0.41}}  # the value computed here

A constant span is given as fractions of the clip, ``(a, b)`` meaning ``[a * duration, b * duration]``
(the prompt tells the model the duration), so one constant fits clips of any length; IoU and tIoU-v2 depend
on spans relative to the duration only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from vau_r1.data.schema import NORMAL_SPAN
from vau_r1.rewards.columns import finite_number
from vau_r1.rewards.temporal_iou import as_span, temporal_iou, tiou_v2

__all__ = ["balanced_normal_iou", "best_constant_span", "constant_span_reward", "relative_span"]

Span = tuple[float, float]

#: Grounding rewards whose normal score can be balanced: name → score of ``(pred, gt)`` relative spans.
METRICS: dict[str, Callable[[Span, Span], float]] = {
    "temporal_iou": temporal_iou,
    "tiou_v2": lambda pred, gt: tiou_v2(pred, gt, 1.0),
}


def relative_span(span_s: object, duration_s: object) -> Span | None:
    """An anomaly span as fractions of its clip's duration; ``None`` for a normal span, an unreadable span,
    a duration that is not a finite positive number, or fractions past the float range.

    >>> relative_span([2.0, 6.0], 8.0), relative_span([-1, -1], 8.0), relative_span([2, 6], 0)
    ((0.25, 0.75), None, None)
    """
    span, duration = as_span(span_s), finite_number(duration_s)
    if span is None or span == NORMAL_SPAN or duration is None or duration <= 0.0:
        return None
    start, end = span[0] / duration, span[1] / duration
    return (start, end) if math.isfinite(start) and math.isfinite(end) else None


def _targets(spans_s: Sequence[object], durations_s: Sequence[object]) -> list[Span]:
    """The anomalous clips' relative spans; normal and unreadable rows are left out."""
    if len(spans_s) != len(durations_s):
        raise ValueError(f"{len(spans_s)} spans for {len(durations_s)} durations; give one duration per span")
    targets = [t for t in map(relative_span, spans_s, durations_s) if t is not None]
    if not targets:
        raise ValueError("no anomalous clip (a readable span other than [-1, -1] with a positive duration)")
    return targets


def _metric(name: str) -> Callable[[Span, Span], float]:
    if name not in METRICS:
        raise ValueError(f"metric={name!r}; expected one of {sorted(METRICS)}")
    return METRICS[name]


def constant_span_reward(
    span_rel: Span, spans_s: Sequence[object], durations_s: Sequence[object], metric: str = "temporal_iou"
) -> float:
    """Mean ``metric`` over the anomalous clips of always answering ``span_rel`` (fractions of each clip).

    >>> constant_span_reward((0.0, 0.5), [[0, 4], [4, 8], [-1, -1]], [8, 8, 8])
    0.5
    """
    score, targets = _metric(metric), _targets(spans_s, durations_s)
    return sum(score(span_rel, gt) for gt in targets) / len(targets)


def best_constant_span(
    spans_s: Sequence[object], durations_s: Sequence[object], metric: str = "temporal_iou", resolution: int = 50
) -> Span:
    """The constant relative span with the highest mean ``metric`` on the anomalous clips, searched on a grid of
    step ``1 / resolution`` over ``0 <= a < b <= 1`` (``resolution * (resolution + 1) / 2`` candidates, each
    scored on every clip: a few seconds for 1,000 clips at the default).

    >>> best_constant_span([[0, 4], [0, 10], [-1, -1]], [8, 20, 8], resolution=4)
    (0.0, 0.5)
    """
    if resolution < 1:
        raise ValueError(f"resolution={resolution}; expected a positive integer")
    score, targets = _metric(metric), _targets(spans_s, durations_s)
    grid = [k / resolution for k in range(resolution + 1)]
    candidates = [(a, b) for i, a in enumerate(grid) for b in grid[i + 1 :]]
    return max(candidates, key=lambda c: sum(score(c, gt) for gt in targets))


def _mean_span(spans_s: Sequence[object], durations_s: Sequence[object]) -> Span:
    targets = _targets(spans_s, durations_s)
    return sum(t[0] for t in targets) / len(targets), sum(t[1] for t in targets) / len(targets)


def balanced_normal_iou(
    spans_s: Sequence[object],
    durations_s: Sequence[object],
    *,
    span_rel: Span | str = "best",
    metric: str = "temporal_iou",
    resolution: int = 50,
) -> float:
    """The ``normal_iou`` option that pays "always Normal" what "always Anomaly with a constant span" earns.

    It is ``m``, the expected ``metric`` of the constant span on the anomalous training clips. Why: let ``p``
    be the share of normal clips and the total ``w_f * format + w_a * accuracy + w_i * iou``; both blind
    policies are well formed. Then::

        E[total | always Normal]            = w_f + w_a * p       + w_i * p * normal_iou
        E[total | always Anomaly, span c]   = w_f + w_a * (1 - p) + w_i * (1 - p) * m

    When the accuracy and format terms are symmetric (``p = 1/2``, a balanced split), the two are equal
    exactly when ``normal_iou = m``. (On an unbalanced split they are equal for
    ``normal_iou = ((1 - p) * m + (w_a / w_i) * (1 - 2p)) / p``, if that lies in [0, 1].) With
    ``span_rel="best"``, "always Normal" then earns what the best blind span earns: no blind policy wins.

    Args:
        spans_s: training spans ``[start_s, end_s]``; normal (``[-1, -1]``) and unreadable rows are skipped.
        durations_s: each clip's duration in seconds, aligned with ``spans_s``.
        span_rel: the blind policy's span as fractions of the clip: ``"best"`` (:func:`best_constant_span`),
            ``"mean"`` (the mean relative span) or a ``(a, b)`` pair.
        metric: the grounding reward, ``temporal_iou`` or ``tiou_v2``.
        resolution: grid resolution of ``"best"``.

    Raises:
        ValueError: no anomalous clip, misaligned inputs, an unknown ``metric`` or ``span_rel``.

    >>> balanced_normal_iou([[0, 4], [0, 10], [-1, -1]], [8, 20, 8])  # one relative span fits both
    1.0
    >>> round(balanced_normal_iou([[0, 4], [4, 8]], [8, 8], span_rel="mean"), 4)  # (0.25, 0.75) on both
    0.3333
    """
    if span_rel == "best":
        span_rel = best_constant_span(spans_s, durations_s, metric, resolution)
    elif span_rel == "mean":
        span_rel = _mean_span(spans_s, durations_s)
    elif isinstance(span_rel, str):
        raise ValueError(f"span_rel={span_rel!r}; expected 'best', 'mean' or an (a, b) pair of fractions")
    return constant_span_reward(tuple(span_rel), spans_s, durations_s, metric)  # type: ignore[arg-type]
