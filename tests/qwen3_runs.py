"""Slow end-to-end checks shared by the Qwen3-VL and Qwen3.5 tests: ``vau-r1 train`` on CPU, checkpoint, exact resume.

The debug_cpu GRPO run (and debug_cpu_sft) with the family's tiny model runs through the CLI; the final checkpoint
loads with ``from_pretrained``. The same config stopped after half its steps (``fit(until_step=...)``, the same
schedule) and resumed with ``resume=auto`` must end with bitwise the same weights and the same losses.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file

from vau_r1.apps.train import build_trainer
from vau_r1.cli import main as cli_main
from vau_r1.model.families import get_family, video_processing_for
from vau_r1.resources import CONFIG_ROOT

EXPERIMENTS = {"grpo": ("debug_cpu", "grpo.max_completion_tokens=12"), "sft": ("debug_cpu_sft",)}
STEPS = {"grpo": 4, "sft": 8}  # the experiments' max_steps; each saves at half of it


def _overrides(out: Path, algorithm: str, family: str) -> list[str]:
    experiment, *extra = EXPERIMENTS[algorithm]
    return [f"experiment={experiment}", f"model=tiny_random_{family}", f"output_dir={out}", *extra]


def _losses(out: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {m["step"]: m["train/loss"] for m in lines if "train/loss" in m}


def _final(out: Path) -> Path:
    return max((out / "checkpoints").iterdir()) / "model"


def _trainer(out: Path, algorithm: str, family: str, *extra: str):
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        return build_trainer(compose("train", overrides=[*_overrides(out, algorithm, family), *extra]))


def check_train_resume(tmp_path: Path, algorithm: str, family: str) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert cli_main(["train", *_overrides(straight, algorithm, family)]) == 0
    steps = STEPS[algorithm]
    first = _trainer(resumed, algorithm, family)
    # the training data is patched and normalised for the model (Qwen3's (0.5, 0.5, 0.5), not CLIP's)
    assert first.dataset.video_processing == video_processing_for(first.model.config)
    assert first.dataset.video_processing["image_mean"] == (0.5, 0.5, 0.5)
    first.fit(until_step=steps // 2)
    _trainer(resumed, algorithm, family, "resume=auto").fit()
    a, b = _losses(straight), _losses(resumed)
    assert sorted(a) == sorted(b) == list(range(1, steps + 1))
    assert all(a[s] == b[s] for s in a), (a, b)
    final_a, final_b = _final(straight), _final(resumed)
    assert final_a.parent.name == final_b.parent.name == f"step_{steps:06d}"
    weights_a, weights_b = load_file(final_a / "model.safetensors"), load_file(final_b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys() and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    loaded = get_family(family).load_class().from_pretrained(final_a)
    assert loaded.config.model_type == family and loaded.config.vau_r1_rope_index == "qwen"
