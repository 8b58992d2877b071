"""The demo's outputs: the evidence table (``table.md``), ``results.json`` and the GRPO reward-curve plot.

:func:`model_row` turns one model's :class:`~vau_r1.eval.report.EvalReport` objects (QA and TAG on the test split
with the swap and frame-reversal probes, and on the shifted split) into a row of percentages with 95% intervals;
:func:`baseline_rows` adds the blind baselines; :func:`build_results` the deltas (SFT+GRPO − SFT and SFT+GRPO −
control); :mod:`vau_r1.demo.tables` renders them, and :func:`write_outputs` writes everything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vau_r1.demo.plot import plot_reward_curve, reward_change
from vau_r1.demo.tables import markdown_report, markdown_table, summary_lines
from vau_r1.eval.metrics import RECALL_THRESHOLDS

__all__ = ["DELTA_KEYS", "baseline_rows", "build_results", "markdown_table", "model_row", "probe_scores",
           "summary_lines", "write_outputs"]  # fmt: skip

_FOLDERS = re.compile(r"(?<![\w.])/(?:[^\s/)]+/)+")
#: Row keys whose differences between models are reported (percentage points).
DELTA_KEYS: tuple[str, ...] = ("qa_accuracy", "decision_accuracy", "tag_miou", "shift_qa_accuracy",
                               "shift_decision_accuracy", "shift_tag_miou")  # fmt: skip


def probe_scores(report: Any, probe: str, metric: str) -> tuple[float, float]:
    """``(clean, probed)`` value of ``metric`` in ``report`` (percent)."""
    return float(report.metrics[metric]), float(report.probes[probe].metrics[metric])


def _value(report: Any, metric: str, prefix: str) -> dict[str, Any]:
    """``{prefix: value, prefix_ci: [lo, hi]}`` of one metric of a report."""
    return {prefix: report.metrics.get(metric), f"{prefix}_ci": report.ci95.get(metric)}


def _probed(report: Any, metric: str, prefix: str) -> dict[str, Any]:
    """The metric under each probe of the report, and the probe's gap."""
    out: dict[str, Any] = {}
    for name, probe in report.probes.items():
        out[f"{prefix}_{name}"] = probe.metrics.get(metric)
        out[f"{prefix}_{name}_gap_ci"] = probe.gap_ci95.get(metric)
    return out


def _recalls(metrics: dict[str, Any]) -> dict[str, Any]:
    """``tag_r03``/``tag_r05``/``tag_r07`` of a TAG metrics dict (``r@0.3`` ...)."""
    return {f"tag_r{str(k).replace('.', '')}": metrics.get(f"r@{k}") for k in RECALL_THRESHOLDS}


def model_row(label: str, reports: dict[str, Any]) -> dict[str, Any]:
    """One model's row (percentages; ``*_ci`` are 95% bootstrap intervals over the clips).

    Args:
        label: model key (``sft``, ``sft_grpo``, ``sft_continued``).
        reports: ``test_qa``, ``test_tag`` (with probes) and ``shift_qa``, ``shift_tag`` reports.
    """
    qa, tag, sqa, stag = (reports[k] for k in ("test_qa", "test_tag", "shift_qa", "shift_tag"))
    row: dict[str, Any] = {"model": label, **_value(qa, "accuracy", "qa_accuracy"),
                           **_probed(qa, "accuracy", "qa_accuracy")}  # fmt: skip
    row.update(_value(tag, "decision_accuracy", "decision_accuracy"), **_probed(tag, "decision_accuracy",
                                                                                "decision_accuracy"))  # fmt: skip
    row.update(_value(tag, "miou", "tag_miou"), **_probed(tag, "miou", "tag_miou"))
    row.update(_recalls(tag.metrics))
    reverse = tag.probes.get("reverse")
    row["tag_reverse_shift_s"] = (reverse.span or {}).get("mean_abs_centre_shift_s") if reverse else None
    row["tag_reverse_mirrored_miou"] = (reverse.span or {}).get("mirrored_miou") if reverse else None
    row.update(_value(sqa, "accuracy", "shift_qa_accuracy"), **_value(stag, "miou", "shift_tag_miou"))
    row.update(_value(stag, "decision_accuracy", "shift_decision_accuracy"))
    row.update(n_qa=qa.n, n_tag=tag.n, n_decision=tag.counts.get("decision_rows"), n_shift_qa=sqa.n)
    return row


def baseline_rows(reports: dict[str, Any]) -> list[dict[str, Any]]:
    """The blind baselines of the test and shifted splits, as rows with the model rows' keys (no probes)."""
    qa, tag, sqa, stag = (reports[k] for k in ("test_qa", "test_tag", "shift_qa", "shift_tag"))
    rows = []
    for name, (test, shift, metric, key) in {
        "always_normal_option": (qa, sqa, "accuracy", "qa_accuracy"),
        "best_constant_letter": (qa, sqa, "accuracy", "qa_accuracy"),
        "always_normal": (tag, stag, "decision_accuracy", "decision_accuracy"),
        "always_anomaly_mean_span": (tag, stag, "decision_accuracy", "decision_accuracy"),
    }.items():  # fmt: skip
        if name not in test.baselines:
            continue
        base, shifted = test.baselines[name], shift.baselines.get(name)
        description = _FOLDERS.sub("", base.description)  # file names without their folders
        row = {"model": f"baseline:{name}", "description": description, key: base.metrics.get(metric),
               f"shift_{key}": shifted.metrics.get(metric) if shifted else None}  # fmt: skip
        if key == "decision_accuracy":
            row["tag_miou"] = base.metrics.get("miou")
            row["shift_tag_miou"] = shifted.metrics.get("miou") if shifted else None
            row.update(_recalls(base.metrics))
        rows.append(row)
    return rows


def _delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    return {k: None if a.get(k) is None or b.get(k) is None else a[k] - b[k] for k in DELTA_KEYS}


def build_results(settings: dict[str, Any], rows: Sequence[dict[str, Any]], baselines: Sequence[dict[str, Any]],
                  walls: dict[str, float], gate: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """Settings, gate, rows, baselines, deltas, wall times and training example counts (``results.json``)."""
    by = {row["model"]: row for row in rows}
    deltas = {f"sft_grpo-{ref}": _delta(by["sft_grpo"], by[ref]) for ref in ("sft", "sft_continued")
              if "sft_grpo" in by and ref in by}  # fmt: skip
    return {"settings": settings, "gate": gate, "rows": list(rows), "baselines": list(baselines), "deltas": deltas,
            "wall_s": walls, "train_examples": counts}  # fmt: skip


def write_outputs(results: dict[str, Any], out_dir: str | Path, metrics_jsonl: str | Path | None) -> dict[str, Path]:
    """Write ``table.md``, ``results.json`` and (after GRPO) ``reward_curve.png``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "table.md", "json": out / "results.json", "png": out / "reward_curve.png"}
    if metrics_jsonl is not None and Path(metrics_jsonl).is_file():
        results["grpo_train_reward"] = reward_change(metrics_jsonl)
        plot_reward_curve(metrics_jsonl, paths["png"])
    paths["md"].write_text(markdown_report(results) + "\n", encoding="utf-8")
    paths["json"].write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return paths
