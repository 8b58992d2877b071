"""Evaluation metrics on VAU-Bench: QA accuracy, grounding mIoU and R@k, classification accuracy.

Predictions are parsed with the same parsers as the rewards (:mod:`vau_r1.rewards.parsing`):
``parser="strict"`` (default) or ``parser="lenient"`` (the official scripts, ``docs/paper.md`` §8).
Strict parsing accepts a bare answer without tags (the no-think eval prompts ask for one).

Conventions (``docs/paper.md`` §2.5, §8):

* every value is a percentage in [0, 100], unrounded (round only for display);
* the denominator is the number of samples the task can score (``n``); a sample with no
  prediction is counted wrong and listed in ``missing`` unless ``only_predicted=True``,
  which drops it from the denominator (the official scripts' behaviour);
* QA also reports both denominators of :mod:`vau_r1.eval.denominators` (``EvalResult.denominators``):
  all usable rows (the paper's) and rows with a valid prediction (the upstream fix 3356ef3);
* prediction names match sample names with or without the ``msad_``/``ucf_``/``ecva_`` prefix
  and the video extension (official InternVL outputs drop ``.mp4``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from vau_r1.data.schema import CLASS_LABELS, NORMAL_LABEL, SOURCES, VideoSample
from vau_r1.eval.denominators import qa_denominators
from vau_r1.rewards import parsing
from vau_r1.rewards.temporal_iou import as_span, temporal_iou

__all__ = [
    "METRICS",
    "RECALL_THRESHOLDS",
    "EvalResult",
    "cls_metrics",
    "match_predictions",
    "qa_accuracy",
    "tag_decision_accuracy",
    "tag_metrics",
]

logger = logging.getLogger(__name__)

Parser = Literal["strict", "lenient"]
#: IoU thresholds of the grounding recall metrics ``r@0.3``, ``r@0.5``, ``r@0.7``.
RECALL_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one task on one annotation file.

    Attributes:
        task: ``qa``, ``tag`` or ``cls``.
        metrics: metric name → percentage (unrounded), ``None`` when ``n == 0``.
        n: denominator: scorable samples (only those with a prediction if ``only_predicted``).
        missing: videos with no prediction, in sample order.
        unmatched: number of predictions that match no scorable sample.
        parser: ``strict`` or ``lenient``.
        per_sample: video → metric → its score on that sample, on the 0–1 scale (a missing prediction
            scores 0), for every sample in the denominator; ``metrics[m] == 100 * mean(per_sample[.][m])``.
            For confidence intervals and paired comparisons; not part of :meth:`to_dict`.
        denominators: QA only: ``{"all_rows": {...}, "valid_predictions": {...}}``, each block the accuracy,
            ``correct``, ``n`` and a label (:mod:`vau_r1.eval.denominators`); ``{}`` for the other tasks.
    """

    task: str
    metrics: dict[str, float | None]
    n: int
    missing: tuple[str, ...]
    unmatched: int
    parser: str
    per_sample: dict[str, dict[str, float]] = field(default_factory=dict, compare=False, repr=False)
    denominators: dict[str, dict[str, object]] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``task``, ``parser``, ``n``, ``missing`` (a count), ``missing_videos``, the metrics.

        QA adds ``accuracy_valid`` and ``n_valid`` (the valid-prediction denominator) and the labelled
        ``denominators`` blocks.
        """
        head = {"task": self.task, "parser": self.parser, "n": self.n, "missing": len(self.missing)}
        out = {**head, **self.metrics, "missing_videos": list(self.missing), "unmatched": self.unmatched}
        if self.denominators:
            valid = self.denominators["valid_predictions"]
            out.update(accuracy_valid=valid["accuracy"], n_valid=valid["n"], denominators=self.denominators)
        return out

    def summary(self, digits: int = 2) -> str:
        """One line per metric, rounded to ``digits`` decimals, then the counts (QA: both denominators)."""
        fmt = lambda v: "n/a" if v is None else f"{v:.{digits}f}%"  # noqa: E731
        lines = [f"{name:<16} {fmt(v)}" for name, v in self.metrics.items()]
        lines += [f"{'accuracy':<16} {fmt(b['accuracy'])} over {key} (n={b['n']}): {b['label']}"
                  for key, b in self.denominators.items()]  # fmt: skip
        lines.append(f"n={self.n}  missing={len(self.missing)}  unmatched predictions={self.unmatched}")
        return "\n".join(lines)


def _video_key(name: str) -> str:
    name = str(name).strip()
    stem, dot, extension = name.rpartition(".")
    return stem if dot and f".{extension.lower()}" in _VIDEO_EXTENSIONS else name


def _strip_source(key: str) -> str:
    for source in SOURCES:
        if key.startswith(f"{source}_"):
            return key[len(source) + 1 :]
    return key


def match_predictions(
    samples: Sequence[VideoSample], predictions: Mapping[str, object]
) -> tuple[dict[str, object], int]:
    """Pair samples with predictions by video name.

    An exact match (ignoring the extension) wins; otherwise a match ignoring the source prefix
    on either side is used when it is unique.

    Returns:
        ``({sample.video: prediction}, number of predictions matched to no sample)``.
    """
    exact: dict[str, object] = {}
    loose: dict[str, set[str]] = defaultdict(set)
    for name, value in predictions.items():
        key = _video_key(name)
        exact.setdefault(key, value)
        loose[_strip_source(key)].add(key)
    found: dict[str, object] = {}
    used: set[str] = set()
    for sample in samples:
        key = _video_key(sample.video)
        if key not in exact:
            candidates = loose.get(_strip_source(key), set())
            if len(candidates) > 1:
                logger.warning("Video %s matches several predictions %s; none used", sample.video, sorted(candidates))
            key = next(iter(candidates)) if len(candidates) == 1 else None
        if key is not None:
            found[sample.video] = exact[key]
            used.add(key)
    return found, len(exact) - len(used)


def _score(
    task: str,
    samples: Iterable[VideoSample],
    predictions: Mapping[str, object],
    score_one: Callable[[VideoSample, object], dict[str, float]],
    keys: Sequence[str],
    parser: str,
    only_predicted: bool,
) -> EvalResult:
    samples = list(samples)
    found, unmatched = match_predictions(samples, predictions)
    missing = tuple(s.video for s in samples if s.video not in found)
    scored = [s for s in samples if s.video in found] if only_predicted else samples
    totals = dict.fromkeys(keys, 0.0)
    per_sample: dict[str, dict[str, float]] = {}
    for sample in scored:
        scores = dict.fromkeys(keys, 0.0)
        if sample.video in found:
            scores.update(score_one(sample, found[sample.video]))
            for key, value in scores.items():
                totals[key] += value
        per_sample[sample.video] = scores
    n = len(scored)
    metrics = {key: (100.0 * total / n if n else None) for key, total in totals.items()}
    return EvalResult(task, metrics, n, missing, unmatched, parser, per_sample)


def _check_parser(parser: str) -> None:
    if parser not in ("strict", "lenient"):
        raise ValueError(f"Unknown parser {parser!r}; expected 'strict' or 'lenient'")


def _choice_of(sample: VideoSample, value: object, parser: str) -> str | None:
    if not isinstance(value, str):
        return None
    return parsing.parse_choice(value, sample.options) if parser == "strict" else parsing.parse_choice_lenient(value)


def qa_accuracy(
    samples: Iterable[VideoSample],
    predictions: Mapping[str, object],
    parser: Parser = "strict",
    only_predicted: bool = False,
) -> EvalResult:
    """Multiple-choice accuracy (``accuracy``) over samples with a correct letter.

    ``predictions`` maps a video name to the raw model text (or the letter itself). Strict parsing
    also maps the full text of one option to its letter (``sample.options``). The result's
    ``denominators`` hold the accuracy over all usable rows and over rows with a valid prediction
    (:mod:`vau_r1.eval.denominators`), whatever ``only_predicted`` says.
    """
    _check_parser(parser)
    rows = [s for s in samples if s.answer is not None]
    choices: dict[str, str | None] = {}  # video → parsed letter, for every row with a prediction

    def score_one(sample: VideoSample, value: object) -> dict[str, float]:
        choices[sample.video] = _choice_of(sample, value, parser)
        return {"accuracy": float(choices[sample.video] == sample.answer.upper())}

    result = _score("qa", rows, predictions, score_one, ("accuracy",), parser, only_predicted)
    both = qa_denominators([s.answer.upper() for s in rows], [choices.get(s.video) for s in rows])
    return dataclasses.replace(result, denominators=both)


def _span_of(value: object, parser: str) -> tuple[float, float] | None:
    if isinstance(value, str):
        return parsing.parse_span(value) if parser == "strict" else parsing.parse_span_lenient(value)
    return as_span(value)


def tag_metrics(
    samples: Iterable[VideoSample],
    predictions: Mapping[str, object],
    parser: Parser = "strict",
    only_predicted: bool = False,
) -> EvalResult:
    """Grounding metrics over samples with an annotated span (``sample.span_s``).

    ``miou`` is the mean IoU and ``r@k`` the share of samples with IoU >= k, for k in
    :data:`RECALL_THRESHOLDS`. ``predictions`` maps a video name to raw text or a ``(start_s, end_s)``
    pair. An unparseable prediction has IoU 0, as do ``[-1, -1]`` and zero-length spans (the
    official evaluator's ``start == end`` rule gives the same result against a real span).
    """
    _check_parser(parser)
    rows = [s for s in samples if s.span_s is not None]
    keys = ("miou", *(f"r@{k}" for k in RECALL_THRESHOLDS))

    def score_one(sample: VideoSample, value: object) -> dict[str, float]:
        pred_s = _span_of(value, parser)
        iou = 0.0 if pred_s is None else temporal_iou(pred_s, sample.span_s)
        return {"miou": iou, **{f"r@{k}": float(iou >= k) for k in RECALL_THRESHOLDS}}

    return _score("tag", rows, predictions, score_one, keys, parser, only_predicted)


def _decision_of(value: object, parser: str) -> str | None:
    if not isinstance(value, str):
        return None
    labels = ("Normal", "Anomaly")
    return parsing.parse_anomaly(value) if parser == "strict" else parsing.parse_label_lenient(value, labels)


def tag_decision_accuracy(
    samples: Iterable[VideoSample],
    predictions: Mapping[str, object],
    parser: Parser = "strict",
    only_predicted: bool = False,
) -> EvalResult:
    """Normal-vs-Anomaly decision accuracy (``decision_accuracy``) of TAG answers, normal videos included.

    The gold decision is ``Normal`` for a normal video and ``Anomaly`` for one with an annotated span;
    other rows are not scored. The prediction is the ``<answer>`` Normal/Anomaly
    (:func:`~vau_r1.rewards.parsing.parse_anomaly`; lenient: the first of the two words mentioned); an
    unparseable one is wrong. Unlike ``miou`` this rewards "always Normal" on normal videos, so on a
    split with both kinds a blind constant answer scores about the majority share, not 0.
    """
    _check_parser(parser)
    rows = [s for s in samples if s.is_normal or s.span_s is not None]

    def score_one(sample: VideoSample, value: object) -> dict[str, float]:
        gold = "Normal" if sample.is_normal else "Anomaly"
        return {"decision_accuracy": float(_decision_of(value, parser) == gold)}

    return _score("tag", rows, predictions, score_one, ("decision_accuracy",), parser, only_predicted)


def cls_metrics(
    samples: Iterable[VideoSample],
    predictions: Mapping[str, object],
    parser: Parser = "strict",
    only_predicted: bool = False,
) -> EvalResult:
    """Classification accuracy over samples with an anomaly class.

    ``binary_accuracy``: normal vs anomaly (a GT anomaly is right for any predicted label but
    ``Normal``); ``multi_accuracy``: the exact label among the 20 classes. An unparseable
    prediction is wrong for both (official rule).
    """
    _check_parser(parser)
    rows = [s for s in samples if s.anomaly_class is not None]

    def score_one(sample: VideoSample, value: object) -> dict[str, float]:
        pred = None
        if isinstance(value, str):
            strict = parser == "strict"
            pred = parsing.parse_label(value, CLASS_LABELS) if strict else parsing.parse_label_lenient(value)
        if pred is None:
            return {"binary_accuracy": 0.0, "multi_accuracy": 0.0}
        gt_normal = sample.anomaly_class == NORMAL_LABEL
        return {
            "binary_accuracy": float((pred == NORMAL_LABEL) == gt_normal),
            "multi_accuracy": float(pred == sample.anomaly_class),
        }

    return _score("cls", rows, predictions, score_one, ("binary_accuracy", "multi_accuracy"), parser, only_predicted)


#: Task name → metric function.
METRICS: dict[str, Callable[..., EvalResult]] = {"qa": qa_accuracy, "tag": tag_metrics, "cls": cls_metrics}
