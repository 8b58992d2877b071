"""VAU-Eval: judge (description, analysis) predictions against the ground truth and aggregate (docs/paper.md §8.5).

Input rows (:class:`JudgeRow`) come from the evaluation pipeline, one per test video:

* ``video``: the test CSV's ``Video Name`` (``Assault_2.mp4``), used as the row's identity;
* ``gt_description`` / ``gt_analysis``: the test CSV's ``Description`` and ``Reasoning`` columns
  (``VideoSample.description`` / ``VideoSample.reasoning``);
* ``description`` / ``analysis``: the model's answers to the two reasoning prompts (§4.4), e.g. the
  ``Description`` / ``Analysis`` columns of a paper-style prediction CSV (:func:`read_predictions_csv`).

A row with any text missing (``None``, NaN, empty, ``"-1"``, ``"None"``, ``"nan"``) is skipped, with the
reason, and never sent (the official script judged ``"None"`` predictions and ``-1`` ground truth). Each
remaining row is judged once (results cached, :mod:`vau_r1.judge.cache`) and aggregated by
:mod:`vau_r1.judge.report`. A row never aborts the run: whatever goes wrong with it (HTTP error, timeout,
unreadable reply, no valid scores, an unexpected error) becomes a ``failed`` result with its stage,
reason and endpoint, cached so that a rerun asks again, at most ``max_row_attempts`` runs in all; the
report is written even when the run is stopped, and lists the failed rows.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vau_r1.judge.cache import JudgeCache, row_key
from vau_r1.judge.client import JudgeClient, JudgeConfig, JudgeRequestError, endpoint_label
from vau_r1.judge.parse import SCORE_COLUMNS, SCORE_KEYS, JudgeParseError, parse_judge_reply
from vau_r1.judge.prompt import build_messages, get_preset
from vau_r1.judge.report import COLUMNS, JudgeReport, RowResult, aggregate, write_report

__all__ = [
    "COLUMNS", "MISSING_TEXTS", "JudgeReport", "JudgeRow", "RowResult", "aggregate", "judge_one", "judge_rows",
    "read_predictions_csv", "rows_from_samples", "write_report",
]  # fmt: skip

logger = logging.getLogger(__name__)

#: Texts treated as "no text" (compared after strip + lower-case).
MISSING_TEXTS = frozenset({"", "-1", "none", "nan"})
RAW_MAX_CHARS = 2000  # judge reply kept per row (diagnostics), truncated to this length
_TEXT_FIELDS = ("gt_description", "gt_analysis", "description", "analysis")


@dataclass(frozen=True)
class JudgeRow:
    """One video to judge (see the module docstring for where each field comes from)."""

    video: str
    gt_description: str | None
    gt_analysis: str | None
    description: str | None
    analysis: str | None

    def missing_field(self) -> str | None:
        """Name and value of the first missing text, e.g. ``"gt_analysis='-1'"``; ``None`` if all are present."""
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return f"{name}={value!r}"
            if not isinstance(value, str) or value.strip().lower() in MISSING_TEXTS:
                return f"{name}={value!r}"
        return None


def judge_one(row: JudgeRow, key: str, client: JudgeClient, preset: str, endpoint: str | None = None) -> RowResult:
    """Ask the judge about one row; any request or parse problem becomes a ``failed`` result (never raises).

    A failure the request and parse stages do not foresee (a bug, a hostile reply) is logged with its
    traceback and becomes a failure of stage ``internal``, so that one row can never abort the run.
    """
    try:
        return _ask(row, key, client, preset, endpoint)
    except Exception as error:  # the run must go on: the row is recorded as failed, with the cause
        logger.exception("%s: unexpected judge failure", row.video)
        reason = f"{type(error).__name__}: {str(error)[:300]}"
        return RowResult(row.video, "failed", key, stage="internal", reason=reason, endpoint=endpoint)


def _ask(row: JudgeRow, key: str, client: JudgeClient, preset: str, endpoint: str | None) -> RowResult:
    messages = build_messages(row.gt_description, row.gt_analysis, row.description, row.analysis, preset)
    try:
        reply = client.complete(messages)
    except JudgeRequestError as error:
        return RowResult(row.video, "failed", key, stage=error.stage, reason=error.reason, attempts=error.attempts,
                         endpoint=endpoint)  # fmt: skip
    raw = reply.text[:RAW_MAX_CHARS]
    try:
        parsed = parse_judge_reply(reply.text)
    except JudgeParseError as error:
        return RowResult(row.video, "failed", key, stage="parse", reason=str(error), raw=raw, attempts=reply.attempts,
                         endpoint=endpoint)  # fmt: skip
    scores = {SCORE_COLUMNS[k]: parsed.scores[k] for k in SCORE_KEYS}
    if parsed.total_mismatch:
        logger.info("%s: judge total %s != recomputed %d (using the sum)", row.video, parsed.judge_total, parsed.total)
    return RowResult(row.video, "ok", key, scores, parsed.judge_total, parsed.total_mismatch,
                     parsed.comments, raw=raw, attempts=reply.attempts, endpoint=endpoint)  # fmt: skip


def _plan(rows: list[JudgeRow], cache: JudgeCache, config: JudgeConfig, version: str) -> list[RowResult | str]:
    """Per row: a finished result (skipped / cached / given up) or the cache key of a row still to ask about."""
    plan: list[RowResult | str] = []
    seen: set[str] = set()
    for row in rows:
        missing = row.missing_field()
        if row.video in seen or missing:
            reason = f"missing text: {missing}" if missing else "duplicate video name (first row kept)"
            plan.append(RowResult(row.video, "skipped", reason=reason))
            continue
        seen.add(row.video)
        texts = (row.gt_description, row.gt_analysis, row.description, row.analysis)
        key = row_key(texts, config.model, version)
        hit = cache.get(row.video, key)
        n_failed, last = cache.failures(row.video, key)
        if hit is not None:
            plan.append(RowResult.from_dict({**hit, "cached": True}))
        elif n_failed >= config.max_row_attempts and last is not None:
            reason = f"not asked again: failed in {n_failed} runs (max_row_attempts); last: {last.get('reason')}"
            plan.append(RowResult.from_dict({**last, "reason": reason, "attempts": 0, "cached": True}))
        else:
            plan.append(key)
    return plan


def judge_rows(
    rows: Iterable[JudgeRow],
    config: JudgeConfig,
    cache_path: str | Path,
    *,
    output_dir: str | Path | None = None,
    client: JudgeClient | None = None,
) -> JudgeReport:
    """Judge every usable row (cached ones are not asked again) and aggregate into a :class:`JudgeReport`.

    Args:
        rows: rows to judge (see the module docstring for the format).
        config: judge endpoint and policy; ``config.concurrency`` threads send requests.
        cache_path: JSONL cache; created if absent, appended to (one flushed line per judged row).
        output_dir: if given, :func:`write_report` writes ``judge_rows.csv`` and ``judge_summary.json`` there.
        client: a ready client (tests); by default one is built from ``config`` when a row needs asking,
            which needs the API key environment variable.
    """
    rows = list(rows)
    version = get_preset(config.prompt_preset).version
    cache = JudgeCache(cache_path)
    plan = _plan(rows, cache, config, version)
    pending = [i for i, item in enumerate(plan) if isinstance(item, str)]
    logger.info("judge: %d rows, %d to ask, cache %s", len(rows), len(pending), cache.path)
    client = (client or JudgeClient(config)) if pending else client  # a missing key stops here, before any row
    try:
        if pending:
            _ask_pending(rows, plan, pending, client, config, cache, version)
    finally:  # the report is written even when the run is stopped (unfinished rows: stage "interrupted")
        report = _finish(rows, plan, config, version, output_dir)
    return report


def _ask_pending(rows: list[JudgeRow], plan: list[RowResult | str], pending: list[int], client: JudgeClient,
                 config: JudgeConfig, cache: JudgeCache, version: str) -> None:  # fmt: skip
    """Ask about the ``pending`` rows in ``config.concurrency`` threads; each result replaces its key in ``plan``."""
    endpoint = endpoint_label(config.base_url)

    def work(index: int) -> RowResult:
        result = judge_one(rows[index], plan[index], client, config.prompt_preset, endpoint)
        try:
            cache.append({**result.to_dict(), "judge_model": config.model, "prompt_version": version})
        except OSError as error:  # the result still counts in this run's report; a rerun asks again
            logger.error("%s: could not write the judge cache %s (%s)", result.video, cache.path, error)
        return result

    pool = ThreadPoolExecutor(max_workers=config.concurrency)
    futures: dict[Future[RowResult], int] = {}
    try:
        futures.update((pool.submit(work, index), index) for index in pending)
        for future in as_completed(futures):
            plan[futures[future]] = future.result()
    finally:  # stopped (Ctrl-C): rows not begun are dropped, rows in flight finish (bounded by timeout_s) and count
        pool.shutdown(wait=True, cancel_futures=True)
        for future, index in futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                plan[index] = future.result()


def _finish(rows: list[JudgeRow], plan: list[RowResult | str], config: JudgeConfig, version: str,
            output_dir: str | Path | None) -> JudgeReport:  # fmt: skip
    """Aggregate ``plan`` (a row still pending is a failure of stage ``interrupted``) and write the report."""
    reason = "the judge run stopped before this row was answered; a rerun asks again"
    endpoint = endpoint_label(config.base_url)
    results = [item if isinstance(item, RowResult) else
               RowResult(row.video, "failed", item, stage="interrupted", reason=reason, endpoint=endpoint)
               for row, item in zip(rows, plan, strict=True)]  # fmt: skip
    report = aggregate(results, config.model, version)
    if output_dir is not None:
        write_report(report, output_dir)
    if report.n_failed:
        logger.warning("judge: %d of %d rows failed (listed in judge_summary.json 'failed_rows')", report.n_failed,
                       len(rows))  # fmt: skip
    return report


def read_predictions_csv(path: str | Path) -> dict[str, tuple[str | None, str | None]]:
    """``Video Name`` → (``Description``, ``Analysis``) from a paper-style reasoning prediction CSV."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"Video Name", "Description", "Analysis"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; expected Video Name, Description, Analysis")
        return {r["Video Name"]: (r["Description"], r["Analysis"]) for r in reader}


def rows_from_samples(
    samples: Iterable[Any], predictions: Mapping[str, tuple[str | None, str | None]]
) -> list[JudgeRow]:
    """Pair ground-truth ``VideoSample``-like records with predictions by exact video name.

    A sample without a prediction yields a row with ``None`` texts (reported as skipped).
    """
    rows = []
    for sample in samples:
        description, analysis = predictions.get(sample.video, (None, None))
        rows.append(JudgeRow(sample.video, sample.description, sample.reasoning, description, analysis))
    return rows
