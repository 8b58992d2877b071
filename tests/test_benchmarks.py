"""The benchmark suite's smoke run: every measure at tiny sizes, checking exactness (not time), one command.

``python benchmarks/run.py --smoke`` is what CI runs; each measure raises on a mismatch between the project's
path and its baseline (log-probs, gradients, cached frames), so a green run means the fast paths are exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_smoke_suite_runs_every_measure_and_checks_exactness(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--json", str(out)],
                   check=True, cwd=tmp_path, env=env, timeout=600)  # fmt: skip
    results = json.loads(out.read_text())
    assert results["meta"]["scale"] == "smoke"
    for name in ("p1_rollout", "p2_policy", "p3_logprob_memory", "p4_data"):
        assert results[name]["ratio"] > 0, name
    assert "floor_ratio" in results["p1_rollout"]


def test_bad_arguments_are_refused_in_one_line(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--json", str(tmp_path / "x.json"),
                          "--only", "p9"], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2 and "--only has ['p9']" in run.stderr


def _result(ratio: float, **extra: object) -> dict:
    return {"ratio": ratio, "ratio_min": ratio * 0.9, "ratio_max": ratio * 1.1, **extra}


def test_report_table_marks_each_target_met_or_not(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.report import markdown_table

    floor = _result(1.2)
    results = {
        "p1_rollout": _result(0.44, floor_ratio_spread=floor, full_vocab=_result(0.6)),
        "p2_policy": _result(0.14),
        "p4_data": _result(0.013, default_num_workers=1, data_wait_share={"workers_0": 0.4, "workers_1": 0.03}),
    }
    rows = {line.split(" | ")[0].lstrip("| "): line for line in markdown_table(results).splitlines()[2:]}
    assert rows["rollout ÷ `generate(num_return_sequences=G)`"].endswith("| 0.440 | 0.396–0.484 | ≤ 0.30 | no |")
    assert rows["rollout ÷ floor (1 vision pass, 1 prefill, plain G-row loop)"].endswith("| ≤ 1.15 | no |")
    assert rows["policy fwd+bwd, prompt shared ÷ prompt and ViT per completion"].endswith("| ≤ 0.25 | yes |")
    wait = rows["share of a step spent waiting for data, default workers"]
    assert wait.endswith("| 0.030 | 0 workers: 0.400 | < 0.05 | yes |")
    assert rows["P1 rollout ÷ `generate` on the full-vocabulary model (information)"].endswith("| — | (no target) |")
    assert not any("P3" in key or "log-prob" in key for key in rows)  # absent measures give no row
    from benchmarks.report import plot_scaling

    settings = {"G": 8, "video_tokens": 1500, "prompt_tokens": 1483}
    results["p2_policy"].update(settings=settings, scaling=[{**settings, "G": 2, "ratio": 0.4}])
    plot_scaling(results, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
