"""Offline evaluation: read prediction files and score them against VAU-Bench annotations."""

from __future__ import annotations

from vau_r1.eval.predictions import OFFICIAL_COLUMNS, Predictions, read_predictions, write_predictions
from vau_r1.eval.score import DEFAULT_PARSERS, score_predictions

__all__ = [
    "DEFAULT_PARSERS",
    "OFFICIAL_COLUMNS",
    "Predictions",
    "read_predictions",
    "score_predictions",
    "write_predictions",
]
