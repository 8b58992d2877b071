"""VAU-Eval: judge (description, analysis) predictions against the ground truth and aggregate (docs/paper.md §8.5).

Input rows (:class:`JudgeRow`) come from the evaluation pipeline, one per test video:

* ``video``: the test CSV's ``Video Name`` (``Assault_2.mp4``), used as the row's identity;
* ``gt_description`` / ``gt_analysis``: the test CSV's ``Description`` and ``Reasoning`` columns
  (``VideoSample.description`` / ``VideoSample.reasoning``);
* ``description`` / ``analysis``: the model's answers to the two reasoning prompts (§4.4), e.g. the
  ``Description`` / ``Analysis`` columns of a paper-style prediction CSV (:func:`read_predictions_csv`).

A row with any text missing (``None``, NaN, empty, ``"-1"``, ``"None"``, ``"nan"``) is skipped, with the
reason, and never sent (the official script judged ``"None"`` predictions and ``-1`` ground truth). Each
remaining row is judged once (results cached, :mod:`vau_r1.judge.cache`); the report holds the mean of
each score over the successfully judged rows in the paper's columns CLS, KM, FLU, INF, FAC and
``Total`` = the sum of those five means (Table A's convention; the judge's own totals are ignored).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from vau_r1.judge.cache import JudgeCache, row_key
from vau_r1.judge.client import JudgeClient, JudgeConfig, JudgeRequestError
from vau_r1.judge.parse import SCORE_COLUMNS, SCORE_KEYS, JudgeParseError, parse_judge_reply
from vau_r1.judge.prompt import build_messages, get_preset

logger = logging.getLogger(__name__)

#: Report columns, as in paper Table A.
COLUMNS: tuple[str, ...] = (*SCORE_COLUMNS.values(), "Total")
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


@dataclass
class RowResult:
    """Outcome for one row. ``scores`` maps paper columns (CLS…FAC) to 0–10 when ``status == "ok"``.

    ``stage`` (failures only) is ``"parse"``, ``"http"`` or ``"timeout"``; ``raw`` is the judge's reply,
    truncated to :data:`RAW_MAX_CHARS`.
    """

    video: str
    status: Literal["ok", "failed", "skipped"]
    key: str | None = None
    scores: dict[str, int] | None = None
    judge_total: int | None = None
    total_mismatch: bool = False
    comments: dict[str, str] = field(default_factory=dict)
    stage: str | None = None
    reason: str | None = None
    raw: str | None = None
    attempts: int = 0
    cached: bool = False

    @property
    def total(self) -> int | None:
        """Recomputed total (sum of the five scores), ``None`` unless judged."""
        return None if self.scores is None else sum(self.scores.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the cache line format), with the recomputed ``total``."""
        return {**asdict(self), "total": self.total}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> RowResult:
        """Rebuild a result from :meth:`to_dict` output (extra keys such as ``judge_model`` are dropped)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in record.items() if k in names})


@dataclass
class JudgeReport:
    """Aggregate of one judging run; ``means``: CLS, KM, FLU, INF, FAC, Total (``None`` if nothing was judged)."""

    judge_model: str
    prompt_version: str
    means: dict[str, float | None]
    n_judged: int
    n_failed: int
    n_skipped: int
    n_cached: int
    n_total_mismatch: int
    rows: list[RowResult] = field(repr=False, default_factory=list)

    def to_dict(self, include_rows: bool = False) -> dict[str, Any]:
        """Summary dict with the paper columns at the top level; per-row results only if asked."""
        out: dict[str, Any] = {**self.means, "judge_model": self.judge_model, "prompt_version": self.prompt_version}
        out.update(n_judged=self.n_judged, n_failed=self.n_failed, n_skipped=self.n_skipped,
                   n_cached=self.n_cached, n_total_mismatch=self.n_total_mismatch)  # fmt: skip
        if include_rows:
            out["rows"] = [row.to_dict() for row in self.rows]
        return out


def aggregate(results: list[RowResult], judge_model: str, prompt_version: str) -> JudgeReport:
    """Mean of each score over the ``ok`` rows; ``Total`` is the sum of the five means."""
    ok = [r for r in results if r.status == "ok" and r.scores is not None]
    means: dict[str, float | None] = dict.fromkeys(COLUMNS)
    if ok:
        for column in SCORE_COLUMNS.values():
            means[column] = sum(r.scores[column] for r in ok) / len(ok)
        means["Total"] = sum(means[c] for c in SCORE_COLUMNS.values())
    count = lambda status: sum(r.status == status for r in results)  # noqa: E731
    return JudgeReport(
        judge_model, prompt_version, means, n_judged=len(ok), n_failed=count("failed"), n_skipped=count("skipped"),
        n_cached=sum(r.cached for r in ok), n_total_mismatch=sum(r.total_mismatch for r in ok), rows=results,
    )  # fmt: skip


def judge_one(row: JudgeRow, key: str, client: JudgeClient, preset: str) -> RowResult:
    """Ask the judge about one row; any request or parse problem becomes a ``failed`` result."""
    messages = build_messages(row.gt_description, row.gt_analysis, row.description, row.analysis, preset)
    try:
        reply = client.complete(messages)
    except JudgeRequestError as error:
        return RowResult(row.video, "failed", key, stage=error.stage, reason=error.reason, attempts=error.attempts)
    raw = reply.text[:RAW_MAX_CHARS]
    try:
        parsed = parse_judge_reply(reply.text)
    except JudgeParseError as error:
        return RowResult(row.video, "failed", key, stage="parse", reason=str(error), raw=raw, attempts=reply.attempts)
    scores = {SCORE_COLUMNS[k]: parsed.scores[k] for k in SCORE_KEYS}
    if parsed.total_mismatch:
        logger.info("%s: judge total %s != recomputed %d (using the sum)", row.video, parsed.judge_total, parsed.total)
    return RowResult(row.video, "ok", key, scores, parsed.judge_total, parsed.total_mismatch,
                     parsed.comments, raw=raw, attempts=reply.attempts)  # fmt: skip


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
    if pending:
        client = client or JudgeClient(config)

        def work(index: int) -> RowResult:
            result = judge_one(rows[index], plan[index], client, config.prompt_preset)
            cache.append({**result.to_dict(), "judge_model": config.model, "prompt_version": version})
            return result

        with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
            for index, result in zip(pending, pool.map(work, pending), strict=True):
                plan[index] = result
    report = aggregate(plan, config.model, version)
    if output_dir is not None:
        write_report(report, output_dir)
    return report


def write_report(report: JudgeReport, output_dir: str | Path) -> tuple[Path, Path]:
    """Write per-row results (``judge_rows.csv``) and the summary (``judge_summary.json``); returns both paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "judge_rows.csv", out / "judge_summary.json"
    header = ["video", "status", *COLUMNS, "judge_total", "total_mismatch", "stage", "reason", "attempts", "cached"]
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for row in report.rows:
            writer.writerow({**row.to_dict(), **(row.scores or {}), "Total": row.total})
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return csv_path, json_path


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
