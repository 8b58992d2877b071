"""Shared measuring tools of the benchmark suite: paired interleaved timing and peak tensor memory.

Every measure runs its project function and its baseline in one process, one thread, alternately
(the order flips each repeat), so load on the machine hits both alike; a ratio is the median of the
per-repeat ratios. Memory is the peak of live tensor storage bytes seen by a dispatch mode (every
tensor an op creates, forward and backward, on any device), measured above what was live before.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from vau_r1.engine.memory import PeakMemory, peak_bytes

__all__ = ["PeakMemory", "load_line", "one_thread", "paired_times", "peak_bytes", "ratio_summary", "spread"]


def one_thread() -> None:
    """Pin torch to one intra-op and one inter-op thread (the suite's timing rule)."""
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # already set once in this process
        torch.set_num_interop_threads(1)


def load_line() -> dict[str, Any]:
    """The machine's load averages and core count, recorded beside every result."""
    one, five, fifteen = os.getloadavg()
    return {"load_1m": round(one, 2), "load_5m": round(five, 2), "load_15m": round(fifteen, 2), "cpus": os.cpu_count()}


def paired_times(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, interleaved: repeat ``r`` runs them in order, reversed when ``r`` is odd."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else reversed(names):
            gc.collect()
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max and the interquartile range of ``values``."""
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) >= 2 else [ordered[0]] * 3
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1],
            "iqr": quartiles[2] - quartiles[0]}  # fmt: skip


def ratio_summary(project: list[float], baseline: list[float]) -> dict[str, float]:
    """``ratio`` = median over repeats of project ÷ baseline (paired), with its min and max."""
    ratios = [p / b for p, b in zip(project, baseline, strict=True)]
    summary = spread(ratios)
    return {"ratio": summary["median"], "ratio_min": summary["min"], "ratio_max": summary["max"]}
