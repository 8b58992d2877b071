"""Temporal IoU in seconds, and the grounding rewards built on it.

Normal-video semantics (VAU-R1, ``docs/paper.md`` §5.3): the answer ``[-1, -1]``
(:data:`~vau_r1.data.schema.NORMAL_SPAN`) means "no anomaly". Two normal spans agree (1.0), a
normal span never overlaps a real one (0.0). Ground truth comes from the ``span`` column:
``[start_s, end_s]`` for an anomaly, ``[-1, -1]`` for a normal video, ``None`` for no target.

Option ``normal_iou`` (keyword-only, bound from a config by
:func:`~vau_r1.rewards.registry.build_rewards`): the score of a *correct* normal answer, 1.0 by default
(:data:`NORMAL_IOU_PRESETS` ``"paper"``). The paper's 1.0 pays a blind "always Normal" policy more than any
blind "always Anomaly" one; :func:`vau_r1.rewards.balance.balanced_normal_iou` computes the value that
pays both the same. A wrong normal answer scores 0.0 whatever the option.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vau_r1.data.schema import NORMAL_SPAN
from vau_r1.rewards.columns import finite_number, per_sample
from vau_r1.rewards.parsing import completion_text, parse_span
from vau_r1.rewards.registry import register

__all__ = [
    "NORMAL_IOU_PRESETS",
    "as_span",
    "normal_iou_value",
    "temporal_iou",
    "temporal_iou_reward",
    "tiou_v2",
    "tiou_v2_reward",
]

#: Named values of the ``normal_iou`` option: ``"paper"`` is VAU-R1's rule (docs/paper.md §5.3), 1.0.
NORMAL_IOU_PRESETS: dict[str, float] = {"paper": 1.0}

#: Past this many seconds a span's length, or the sum of two lengths, may overflow a float: scale first.
_HUGE_S = 2.0**1021


def normal_iou_value(value: object) -> float:
    """The ``normal_iou`` option as a float in [0, 1]: a number, or a name of :data:`NORMAL_IOU_PRESETS`.

    Raises:
        ValueError: an unknown name, a bool, a non-number, or a number outside [0, 1] (NaN included).

    >>> normal_iou_value("paper"), normal_iou_value(0.4), normal_iou_value(0)
    (1.0, 0.4, 0.0)
    """
    if isinstance(value, str) and value in NORMAL_IOU_PRESETS:
        return NORMAL_IOU_PRESETS[value]
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"normal_iou={value!r}; expected a number in [0, 1] or one of {sorted(NORMAL_IOU_PRESETS)}")
    return float(number)


def as_span(value: object) -> tuple[float, float] | None:
    """A ground-truth span as ``(start_s, end_s)`` floats, or ``None`` if it is not two finite numbers
    (:func:`~vau_r1.rewards.columns.finite_number`: NaN, ±inf and integers past the float range are not).

    >>> as_span([1, 2.5]), as_span(None), as_span([1, float("nan")]), as_span([0, 10**400])
    ((1.0, 2.5), None, None, None)
    """
    if hasattr(value, "tolist"):  # numpy arrays
        value = value.tolist()
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        return None
    start_s, end_s = finite_number(value[0]), finite_number(value[1])
    return None if start_s is None or end_s is None else (start_s, end_s)


def temporal_iou(pred_s: tuple[float, float], gt_s: tuple[float, float], normal_iou: float = 1.0) -> float:
    """Intersection over union of two ``(start_s, end_s)`` spans, in [0, 1].

    Rules: both :data:`NORMAL_SPAN` → ``normal_iou`` (1.0, the paper's rule); exactly one normal → 0.0; identical
    spans → 1.0 (zero-length ones included); a span with a NaN or infinite end → 0.0; otherwise
    ``intersection / union`` with ``length = max(0, end - start)`` (a reversed span has length 0), and 0.0 when the
    union is 0 (two different zero-length spans). Exact up to the float maximum (~1.8e308): spans whose ends
    pass 2**1021 are scaled by 1/4 first (IoU is scale-free), so that no length or sum of lengths overflows.

    >>> temporal_iou((2.0, 6.0), (4.0, 8.0))
    0.3333333333333333
    >>> temporal_iou((-1.0, -1.0), (-1.0, -1.0)), temporal_iou((-1.0, -1.0), (0.0, 5.0))
    (1.0, 0.0)
    >>> temporal_iou((-1.0, -1.0), (-1.0, -1.0), normal_iou=0.4)
    0.4
    >>> temporal_iou((5.0, 5.0), (5.0, 5.0)), temporal_iou((5.0, 5.0), (6.0, 6.0))
    (1.0, 0.0)
    >>> temporal_iou((0.0, 1e308), (0.0, 1e308)), temporal_iou((0.0, 1.5e308), (0.0, 1e308))
    (1.0, 0.6666666666666666)
    """
    pred_normal, gt_normal = tuple(pred_s) == NORMAL_SPAN, tuple(gt_s) == NORMAL_SPAN
    if pred_normal or gt_normal:
        return normal_iou if pred_normal and gt_normal else 0.0
    if tuple(pred_s) == tuple(gt_s):
        return 1.0
    ends = (*pred_s, *gt_s)
    if not all(math.isfinite(end) for end in ends):
        return 0.0
    scale = 0.25 if max(abs(end) for end in ends) >= _HUGE_S else 1.0  # exact: a power of two
    pred_start, pred_end, gt_start, gt_end = (end * scale for end in ends)
    intersection = max(0.0, min(pred_end, gt_end) - max(pred_start, gt_start))
    union = max(0.0, pred_end - pred_start) + max(0.0, gt_end - gt_start) - intersection
    return 0.0 if union <= 0.0 else min(1.0, intersection / union)


def _iou_one(completion: object, span: object, normal_iou: float) -> float | None:
    gt_s = as_span(span)
    if gt_s is None:
        return None
    pred_s = parse_span(completion_text(completion))
    return 0.0 if pred_s is None else temporal_iou(pred_s, gt_s, normal_iou)


@register("temporal_iou")
def temporal_iou_reward(
    completions: list, span: object = None, *, normal_iou: float | str = 1.0, **kwargs
) -> list[float | None]:
    """IoU between the completion's ``<glue>[s, e]</glue>`` and the ``span`` column, in seconds.

    Per sample: ``None`` when ``span`` is ``None`` or not two finite numbers (``nan``, a string, an integer past
    the float range): no target;
    0.0 when the completion has no valid single glue span (:func:`~vau_r1.rewards.parsing.parse_span`);
    else :func:`temporal_iou` (normal ``[-1, -1]`` semantics included).

    Args:
        completions: the completions (strings or conversational messages).
        span: the ``span`` column.
        normal_iou: option, the score of ``[-1, -1]`` on a normal video (:func:`normal_iou_value`); default
            1.0 = ``"paper"``.

    Raises:
        ValueError: an invalid ``normal_iou``.

    >>> temporal_iou_reward(
    ...     ["<think>x</think><answer>Anomaly</answer><glue>[2, 6]</glue>", "<glue>[-1, -1]</glue>", "no glue"],
    ...     span=[[4.0, 8.0], [-1.0, -1.0], None],
    ... )
    [0.3333333333333333, 1.0, None]
    >>> temporal_iou_reward(["<glue>[-1, -1]</glue>", "<glue>[0, 2]</glue>"], span=[[-1, -1]] * 2, normal_iou=0.4)
    [0.4, 0.0]
    """
    value = normal_iou_value(normal_iou)
    spans = per_sample(span, len(completions), "span", scalar=_is_scalar_span)
    return [_iou_one(completion, gt, value) for completion, gt in zip(completions, spans, strict=True)]


def _is_scalar_span(value: object) -> bool:
    """A list or tuple that is a single span ``[s, e]`` (to broadcast) rather than a per-sample column."""
    return as_span(value) is not None


def tiou_v2(
    pred_s: tuple[float, float], gt_s: tuple[float, float], duration_s: float, normal_iou: float = 1.0
) -> float:
    """Time-R1's distance-penalised IoU of two spans in a video of ``duration_s > 0`` seconds, in [0, 1].

    ``temporal_iou * (1 - |Δstart|/duration) * (1 - |Δend|/duration)``, the ground truth clipped to
    ``[0, duration_s]`` and each factor to [0, 1]; normal spans follow :func:`temporal_iou`. It depends on
    the spans relative to the duration only (scale ``pred_s``, ``gt_s`` and ``duration_s`` alike: same value).

    >>> round(tiou_v2((2.0, 6.0), (4.0, 8.0), 20.0), 6), tiou_v2((-1.0, -1.0), (-1.0, -1.0), 20.0, 0.4)
    (0.27, 0.4)
    """
    if NORMAL_SPAN in (tuple(pred_s), tuple(gt_s)):
        return temporal_iou(pred_s, gt_s, normal_iou)
    gt_s = (max(gt_s[0], 0.0), min(gt_s[1], duration_s))
    penalty = 1.0
    for pred, gt in zip(pred_s, gt_s, strict=True):
        penalty *= max(0.0, 1.0 - abs(pred - gt) / duration_s)
    return temporal_iou(pred_s, gt_s) * penalty


def _tiou_v2_one(completion: object, span: object, duration_s: object, normal_iou: float) -> float | None:
    gt_s, duration = as_span(span), finite_number(duration_s)
    if gt_s is None or duration is None or duration <= 0:
        return None
    pred_s = parse_span(completion_text(completion))
    return 0.0 if pred_s is None else tiou_v2(pred_s, gt_s, duration, normal_iou)


@register("tiou_v2")
def tiou_v2_reward(
    completions: list, span: object = None, duration_s: object = None, *, normal_iou: float | str = 1.0, **kwargs
) -> list[float | None]:
    """Time-R1's distance-penalised IoU (:func:`tiou_v2`) of the completion's glue span, per sample.

    ``None`` when ``span`` (as in :func:`temporal_iou_reward`) or a finite positive ``duration_s`` is missing (the
    training columns carry the decoded clip's ``duration_s``); 0.0 for an unparseable completion.

    Args:
        completions: the completions (strings or conversational messages).
        span: the ``span`` column.
        duration_s: the ``duration_s`` column (seconds).
        normal_iou: option, the score of ``[-1, -1]`` on a normal video (:func:`normal_iou_value`); default
            1.0 = ``"paper"``.

    Raises:
        ValueError: an invalid ``normal_iou``.

    >>> tiou_v2_reward(["<glue>[2, 6]</glue>"], span=[[4.0, 8.0]], duration_s=[20.0])
    [0.27]
    >>> tiou_v2_reward(["<glue>[-1, -1]</glue>"], span=[[-1, -1]], duration_s=[20.0], normal_iou=0.4)
    [0.4]
    """
    value = normal_iou_value(normal_iou)
    n = len(completions)
    spans = per_sample(span, n, "span", scalar=_is_scalar_span)
    durations = per_sample(duration_s, n, "duration_s")
    return [_tiou_v2_one(c, gt, d, value) for c, gt, d in zip(completions, spans, durations, strict=True)]
