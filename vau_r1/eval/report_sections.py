"""The evidence sections of an evaluation report: confidence intervals, probes, blind baselines (md and csv).

See "How to read the report" in :mod:`vau_r1.eval.report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["HOW_TO_READ", "evidence_csv", "evidence_lines"]

#: The reading guide printed under the metrics table when there is evidence to read.
HOW_TO_READ = (
    "How to read: a metric shows learning only when it beats every blind baseline by more than its 95% "
    "interval, and a probe that breaks the video costs points (gap > 0, its interval above 0). "
    "A gap of about 0 means the answers do not depend on what the probe broke (swap: the video's content; "
    "reverse/shuffle: its frame order)."
)


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "n/a" if ci is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _ci_lines(report: Any) -> list[str]:
    if not report.ci95:
        return []
    lines = ["", "## 95% confidence intervals (bootstrap over clips)", "", "| Metric | Value | 95% CI |",
             "|---|---|---|"]  # fmt: skip
    return lines + [f"| {k} | {_fmt(report.metrics.get(k))} | {_ci(ci)} |" for k, ci in report.ci95.items()]


def _probe_lines(report: Any) -> list[str]:
    if not report.probes:
        return []
    names = list(report.probes)
    head = "| Metric | Clean | " + " | ".join(f"{n} | gap {n} (95% CI)" for n in names) + " |"
    lines = ["", "## Probes (gap = clean − probed; ≈ 0: the answers ignore what the probe broke)", "", head,
             "|---|---|" + "---|---|" * len(names)]  # fmt: skip
    for key in report.probes[names[0]].metrics:
        cells = [f"{_fmt(p.metrics.get(key))} | {_fmt(p.gap.get(key), True)} {_ci(p.gap_ci95.get(key))}"
                 for p in report.probes.values()]  # fmt: skip
        lines.append(f"| {key} | {_fmt(report.metrics.get(key))} | " + " | ".join(cells) + " |")
    lines.append("")
    for name, probe in report.probes.items():
        text = f"- **{name}** (seed {probe.seed}): answers changed on {_fmt(probe.changed_answers)}% of " \
               f"{probe.counts.get('compared', 0)} clips; failed {probe.counts.get('failed', 0)}"  # fmt: skip
        span = probe.span
        if span:
            text += f"; spans moved by {_fmt(span.get('mean_abs_centre_shift_s'))} s (mean |Δcentre|, " \
                    f"{span.get('n_span_pairs')} pairs)"  # fmt: skip
        if "mirrored_miou" in span:
            text += f"; mIoU vs the time-mirrored truth: probed {_fmt(span['mirrored_miou'])}, clean " \
                    f"{_fmt(span['clean_mirrored_miou'])} ({span['n_mirrored']} rows)"  # fmt: skip
        lines.append(text + f"; predictions in `{probe.output_dir}`.")
    return lines


def _baseline_lines(report: Any) -> list[str]:
    if not report.baselines:
        return []
    keys = list(report.metrics)
    model = " | ".join(_fmt(report.metrics[k]) for k in keys)
    lines = ["", "## Blind baselines (annotations only, no model)", "", "| Answer | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys), f"| **model** | {model} |"]  # fmt: skip
    for baseline in report.baselines.values():
        values = " | ".join(_fmt(baseline.metrics.get(k)) for k in keys)
        note = f" — omitted: {baseline.detail['omitted']}" if "omitted" in baseline.detail else ""
        lines.append(f"| {baseline.name}: {baseline.description}{note} | {values} |")
    return lines


def evidence_lines(report: Any) -> list[str]:
    """Markdown of the intervals, probes and baselines (empty when the report has none)."""
    body = [*_ci_lines(report), *_probe_lines(report), *_baseline_lines(report)]
    return ["", HOW_TO_READ, *body] if body else []


def evidence_csv(report: Any) -> tuple[list[str], list[Any]]:
    """Extra CSV columns: ``<metric>_ci95_lo/hi``, ``<probe>_<metric>``, ``<probe>_gap_<metric>``, ``baseline_*``."""
    header: list[str] = []
    row: list[Any] = []
    for key, ci in report.ci95.items():
        header += [f"{key}_ci95_lo", f"{key}_ci95_hi"]
        row += [None, None] if ci is None else list(ci)
    for name, probe in report.probes.items():
        for key, value in probe.metrics.items():
            header += [f"{name}_{key}", f"{name}_gap_{key}"]
            row += [value, probe.gap.get(key)]
    for name, baseline in report.baselines.items():
        for key, value in baseline.metrics.items():
            header.append(f"baseline_{name}_{key}")
            row.append(value)
    return header, row
