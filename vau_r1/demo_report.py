"""The demo's outputs: a paper-style Markdown table, ``results.json`` and the GRPO reward-curve plot.

:func:`table_row` turns the QA and TAG :class:`~vau_r1.eval.report.EvalReport` of one model into a row,
:func:`build_results` adds the deltas that the honesty rule asks for (SFT+GRPO − SFT and SFT+GRPO −
SFT-continued), :func:`markdown_table` renders the rows as in ``paper_spec.md`` §9 (percentages, two
decimals), and :func:`plot_reward_curve` draws the GRPO run's ``metrics.jsonl`` (matplotlib, Agg canvas).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

__all__ = ["COLUMNS", "build_results", "markdown_table", "normal_accuracy", "plot_reward_curve", "read_curve",
           "reward_change", "summary_lines", "table_row", "write_outputs"]  # fmt: skip

#: Row key → column title, in table order (all percentages).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("qa_accuracy", "QA Acc (w/o think)"), ("tag_miou", "TAG mIoU"), ("tag_r03", "R@0.3"), ("tag_r05", "R@0.5"),
    ("tag_r07", "R@0.7"), ("normal_accuracy", "QA Acc normal videos"),
)  # fmt: skip
#: Model key → row label.
LABELS: dict[str, str] = {"base": "Base (random init)", "sft": "SFT", "sft_grpo": "SFT + GRPO",
                          "sft_continued": "SFT + continued SFT (control)"}  # fmt: skip
#: Curves of the plot: metrics.jsonl key → legend label.
CURVES: dict[str, str] = {"reward/total/mean": "total", "reward/format_no_think/mean": "format",
                          "reward/accuracy/mean": "accuracy", "reward/temporal_iou/mean": "temporal IoU"}  # fmt: skip


def normal_accuracy(qa_dir: str | Path, annotations: str | Path) -> float:
    """Percent of the normal test videos whose QA answer is right (the TAG metrics score anomalous videos only).

    Args:
        qa_dir: a QA evaluation folder (its ``predictions.jsonl``).
        annotations: the evaluated annotation CSV (which videos are normal, their correct letter).

    Raises:
        ValueError: the split has no normal video.
    """
    from vau_r1.data.annotations import load_annotations
    from vau_r1.metrics import qa_accuracy

    samples = [s for s in load_annotations(annotations).usable("qa", purpose="eval") if s.is_normal]
    if not samples:
        raise ValueError(f"{annotations}: no normal video to score")
    lines = (Path(qa_dir) / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    texts = {r["video"]: r["text"] for r in map(json.loads, filter(None, lines)) if r.get("status") == "ok"}
    return float(qa_accuracy(samples, texts).metrics["accuracy"])


def table_row(label: str, qa: Any, tag: Any, qa_dir: str | Path) -> dict[str, Any]:
    """One model's row: QA accuracy, TAG mIoU and R@IoU, normal-video QA accuracy (percent), and the ``n``s."""
    m = tag.metrics
    return {
        "model": label, "qa_accuracy": qa.metrics["accuracy"], "tag_miou": m["miou"], "tag_r03": m["r@0.3"],
        "tag_r05": m["r@0.5"], "tag_r07": m["r@0.7"],
        "normal_accuracy": normal_accuracy(qa_dir, qa.provenance["annotations"]), "n_qa": qa.n, "n_tag": tag.n,
    }  # fmt: skip


def build_results(settings: dict[str, Any], rows: Sequence[dict[str, Any]], walls: dict[str, float]) -> dict:
    """Settings, rows, wall times and the deltas ``sft_grpo − sft`` and ``sft_grpo − sft_continued``."""
    by = {row["model"]: row for row in rows}
    deltas = {}
    for ref in ("sft", "sft_continued"):
        if "sft_grpo" in by and ref in by:
            deltas[f"sft_grpo-{ref}"] = {k: by["sft_grpo"][k] - by[ref][k] for k, _ in COLUMNS}
    return {"settings": settings, "rows": list(rows), "deltas": deltas, "wall_s": walls}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"


def markdown_table(results: dict[str, Any]) -> str:
    """The paper-style table: one row per model, then one row per delta (signed)."""
    header = "| Model | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [header, "|---|" + "---|" * len(COLUMNS)]
    for row in results["rows"]:
        values = " | ".join(_fmt(row[k]) for k, _ in COLUMNS)
        lines.append(f"| {LABELS.get(row['model'], row['model'])} | {values} |")
    for name, delta in results["deltas"].items():
        ref = LABELS[name.split("-", 1)[1]]
        lines.append(f"| Δ GRPO − {ref} | " + " | ".join(f"{delta[k]:+.2f}" for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def summary_lines(results: dict[str, Any]) -> list[str]:
    """Plain-language verdicts: did GRPO beat SFT alone and the same-budget control on the held-out split?"""
    lines = []
    for name, delta in results["deltas"].items():
        ref = LABELS[name.split("-", 1)[1]]
        for key, title in (("qa_accuracy", "QA accuracy"), ("tag_miou", "TAG mIoU")):
            verdict = "higher" if delta[key] > 0 else "lower" if delta[key] < 0 else "equal"
            lines.append(f"SFT + GRPO vs {ref}: {title} {delta[key]:+.2f} points ({verdict}, held-out test split)")
    change = results.get("grpo_train_reward")
    if change:
        lines.append(f"GRPO mean total reward on its training prompts: {change['first']:.3f} -> {change['last']:.3f} "
                     f"(first vs last {change['window_steps']} steps; a training-set change only, not held-out)")
    return lines


def read_curve(metrics_jsonl: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric key: [(step, value), ...]}`` of the :data:`CURVES` keys in a run's ``metrics.jsonl``."""
    curves: dict[str, list[tuple[int, float]]] = {key: [] for key in CURVES}
    for line in Path(metrics_jsonl).read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.strip() else {}
        values = record.get("metrics", record)
        for key in CURVES:
            if isinstance(values.get(key), (int, float)):
                curves[key].append((int(record["step"]), float(values[key])))
    return {key: points for key, points in curves.items() if points}


def reward_change(metrics_jsonl: str | Path, window: int = 10) -> dict[str, float]:
    """Mean total GRPO reward over the first and the last ``window`` steps (training prompts, not held-out).

    Raises:
        ValueError: the file holds no ``reward/total/mean``.
    """
    points = read_curve(metrics_jsonl).get("reward/total/mean")
    if not points:
        raise ValueError(f"{metrics_jsonl}: no reward/total/mean metric")
    values = [value for _, value in points]
    k = min(window, len(values))
    return {"first": sum(values[:k]) / k, "last": sum(values[-k:]) / k, "window_steps": k}


def plot_reward_curve(metrics_jsonl: str | Path, png: str | Path, window: int = 10) -> Path:
    """Plot GRPO's mean rewards per step (thin) and their ``window``-step running mean (thick) into ``png``.

    Raises:
        ValueError: the file holds no reward metric.
    """
    curves = read_curve(metrics_jsonl)
    if not curves:
        raise ValueError(f"{metrics_jsonl}: no reward/*/mean metric to plot")
    fig = Figure(figsize=(8.0, 4.5), dpi=100)
    ax = fig.add_subplot()
    for (key, points), color in zip(curves.items(), ("black", "tab:blue", "tab:orange", "tab:green"), strict=False):
        steps, values = zip(*points, strict=True)
        k = max(1, min(window, len(values)))
        smooth = [sum(values[max(0, i - k + 1) : i + 1]) / len(values[max(0, i - k + 1) : i + 1])
                  for i in range(len(values))]  # fmt: skip
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, smooth, color=color, linewidth=2.0, label=CURVES[key])
    ax.set(xlabel="GRPO step", ylabel="mean reward per completion", title="GRPO rewards on the training prompts")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def write_outputs(results: dict[str, Any], out_dir: str | Path, metrics_jsonl: str | Path) -> dict[str, Path]:
    """Write ``table.md``, ``results.json`` and ``reward_curve.png`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    walls = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in results["wall_s"].items())
    text = ["# vau-r1 demo", "", markdown_table(results), "", *[f"- {line}" for line in summary_lines(results)],
            "", f"Wall time: {walls}.", "", "Settings: `" + json.dumps(results["settings"]) + "`"]  # fmt: skip
    paths = {"md": out / "table.md", "json": out / "results.json", "png": out / "reward_curve.png"}
    paths["md"].write_text("\n".join(text) + "\n", encoding="utf-8")
    paths["json"].write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    plot_reward_curve(metrics_jsonl, paths["png"])
    return paths
