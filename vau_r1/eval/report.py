"""Evaluation reports: one :class:`EvalReport` per run, written as Markdown, JSON and CSV.

The Markdown table has the columns of the paper's tables (``docs/paper.md`` §9): Table A
(``Acc`` and the VAU-Eval scores CLS, KM, FLU, INF, FAC, Total), Table B (``mIoU``, ``R@0.3/0.5/0.7``)
and Table C (``Bin. Acc.``, ``Multi Acc.``), with "(w/ think)" or "(w/o think)" from the prompt preset.
Below it come the denominator, the missing and failed videos, the settings (video and prompt presets,
generation), the train/eval parity check and the package versions.

:func:`markdown_table` puts several reports in one table and :func:`pool_reports` merges reports of the
same task over several annotation files into one (exact: every metric is a mean over rows, so the pooled
value is the ``n``-weighted mean), e.g. the pooled MSAD + UCF-Crime + ECVA classification set of Table C.

How to read the report
----------------------
A metric alone is not evidence that the model looks at the video. Read it against three things
(``report.json`` keys; the same numbers are in ``report.md`` and, flattened, ``report.csv``):

* ``ci95`` — ``{metric: [lo, hi]}``: the 95% percentile-bootstrap interval over the test clips. Two numbers
  whose intervals overlap are not shown to differ.
* ``baselines`` — ``{name: {"metrics", "description", "n", "detail"}}``: constant answers computed from the
  annotations alone (:mod:`vau_r1.eval.baselines`): QA "always the normal option" and the best constant
  letter, TAG "always Normal [-1, -1]" and "always Anomaly + mean span". A model must beat all of them.
* ``probes`` — ``{name: {"metrics", "gap", "gap_ci95", "ci95", "changed_answers", "span", ...}}``
  (:mod:`vau_r1.eval.probes`, key ``probe``): the same rows with the video swapped for another clip's or
  its frames reversed / shuffled. ``gap`` = clean − probed per metric: a model that uses the video loses
  points (gap > 0 with ``gap_ci95`` above 0); a gap of about 0 and ``changed_answers`` of about 0 mean the
  answers come from the text alone. For TAG, ``span`` says how far the predicted spans moved
  (``mean_abs_centre_shift_s``) and, under ``reverse``, how well they match the time-mirrored truth
  (``mirrored_miou``; a model that sees time moves its span there).

QA reports its accuracy under both denominators (``denominators`` in ``report.json``, a table in ``report.md``,
``accuracy_all_rows``/``n_all_rows`` and ``accuracy_valid_predictions``/``n_valid_predictions`` in ``report.csv``):
over all usable rows (the paper's: a missing or unparseable answer counts wrong) and over rows with a valid
prediction (the upstream fix 3356ef3 of the official QA evaluation); :mod:`vau_r1.eval.denominators`.

TAG with ``tag_normal_videos=true`` also scores ``decision_accuracy``: Normal vs Anomaly on every video,
normal ones included; ``miou`` and ``r@k`` keep the paper's denominator (anomalous videos, ``n``).

Programmatic use::

    report = evaluate(cfg)                       # vau_r1.eval.pipeline; or read_report("<output_dir>")
    report.metrics["accuracy"], report.ci95["accuracy"]
    report.probes["swap"].metrics["accuracy"], report.probes["swap"].gap["accuracy"]
    report.baselines["best_constant_letter"].metrics["accuracy"]
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.eval.analysis import ProbeResult
from vau_r1.eval.baselines import Baseline
from vau_r1.eval.denominators import denominator_csv, denominator_lines, pool_denominators
from vau_r1.eval.report_sections import evidence_csv, evidence_lines

__all__ = ["PAPER_COLUMNS", "EvalReport", "markdown_table", "pool_reports", "read_report", "write_report"]

#: Metric key → paper column name, per task (first column carries the think marker).
PAPER_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "qa": (("accuracy", "Acc"),),
    "tag": (("miou", "mIoU"), ("r@0.3", "R@0.3"), ("r@0.5", "R@0.5"), ("r@0.7", "R@0.7")),
    "cls": (("binary_accuracy", "Bin. Acc."), ("multi_accuracy", "Multi Acc.")),
    "reasoning": (("CLS", "CLS"), ("KM", "KM"), ("FLU", "FLU"), ("INF", "INF"), ("FAC", "FAC"), ("Total", "Total")),
}


@dataclass
class EvalReport:
    """Results and provenance of one evaluation run.

    Attributes:
        task: ``qa``, ``tag``, ``cls`` or ``reasoning``.
        dataset: dataset label (``msad``, ``ucf``, ``ecva``, or the annotation file's name).
        model: model label (``<run>/step_000500``, a hub id, ...).
        think: whether the prompt preset asks for a ``<think>`` block.
        metrics: metric key → value: percentages for qa/tag/cls, 0–10 judge means (Total 0–50) for reasoning;
            ``None`` when nothing could be scored.
        n: denominator (rows scored; for reasoning, rows judged).
        counts: ``rows`` (usable annotation rows), ``predicted``, ``failed``, ``missing``, ``truncated``, ...
        missing: videos without a usable prediction (counted wrong unless ``only_predicted``).
        failures: ``{"video", "error"}`` for each video whose inference failed.
        settings: presets, video config, generation settings, parser.
        provenance: model reference, checkpoint, annotation file and hash, packages, git commit, timing.
        parity: ``{"checked", "differences", "allowed"}``, see :func:`vau_r1.eval.loading.parity_differences`.
        judge: the VAU-Eval summary (reasoning), else ``None``.
        ci95: metric → ``[lo, hi]``, its 95% bootstrap interval over the clips (percent), ``None`` when unscored.
        probes: probe name → :class:`~vau_r1.eval.analysis.ProbeResult` (``metrics``, ``gap``, ...).
        baselines: name → :class:`~vau_r1.eval.baselines.Baseline`, the blind constant answers.
        denominators: QA: the accuracy over ``all_rows`` and over ``valid_predictions``, each with ``correct``,
            ``n`` and a label (:mod:`vau_r1.eval.denominators`); ``{}`` for the other tasks and older reports.
    """

    task: str
    dataset: str
    model: str
    think: bool
    metrics: dict[str, float | None]
    n: int
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None
    ci95: dict[str, list[float] | None] = field(default_factory=dict)
    probes: dict[str, ProbeResult] = field(default_factory=dict)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    denominators: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``read_report`` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EvalReport:
        """The report of a ``to_dict()`` (older reports without probes or baselines too)."""
        values = dict(values)
        values["probes"] = {k: ProbeResult(**v) for k, v in (values.get("probes") or {}).items()}
        values["baselines"] = {k: Baseline(**v) for k, v in (values.get("baselines") or {}).items()}
        return cls(**values)

    def columns(self) -> list[tuple[str, str]]:
        """``(metric key, column title)`` of this task, the first titled with the think marker."""
        pairs = list(PAPER_COLUMNS[self.task])
        if self.task != "reasoning":
            key, title = pairs[0]
            pairs[0] = (key, f"{title} ({'w/' if self.think else 'w/o'} think)")
        return pairs


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown_table(reports: Sequence[EvalReport]) -> str:
    """A paper-style Markdown table, one row per report (all of one task and think setting).

    QA reports with both denominators get two more columns: the accuracy over rows with a valid prediction
    and its ``n`` (the paper's columns keep all usable rows).
    """
    if not reports:
        raise ValueError("no reports to tabulate")
    if len({(r.task, r.think) for r in reports}) > 1:
        raise ValueError("reports of different tasks or think settings go in separate tables")
    columns = reports[0].columns()
    valid = any(r.denominators for r in reports)
    extra = " Acc (valid predictions) | n valid |" if valid else ""
    lines = ["| Dataset | Model | " + " | ".join(title for _, title in columns) + " | n |" + extra,
             "|---|---|" + "---|" * (len(columns) + 1 + 2 * valid)]  # fmt: skip
    for report in reports:
        values = " | ".join(_fmt(report.metrics.get(key)) for key, _ in columns)
        block = report.denominators.get("valid_predictions", {})
        cells = f" {_fmt(block.get('accuracy'))} | {block.get('n', 'n/a')} |" if valid else ""
        lines.append(f"| {report.dataset} | {report.model} | {values} | {report.n} |{cells}")
    return "\n".join(lines)


def _other_metrics(report: EvalReport) -> list[str]:
    """Metrics outside the paper's columns (TAG ``decision_accuracy``), one line each."""
    paper = {key for key, _ in PAPER_COLUMNS[report.task]}
    lines = [f"- **{key}**: {_fmt(value)}" for key, value in report.metrics.items() if key not in paper]
    if "decision_accuracy" in report.metrics:
        lines.append(f"  (Normal vs Anomaly on all {report.counts.get('decision_rows')} videos, normal ones "
                     f"included; mIoU and R@k over the {report.n} anomalous ones)")  # fmt: skip
    return ["", *lines] if lines else []


def _details(report: EvalReport) -> list[str]:
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    lines = ["", f"Denominator n = {report.n}; {counts}."]
    if report.task == "reasoning" and report.judge is None:
        lines += ["", "Not judged (no `judge` configured): score `predictions_reasoning.csv` with `vau-r1 eval judge "
                      "--predictions predictions_reasoning.csv --annotations <csv>`."]  # fmt: skip
    elif report.judge is not None:
        judge = report.judge
        lines += ["", f"VAU-Eval judge {judge.get('judge_model')} (prompt {judge.get('prompt_version')}): judged "
                      f"{judge.get('n_judged')}, failed {judge.get('n_failed')}, skipped {judge.get('n_skipped')}; "
                      "per-row scores in judge/judge_rows.csv."]  # fmt: skip
    lines += ["", "## Settings", ""]
    for key, value in report.settings.items():
        lines.append(f"- **{key}**: `{json.dumps(value, default=str)}`")
    parity = report.parity
    lines += ["", "## Train/eval parity", ""]
    if not parity.get("checked"):
        lines.append("Not checked: the model has no training manifest.")
    elif not parity.get("differences"):
        lines.append("The video sampling and prompt preset match the checkpoint's training.")
    else:
        lines.append("Evaluated with settings that differ from training" + (" (allowed):" if parity.get("allowed")
                                                                           else ":"))  # fmt: skip
        lines += [f"- {line}" for line in parity["differences"]]
    if report.failures:
        lines += ["", f"## Failed videos ({len(report.failures)}, counted as missing)", "", "| video | error |",
                  "|---|---|"]  # fmt: skip
        lines += [f"| {f['video']} | {str(f['error']).splitlines()[0][:300]} |" for f in report.failures]
    if report.missing:
        lines += ["", f"## Missing predictions ({len(report.missing)})", "", ", ".join(report.missing)]
    lines += ["", "## Provenance", ""]
    lines += [f"- **{key}**: `{json.dumps(value, default=str)}`" for key, value in report.provenance.items()]
    return lines


def _csv_text(report: EvalReport) -> str:
    header = ["dataset", "model", "task", "think", "prompt_preset", "video_preset", "n", "predicted", "failed",
              "missing", *(key for key, _ in PAPER_COLUMNS[report.task])]  # fmt: skip
    row = [report.dataset, report.model, report.task, report.think, report.settings.get("prompt_preset"),
           report.settings.get("video_preset"), report.n, report.counts.get("predicted"), len(report.failures),
           len(report.missing), *(report.metrics.get(key) for key, _ in PAPER_COLUMNS[report.task])]  # fmt: skip
    paper = {key for key, _ in PAPER_COLUMNS[report.task]}
    others = [key for key in report.metrics if key not in paper]
    extra_header, extra_row = evidence_csv(report)
    both_header, both_row = denominator_csv(report.denominators)
    header += [*others, *both_header, *extra_header]
    row += [*(report.metrics[key] for key in others), *both_row, *extra_row]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([header, row])
    return buffer.getvalue()


def write_report(report: EvalReport, output_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.json`` and ``report.csv`` into ``output_dir``; returns the paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = f"# VAU-R1 evaluation: {report.task} on {report.dataset}"
    paths = {"md": out / "report.md", "json": out / "report.json", "csv": out / "report.csv"}
    table = [title, "", markdown_table([report]), *_other_metrics(report), *denominator_lines(report.denominators),
             *evidence_lines(report)]  # fmt: skip
    paths["md"].write_text("\n".join([*table, *_details(report)]) + "\n")
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    paths["csv"].write_text(_csv_text(report))
    return paths


def read_report(path: str | Path) -> EvalReport:
    """Read a ``report.json`` (or the folder holding it)."""
    path = Path(path)
    path = path / "report.json" if path.is_dir() else path
    return EvalReport.from_dict(json.loads(path.read_text()))


def pool_reports(reports: Sequence[EvalReport], dataset: str = "pooled") -> EvalReport:
    """Merge reports of one task, model and think setting over disjoint annotation files.

    Each metric becomes the ``n``-weighted mean of the parts (exact, since each is a mean over rows);
    counts, missing videos and failures add up.

    Raises:
        ValueError: no reports, or reports of different tasks, models or think settings.
    """
    if not reports:
        raise ValueError("no reports to pool")
    if len({(r.task, r.model, r.think) for r in reports}) > 1:
        raise ValueError("pool only reports of one task, model and think setting")
    n = sum(r.n for r in reports)
    metrics: dict[str, float | None] = {}
    for key, _ in PAPER_COLUMNS[reports[0].task]:
        parts = [(r.metrics.get(key), r.n) for r in reports if r.n]
        ok = parts and all(value is not None for value, _ in parts)
        metrics[key] = sum(value * count for value, count in parts) / n if ok else None
    counts: dict[str, int] = {}
    for report in reports:
        for key, value in report.counts.items():
            counts[key] = counts.get(key, 0) + value
    first = reports[0]
    return EvalReport(
        task=first.task, dataset=dataset, model=first.model, think=first.think, metrics=metrics, n=n, counts=counts,
        missing=[v for r in reports for v in r.missing], failures=[f for r in reports for f in r.failures],
        settings=first.settings, provenance={"pooled_from": [r.dataset for r in reports]},
        parity=first.parity, denominators=pool_denominators([r.denominators for r in reports]),
    )  # fmt: skip
