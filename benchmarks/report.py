"""Render a benchmark JSON (``benchmarks/run.py --json``) as the markdown table and plot of docs/performance.md.

Usage::

    python benchmarks/report.py bench.json --plot docs/performance.png > table.md

The table has one row per measure: what is compared, the median ratio of paired repeats with its
min–max, the issue's target and whether it is met. The plot shows the P1/P2 ratios against ``G`` and
against the video tokens (the ``scaling`` lists of the JSON).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: measure → (what the ratio compares, the target it must meet, a check of the result).
TARGETS: dict[str, tuple[str, str]] = {
    "p1_rollout": ("rollout ÷ `generate(num_return_sequences=G)`", "≤ 0.30"),
    "p1_floor": ("rollout ÷ floor (1 vision pass, 1 prefill, plain G-row loop)", "≤ 1.15"),
    "p2_policy": ("policy fwd+bwd, prompt shared ÷ prompt and ViT per completion", "≤ 0.25"),
    "p3_logprob_memory": ("log-prob peak memory, defaults ÷ naive `log_softmax`", "≤ 0.10"),
    "p3_time": ("log-prob time, defaults ÷ naive", "≤ 1.3"),
    "p4_data": ("cached clip read ÷ decode + resize (60 s, `paper_train`)", "≤ 0.10"),
    "p4_wait": ("share of a step spent waiting for data, default workers", "< 0.05"),
    "p1_full_vocab": ("P1 rollout ÷ `generate` on the full-vocabulary model (information)", "—"),
    "p2_full_vocab": ("P2 policy pass ÷ baseline on the full-vocabulary model (information)", "—"),
}


def _met(value: float, target: str) -> str:
    if target == "—":
        return "(no target)"
    op, bound = target.split()
    return "yes" if (value < float(bound) if op == "<" else value <= float(bound)) else "no"


def _full_vocab_rows(results: dict[str, Any]) -> list[tuple[str, float, str]]:
    rows = []
    for name in ("p1_rollout", "p2_policy"):
        if full := results.get(name, {}).get("full_vocab"):
            rows.append((f"{name[:2]}_full_vocab", full["ratio"], f"{full['ratio_min']:.3f}–{full['ratio_max']:.3f}"))
    return rows


def _rows(results: dict[str, Any]) -> list[tuple[str, float, str]]:
    """``(key, value, spread text)`` for every row present in ``results``."""
    rows = []
    for name in ("p1_rollout", "p2_policy", "p3_logprob_memory", "p4_data"):
        if name in results:
            r = results[name]
            spread = f"{r['ratio_min']:.3f}–{r['ratio_max']:.3f}" if "ratio_min" in r else "(one peak each)"
            rows.append((name, r["ratio"], spread))
    if "p1_rollout" in results:
        floor = results["p1_rollout"]["floor_ratio_spread"]
        rows.append(("p1_floor", floor["ratio"], f"{floor['ratio_min']:.3f}–{floor['ratio_max']:.3f}"))
    if "p3_logprob_memory" in results:
        t = results["p3_logprob_memory"]["time_ratio"]
        rows.append(("p3_time", t["ratio"], f"{t['ratio_min']:.3f}–{t['ratio_max']:.3f}"))
    if "p4_data" in results:
        d = results["p4_data"]
        key = f"workers_{d['default_num_workers']}"
        rows.append(("p4_wait", d["data_wait_share"][key], f"0 workers: {d['data_wait_share']['workers_0']:.3f}"))
    rows += _full_vocab_rows(results)
    order = list(TARGETS)
    return sorted(rows, key=lambda row: order.index(row[0]))


def markdown_table(results: dict[str, Any]) -> str:
    """The results table (markdown)."""
    lines = ["| measure | ratio (median) | min–max | target | met |", "|---|---|---|---|---|"]
    for key, value, spread in _rows(results):
        what, target = TARGETS[key]
        lines.append(f"| {what} | {value:.3f} | {spread} | {target} | {_met(value, target)} |")
    return "\n".join(lines)


def plot_scaling(results: dict[str, Any], path: Path) -> None:
    """P1 and P2 ratios over ``G`` (left) and over video tokens (right), written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (by_g, by_tokens) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, label in (("p1_rollout", "P1 rollout ÷ generate"), ("p2_policy", "P2 policy pass ÷ baseline")):
        main = results.get(name, {}).get("settings", {})
        points = list(results.get(name, {}).get("scaling") or [])
        if main:  # the headline point (P1 leaves it out of its scaling list)
            points.append({"G": main["G"], "video_tokens": main["video_tokens"],
                           "prompt_tokens": main["prompt_tokens"], "ratio": results[name]["ratio"]})  # fmt: skip
        points = list({(p["G"], p["video_tokens"]): p for p in points}.values())
        g_points = sorted((p["G"], p["ratio"]) for p in points if p["video_tokens"] == main.get("video_tokens"))
        t_points = sorted((p["prompt_tokens"], p["ratio"]) for p in points if p["G"] == main.get("G"))
        if g_points:
            by_g.plot(*zip(*g_points, strict=True), marker="o", label=label)
        if t_points:
            by_tokens.plot(*zip(*t_points, strict=True), marker="o", label=label)
    by_g.set(xlabel="completions per prompt G", ylabel="time ratio (project ÷ baseline)", xscale="log", ylim=(0, None))
    by_g.set_xticks([2, 4, 8, 16], labels=["2", "4", "8", "16"])
    by_g.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    by_tokens.set(xlabel="prompt tokens (video + text)", ylim=(0, None))
    for axis in (by_g, by_tokens):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="the JSON written by benchmarks/run.py")
    parser.add_argument("--plot", type=Path, default=None, help="write the scaling plot (PNG) here")
    args = parser.parse_args(argv)
    results = json.loads(args.json.read_text())
    print(markdown_table(results))
    if args.plot is not None:
        plot_scaling(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
