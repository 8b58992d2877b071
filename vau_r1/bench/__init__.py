"""Synthetic VAU mini-benchmark: seeded scenes with known anomaly spans, written in the VAU-Bench CSV schema.

Example::

    from vau_r1.bench import write_benchmark

    info = write_benchmark("data/syn", num_train=500, num_test=200, duration_s=8.0, fps=4.0, seed=0)
    table = load_annotations(info.train_csv)   # source=None rows; videos under info.video_dir
    plans = plan_benchmark(BenchmarkConfig(num_train=500))  # the same rows and scenes, nothing rendered
    ood = write_benchmark("data/syn_ood", num_train=0, num_test=200, style="shifted", duration_s=(10.0, 14.0))
"""

from __future__ import annotations

from vau_r1.bench.generator import BenchmarkInfo, write_benchmark, write_frames
from vau_r1.bench.plan import BenchmarkConfig, ClipPlan, plan_benchmark
from vau_r1.bench.scenes import MARKER_RGB, SCENE_KINDS, Scene, event_frames, render_scene, sample_scene
from vau_r1.bench.styles import STYLES, SceneStyle

__all__ = [
    "MARKER_RGB",
    "SCENE_KINDS",
    "STYLES",
    "BenchmarkConfig",
    "BenchmarkInfo",
    "ClipPlan",
    "Scene",
    "SceneStyle",
    "event_frames",
    "plan_benchmark",
    "render_scene",
    "sample_scene",
    "write_benchmark",
    "write_frames",
]
