"""The benchmark suite in one command: P1 rollout, P2 policy pass, P3 log-prob memory, P4 data loading.

Usage (repository root, the package installed)::

    python benchmarks/run.py --json bench.json            # full sizes, on a quiet machine (see docs/performance.md)
    python benchmarks/run.py --json smoke.json --smoke    # tiny sizes, exactness checks only (CI)
    python benchmarks/run.py --json p1.json --only p1_rollout --repeats 3

Each measure runs its project function against its baseline in this one process, interleaved, on one
thread; the JSON holds one object per measure with ``ratio`` (project ÷ baseline, the median of paired
repeats), spreads, exactness checks and the machine load, plus a ``meta`` object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/run.py` from a checkout
    sys.path.insert(0, str(ROOT))

#: Measure name → module under benchmarks/.
MEASURES: dict[str, str] = {
    "p1_rollout": "benchmarks.p1_rollout",
    "p2_policy": "benchmarks.p2_policy",
    "p3_logprob_memory": "benchmarks.p3_logprob_memory",
    "p4_data": "benchmarks.p4_data",
}


def _meta() -> dict[str, Any]:
    import torch
    import transformers

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit.stdout.strip() or None,
        "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "machine": platform.machine(), "threads": 1,
    }  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, type=Path, help="where to write the results (one JSON object)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check exactness, not time (seconds)")
    parser.add_argument("--repeats", type=int, default=None, help="paired repeats per measure (default 5; smoke 2)")
    parser.add_argument("--only", default=",".join(MEASURES), help=f"comma-separated subset of {list(MEASURES)}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only.split(",") if name not in MEASURES]
    if unknown:
        parser.error(f"--only has {unknown}; choose from {list(MEASURES)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale, repeats = ("smoke", args.repeats or 2) if args.smoke else ("full", args.repeats or 5)
    results: dict[str, Any] = {"meta": {**_meta(), "scale": scale, "repeats": repeats}}
    for name in args.only.split(","):
        start = time.perf_counter()
        print(f"[bench] {name} ({scale}, {repeats} repeats) ...", file=sys.stderr, flush=True)
        results[name] = importlib.import_module(MEASURES[name]).run(scale, repeats)
        results[name]["wall_s"] = round(time.perf_counter() - start, 1)
        ratio = results[name].get("ratio")
        print(f"[bench] {name}: ratio {ratio:.3g} in {results[name]['wall_s']} s", file=sys.stderr, flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")  # after each measure: a kill keeps the rest
    return 0


if __name__ == "__main__":
    sys.exit(main())
