"""Score a prediction file against an annotation CSV (``vau-r1 eval score``).

The parser defaults to ``strict`` for this library's JSONL predictions and to ``lenient`` (the
official scripts' parsers) for official output CSVs, so re-scoring published outputs reproduces
the official numbers; pass ``parser`` to override either default.
"""

from __future__ import annotations

import logging
from pathlib import Path

from vau_r1.data.annotations import load_annotations
from vau_r1.eval.metrics import METRICS, EvalResult
from vau_r1.eval.predictions import read_predictions

__all__ = ["DEFAULT_PARSERS", "score_predictions"]

logger = logging.getLogger(__name__)

#: Prediction-file kind → parser used when none is given.
DEFAULT_PARSERS: dict[str, str] = {"jsonl": "strict", "official_csv": "lenient"}


def score_predictions(
    task: str,
    annotations: str | Path,
    predictions: str | Path,
    source: str | None = None,
    parser: str | None = None,
    only_predicted: bool = False,
) -> EvalResult:
    """Metrics of ``task`` for the predictions in ``predictions`` over the usable rows of ``annotations``.

    Args:
        task: ``qa``, ``tag`` or ``cls``.
        annotations: VAU-Bench annotation CSV (``test_msad.csv``, ...).
        predictions: JSONL or official output CSV (:mod:`vau_r1.eval.predictions`).
        source: dataset of unprefixed video names (``msad``/``ucf``/``ecva``), as for :func:`load_annotations`.
        parser: ``strict`` or ``lenient``; ``None`` picks :data:`DEFAULT_PARSERS` by file kind.
        only_predicted: score only rows that have a prediction (the official scripts' denominator).

    Raises:
        FileNotFoundError: a missing file.
        ValueError: unknown task or parser, or an unreadable file (the message names it).
    """
    if task not in METRICS:
        raise ValueError(f"Cannot score task {task!r}; expected one of {sorted(METRICS)}")
    samples = load_annotations(annotations, source=source).usable(task, purpose="eval")
    read = read_predictions(predictions, task)
    parser = parser or DEFAULT_PARSERS[read.kind]
    result = METRICS[task](samples, read.values, parser=parser, only_predicted=only_predicted)
    if result.unmatched:
        logger.warning(
            "%d prediction(s) in %s match no usable %s row of %s (wrong --source or file?)",
            result.unmatched,
            read.path,
            task,
            annotations,
        )
    return result
