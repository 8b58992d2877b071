"""Markdown of the demo's results: the evidence tables, the verdicts, and the summary over several seeds.

Every accuracy is a percentage with its 95% bootstrap interval over the test clips; "swapped" and "reversed"
are the same rows with every video replaced by another clip's (a derangement) or with its frames reversed.
A model that reads the video loses points when it is swapped; a constant answer does not. "Decision" is the
TAG answer Normal vs Anomaly on every test video, normal ones included (mIoU and R@k: anomalous videos only).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LABELS", "markdown_report", "markdown_table", "seed_summary", "summary_lines", "write_seed_summary"]

#: Model key → row label.
LABELS: dict[str, str] = {"sft": "SFT", "sft_grpo": "SFT + GRPO", "sft_continued": "SFT + continued SFT (control)"}
#: Test-split columns: (row key, title, show its interval).
TEST_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("qa_accuracy", "QA acc", True), ("qa_accuracy_swap", "QA swapped", False),
    ("decision_accuracy", "Decision acc", True), ("decision_accuracy_swap", "decision swapped", False),
    ("tag_miou", "TAG mIoU", True), ("tag_miou_swap", "mIoU swapped", False), ("tag_r03", "R@0.3", False),
    ("tag_r05", "R@0.5", False), ("tag_r07", "R@0.7", False),
    ("tag_reverse_mirrored_miou", "reversed: mIoU vs mirrored GT", False),
)  # fmt: skip
#: Shifted-split columns.
SHIFT_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("shift_qa_accuracy", "QA acc", True), ("shift_decision_accuracy", "Decision acc", True),
    ("shift_tag_miou", "TAG mIoU", True),
)  # fmt: skip
#: Delta keys shown in the verdicts → title.
VERDICT_KEYS: dict[str, str] = {
    "qa_accuracy": "QA accuracy", "tag_miou": "TAG mIoU", "decision_accuracy": "decision accuracy",
    "shift_qa_accuracy": "shifted QA accuracy", "shift_tag_miou": "shifted TAG mIoU",
}  # fmt: skip


def _fmt(value: Any, ci: Any = None) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "n/a"
    text = f"{value:.1f}"
    return f"{text} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else text


def _label(row: dict[str, Any]) -> str:
    model = row["model"]
    return f"baseline: {row['description']}" if model.startswith("baseline:") else LABELS.get(model, model)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, bool]]) -> str:
    """One table: a row per model or baseline, ``value [lo, hi]`` where an interval is shown."""
    lines = ["| Model | " + " | ".join(title for _, title, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    for row in rows:
        cells = [_fmt(row.get(key), row.get(f"{key}_ci") if ci else None) for key, _, ci in columns]
        lines.append(f"| {_label(row)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _delta_lines(results: dict[str, Any]) -> list[str]:
    lines = ["| Δ (points) | " + " | ".join(VERDICT_KEYS.values()) + " |", "|---|" + "---|" * len(VERDICT_KEYS)]
    for name, delta in results["deltas"].items():
        cells = ["n/a" if delta.get(k) is None else f"{delta[k]:+.1f}" for k in VERDICT_KEYS]
        lines.append(f"| SFT + GRPO − {LABELS[name.split('-', 1)[1]]} | " + " | ".join(cells) + " |")
    return lines if results["deltas"] else []


def summary_lines(results: dict[str, Any]) -> list[str]:
    """Plain-language verdicts: the gate, and whether GRPO beat SFT alone and the control (held-out splits)."""
    gate = results["gate"]
    lines = [f"Swap-probe gate: SFT QA {gate['clean']:.1f} with the right videos, {gate['swapped']:.1f} with swapped "
             f"ones on {gate['n']} gate clips (gap {gate['gap']:+.1f}, margin {gate['margin']:g}): "
             + ("passed, GRPO started" if gate["passed"] else "FAILED, GRPO not started")]  # fmt: skip
    for name, delta in results["deltas"].items():
        ref = LABELS[name.split("-", 1)[1]]
        for key, title in VERDICT_KEYS.items():
            if delta.get(key) is not None:
                verdict = "higher" if delta[key] > 0 else "lower" if delta[key] < 0 else "equal"
                lines.append(f"SFT + GRPO vs {ref}: {title} {delta[key]:+.1f} points ({verdict})")
    if change := results.get("grpo_train_reward"):
        lines.append(f"GRPO mean total reward on its training prompts: {change['first']:.3f} -> {change['last']:.3f} "
                     f"(first vs last {change['window_steps']} steps; a training-set change only, not held-out)")
    return lines


def markdown_report(results: dict[str, Any]) -> str:
    """``table.md``: both splits' tables (models, then blind baselines), deltas, verdicts, budgets, settings."""
    rows = [*results["rows"], *results["baselines"]]
    walls = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in results["wall_s"].items())
    counts = ", ".join(f"{k} {v}" for k, v in results["train_examples"].items())
    return "\n".join([
        "# vau-r1 demo", "", "Held-out test split (the training distribution), percent with 95% bootstrap intervals; "
        "decision = Normal vs Anomaly on every video; swapped = each video replaced by another clip's; reversed = "
        "frames in reverse order (a model that sees time mirrors its span):", "",
        markdown_table(rows, TEST_COLUMNS), "", "Shifted split (other scenes, colours, layout and durations):", "",
        markdown_table(rows, SHIFT_COLUMNS), "", *_delta_lines(results), "",
        *[f"- {line}" for line in summary_lines(results)], "", f"Wall time: {walls}.",
        f"Training examples (prompts for GRPO, each with {results['settings']['grpo_generations']} completions): "
        f"{counts}.", "", "Settings: `" + str(results["settings"]) + "`",
    ])  # fmt: skip


def _spread(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    mean = statistics.fmean(values)
    return f"{mean:.1f} ± {statistics.stdev(values):.1f}" if len(values) > 1 else f"{mean:.1f}"


def seed_summary(all_results: Sequence[dict[str, Any]]) -> str:
    """Mean ± standard deviation over seeds of each model's main metrics, the per-seed deltas and verdicts."""
    titles = {"qa_accuracy": "QA acc", "qa_accuracy_swap": "QA swapped", "decision_accuracy": "Decision acc",
              "tag_miou": "TAG mIoU", "tag_miou_swap": "mIoU swapped", "shift_qa_accuracy": "shifted QA acc",
              "shift_tag_miou": "shifted mIoU"}  # fmt: skip
    keys = tuple(titles)
    seeds = [r["settings"]["seed"] for r in all_results]
    header = ["| Model | " + " | ".join(titles.values()) + " |", "|---|" + "---|" * len(keys)]
    lines = [f"# vau-r1 demo over seeds {seeds}", "", "Mean ± standard deviation over the seeds:", "", *header]
    for model, label in LABELS.items():
        rows = [row for r in all_results for row in r["rows"] if row["model"] == model]
        if rows:
            cells = [_spread([row[k] for row in rows if row.get(k) is not None]) for k in keys]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Per seed (GRPO − SFT / GRPO − control, QA points and TAG mIoU points):", ""]
    for seed, result in zip(seeds, all_results, strict=True):
        d = result["deltas"]
        if not d:
            lines.append(f"- seed {seed}: gate failed, no GRPO")
            continue
        sft, ctrl = d["sft_grpo-sft"], d["sft_grpo-sft_continued"]
        wins = all(x["qa_accuracy"] >= 3 and x["tag_miou"] >= 0 for x in (sft, ctrl))
        lines.append(f"- seed {seed}: QA {sft['qa_accuracy']:+.1f} / {ctrl['qa_accuracy']:+.1f}, mIoU "
                     f"{sft['tag_miou']:+.1f} / {ctrl['tag_miou']:+.1f}; GRPO beats both by >= 3 QA points without "
                     f"losing mIoU: {'yes' if wins else 'no'} (wall {result['wall_s']['total']:.0f} s)")  # fmt: skip
    return "\n".join(lines)


def write_seed_summary(all_results: Sequence[dict[str, Any]], out_dir: str | Path) -> Path:
    """Write ``summary.md`` over the seeds into ``out_dir``."""
    path = Path(out_dir) / "summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(seed_summary(all_results) + "\n", encoding="utf-8")
    return path
