"""VAU-Eval: an LLM judge scores predicted descriptions and analyses against the ground truth (docs/paper.md §8.5).

Typical use (the key is read from the variable named in the config, ``DEEPSEEK_API_KEY`` by default)::

    from vau_r1.judge import JudgeRow, judge_rows, load_judge_config

    config = load_judge_config("vau_r1/configs/judge/deepseek.yaml")
    report = judge_rows(rows, config, cache_path="outputs/judge/cache.jsonl", output_dir="outputs/judge")
    report.to_dict()  # {"CLS": ..., "KM": ..., "FLU": ..., "INF": ..., "FAC": ..., "Total": ..., "n_judged": ...}

A row never aborts a run: each failure (HTTP, timeout, unreadable reply, unparsable scores, an unexpected
error) is a recorded ``failed`` row with its stage, reason and endpoint, listed in the summary's
``failed_rows`` and asked again by a rerun, at most ``max_row_attempts`` runs in all.

Importing this package does not import ``openai``; the client loads it when a request is first needed.
"""

from __future__ import annotations

from vau_r1.judge.cache import JudgeCache, row_key
from vau_r1.judge.client import (
    Completion,
    JudgeClient,
    JudgeConfig,
    JudgeRequestError,
    MissingAPIKeyError,
    load_judge_config,
)
from vau_r1.judge.parse import SCORE_COLUMNS, SCORE_KEYS, JudgeParseError, JudgeScores, parse_judge_reply
from vau_r1.judge.prompt import PRESETS, SYSTEM_MESSAGE, build_messages, get_preset
from vau_r1.judge.report import COLUMNS, FAILURE_STAGES, JudgeReport, RowResult, aggregate, write_report
from vau_r1.judge.run import JudgeRow, judge_rows, read_predictions_csv, rows_from_samples

__all__ = [
    "COLUMNS",
    "FAILURE_STAGES",
    "PRESETS",
    "SCORE_COLUMNS",
    "SCORE_KEYS",
    "SYSTEM_MESSAGE",
    "Completion",
    "JudgeCache",
    "JudgeClient",
    "JudgeConfig",
    "JudgeParseError",
    "JudgeReport",
    "JudgeRequestError",
    "JudgeRow",
    "JudgeScores",
    "MissingAPIKeyError",
    "RowResult",
    "aggregate",
    "build_messages",
    "get_preset",
    "judge_rows",
    "load_judge_config",
    "parse_judge_reply",
    "read_predictions_csv",
    "row_key",
    "rows_from_samples",
    "write_report",
]
