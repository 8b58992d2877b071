"""The GRPO reward curve of the demo: read ``metrics.jsonl``, summarise the change, plot it (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from vau_r1.data.jsonl import read_jsonl

__all__ = ["CURVES", "plot_reward_curve", "read_curve", "reward_change"]

#: Curves of the plot: metrics.jsonl key → legend label.
CURVES: dict[str, str] = {"reward/total/mean": "total", "reward/format_no_think/mean": "format",
                          "reward/accuracy/mean": "accuracy", "reward/temporal_iou/mean": "temporal IoU"}  # fmt: skip


def read_curve(metrics_jsonl: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``{metric key: [(step, value), ...]}`` of the :data:`CURVES` keys in a run's ``metrics.jsonl``."""
    curves: dict[str, list[tuple[int, float]]] = {key: [] for key in CURVES}
    for line in read_jsonl(metrics_jsonl, required={"step": int}).lines:  # a torn line is skipped, with a warning
        record = line.record
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
