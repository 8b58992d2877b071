"""Per-row judge outcomes and their aggregate: the paper's columns, the counts, the failed rows, the files.

The report holds the mean of each score over the successfully judged rows in the paper's columns CLS, KM,
FLU, INF, FAC and ``Total`` = the sum of those five means (Table A's convention; the judge's own totals
are ignored). :func:`write_report` writes ``judge_rows.csv`` (every row) and ``judge_summary.json`` (the
summary plus ``failed_rows``: video, stage, reason and endpoint of every row that failed).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from vau_r1.judge.parse import SCORE_COLUMNS

__all__ = ["COLUMNS", "FAILURE_STAGES", "JudgeReport", "RowResult", "aggregate", "write_report"]

#: Report columns, as in paper Table A.
COLUMNS: tuple[str, ...] = (*SCORE_COLUMNS.values(), "Total")
#: Where a row can fail: the request (``http``, ``timeout``), the reply (``reply``: unreadable body or no
#: message; ``parse``: no valid score object), an unexpected error (``internal``), or the run stopped first
#: (``interrupted``, never cached).
FAILURE_STAGES: tuple[str, ...] = ("http", "timeout", "reply", "parse", "internal", "interrupted")
_FAILED_FIELDS = ("video", "stage", "reason", "endpoint", "attempts", "cached")


@dataclass
class RowResult:
    """Outcome for one row. ``scores`` maps paper columns (CLS…FAC) to 0–10 when ``status == "ok"``.

    ``stage`` (failures only) is one of :data:`FAILURE_STAGES`; ``endpoint`` is the judge asked (its URL
    without credentials); ``raw`` is the judge's reply, truncated to ``RAW_MAX_CHARS``.
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
    endpoint: str | None = None

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

    @property
    def failed_rows(self) -> list[dict[str, Any]]:
        """Video, stage, reason, endpoint, attempts and ``cached`` of every failed row, in row order."""
        return [{name: getattr(row, name) for name in _FAILED_FIELDS} for row in self.rows if row.status == "failed"]

    def to_dict(self, include_rows: bool = False) -> dict[str, Any]:
        """Summary dict with the paper columns at the top level and the failed rows; every row only if asked."""
        out: dict[str, Any] = {**self.means, "judge_model": self.judge_model, "prompt_version": self.prompt_version}
        out.update(n_judged=self.n_judged, n_failed=self.n_failed, n_skipped=self.n_skipped,
                   n_cached=self.n_cached, n_total_mismatch=self.n_total_mismatch)  # fmt: skip
        out["failed_rows"] = self.failed_rows
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


def write_report(report: JudgeReport, output_dir: str | Path) -> tuple[Path, Path]:
    """Write per-row results (``judge_rows.csv``) and the summary (``judge_summary.json``); returns both paths.

    A character that UTF-8 cannot hold (a lone surrogate from a hostile reply) is written as its escape.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "judge_rows.csv", out / "judge_summary.json"
    header = ["video", "status", *COLUMNS, "judge_total", "total_mismatch", "stage", "reason", "endpoint",
              "attempts", "cached"]  # fmt: skip
    with csv_path.open("w", newline="", encoding="utf-8", errors="backslashreplace") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for row in report.rows:
            writer.writerow({**row.to_dict(), **(row.scores or {}), "Total": row.total})
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return csv_path, json_path
