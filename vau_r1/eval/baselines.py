"""Blind baselines: what a model scores without looking at the video, from the annotations alone.

Each baseline is a constant answer scored by the same metric functions and parser as the model, so its
numbers sit beside the model's in the report:

* qa ``always_normal_option`` — the option whose text says nothing is wrong (:data:`NORMAL_OPTION`;
  computed only when exactly one option of *every* row matches, else left out with the reason);
* qa ``best_constant_letter`` — the best of always ``A``/``B``/``C``/``D`` (chosen on the evaluated labels:
  an upper bound of answer-position bias);
* tag ``always_normal`` — ``Normal [-1, -1]`` everywhere: mIoU 0 but, with normal videos scored, the
  normal share as decision accuracy;
* tag ``always_anomaly_mean_span`` — ``Anomaly`` with one constant span, the mean annotated span of
  ``baseline_annotations`` (e.g. the training CSV), or of the evaluated split itself when that is null
  (an optimistic baseline: it peeks at the test spans; the report says which);
* cls ``always_normal`` — the label ``Normal`` everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vau_r1.data.annotations import load_annotations
from vau_r1.data.schema import OPTION_LETTERS, VideoSample
from vau_r1.eval.metrics import EvalResult, cls_metrics, qa_accuracy, tag_decision_accuracy, tag_metrics

__all__ = ["NORMAL_OPTION", "Baseline", "compute_baselines", "mean_span", "normal_option_letter"]

#: An option text that says the video is normal ("No anomaly: ...", "Normal activity ...").
NORMAL_OPTION = re.compile(r"\bno\s+anomal|\bnormal\b", re.IGNORECASE)


@dataclass
class Baseline:
    """One blind baseline's scores.

    Attributes:
        name: baseline key in the report.
        description: what it answers, in words.
        metrics: metric key → percentage, like the model's (``None``: not applicable).
        n: denominator of the first metric.
        detail: the constant answer (letter, span, reference set) or why it was left out.
    """

    name: str
    description: str
    metrics: dict[str, float | None]
    n: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


def normal_option_letter(sample: VideoSample) -> str | None:
    """The letter of the only option matching :data:`NORMAL_OPTION`, or ``None`` (none or several match).

    >>> s = VideoSample("v.mp4", None, 1, options=("A fire", "No anomaly occurs", "A crash", "Abnormal noise"))
    >>> normal_option_letter(s)
    'B'
    """
    hits = [letter for letter, text in zip(OPTION_LETTERS, sample.options or (), strict=False)
            if NORMAL_OPTION.search(text)]  # fmt: skip
    return hits[0] if len(hits) == 1 else None


def mean_span(samples: Sequence[VideoSample]) -> tuple[float, float] | None:
    """Mean ``(start_s, end_s)`` of the annotated spans, or ``None`` when there is none."""
    spans = [s.span_s for s in samples if s.span_s is not None]
    if not spans:
        return None
    return sum(a for a, _ in spans) / len(spans), sum(b for _, b in spans) / len(spans)


def _baseline(name: str, description: str, results: Sequence[EvalResult], **detail: Any) -> Baseline:
    metrics = {key: value for result in results for key, value in result.metrics.items()}
    return Baseline(name, description, metrics, results[0].n, detail)


def _qa(samples: Sequence[VideoSample], parser: str) -> dict[str, Baseline]:
    rows = [s for s in samples if s.answer is not None]
    by_letter = {letter: qa_accuracy(rows, {s.video: letter for s in rows}, parser) for letter in OPTION_LETTERS}
    best = max(OPTION_LETTERS, key=lambda letter: by_letter[letter].metrics["accuracy"] or 0.0)
    out = {"best_constant_letter": _baseline(
        "best_constant_letter", f"always {best} (the best constant letter on these labels)", [by_letter[best]],
        letter=best, accuracy_by_letter={k: r.metrics["accuracy"] for k, r in by_letter.items()})}  # fmt: skip
    letters = {s.video: normal_option_letter(s) for s in rows}
    unknown = sum(letter is None for letter in letters.values())
    if rows and not unknown:
        result = qa_accuracy(rows, letters, parser)
        out["always_normal_option"] = _baseline("always_normal_option", "always the option saying nothing is wrong",
                                                [result], pattern=NORMAL_OPTION.pattern)  # fmt: skip
    else:
        reason = f"no single option matching /{NORMAL_OPTION.pattern}/i in {unknown} of {len(rows)} rows"
        out["always_normal_option"] = Baseline("always_normal_option", "always the option saying nothing is wrong",
                                               {"accuracy": None}, 0, {"omitted": reason})  # fmt: skip
    return out


def _tag_results(samples: Sequence[VideoSample], text: str, parser: str, decision: bool) -> list[EvalResult]:
    predictions = {s.video: text for s in samples}
    results = [tag_metrics(samples, predictions, parser)]
    return [*results, tag_decision_accuracy(samples, predictions, parser)] if decision else results


def _tag(samples: Sequence[VideoSample], parser: str, decision: bool, reference: str | None) -> dict[str, Baseline]:
    normal = _tag_results(samples, "<answer>Normal</answer><glue>[-1, -1]</glue>", parser, decision)
    out = {"always_normal": _baseline("always_normal", "always Normal [-1, -1]", normal)}
    source = "the evaluated split (its own spans: optimistic)" if reference is None else reference
    span = mean_span(samples if reference is None else load_annotations(reference).usable("tag", purpose="eval"))
    if span is None:
        return out
    start, end = round(span[0], 3), round(span[1], 3)
    text = f"<answer>Anomaly</answer><glue>[{start}, {end}]</glue>"
    out["always_anomaly_mean_span"] = _baseline(
        "always_anomaly_mean_span", f"always Anomaly [{start}, {end}] (mean span of {source})",
        _tag_results(samples, text, parser, decision), span_s=[start, end], reference=source)  # fmt: skip
    return out


def compute_baselines(task: str, samples: Sequence[VideoSample], *, parser: str = "strict",
                      decision: bool = False, reference: str | None = None) -> dict[str, Baseline]:  # fmt: skip
    """The blind baselines of ``task`` on the evaluated ``samples`` (empty for reasoning).

    Args:
        task: ``qa``, ``tag``, ``cls`` or ``reasoning``.
        samples: the evaluated rows (TAG: normal videos included when ``decision``).
        parser: the metrics' parser.
        decision: TAG: also score ``decision_accuracy``.
        reference: TAG: annotation CSV whose mean span is the constant span; ``None``: ``samples``' own.
    """
    if task == "qa":
        return _qa(samples, parser)
    if task == "tag":
        return _tag(samples, parser, decision, reference)
    if task == "cls":
        result = cls_metrics(samples, {s.video: "<answer>Normal</answer>" for s in samples}, parser)
        return {"always_normal": _baseline("always_normal", "always the label Normal", [result])}
    return {}
