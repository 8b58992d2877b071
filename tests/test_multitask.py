"""Several tasks in one run (``data.tasks``): row expansion, per-example task columns, rewards, and a GRPO step.

Also the in-memory video cache (``data.cache_videos``), which the multi-task expansion shares between tasks.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from vau_r1.apps.train import build_trainer
from vau_r1.data.mini_bench import write_mini_bench
from vau_r1.data.video import VideoConfig
from vau_r1.recipes.config import ConfigError, DataConfig, reward_specs
from vau_r1.resources import CONFIG_ROOT
from vau_r1.tasks import dataset as dataset_module
from vau_r1.tasks.dataset import VideoPromptDataset, load_task_samples, load_training_samples

CONFIGS = CONFIG_ROOT
TINY = VideoConfig.from_preset("tiny_cpu")


# The tiny model runs fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    """Four mini clips; row 2 loses its question (not a QA example), row 3 its class (not a CLS example)."""
    root = tmp_path_factory.mktemp("multi")
    path = write_mini_bench(root, num_clips=4, duration_s=2.0)
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[1]["Question"], rows[2]["Anomaly Class"] = "-1", "-1"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_each_row_appears_once_per_task_it_suits(mini):
    pairs = load_task_samples(mini / "train.csv", ["qa", "cls"])
    assert [(s.row, t) for s, t in pairs] == [(1, "qa"), (1, "cls"), (2, "cls"), (3, "qa"), (4, "qa"), (4, "cls")]
    assert [s.row for s, _ in load_task_samples(mini / "train.csv", ["qa", "cls"], max_samples=2)] == [1, 1, 2]
    # The single-task loader is the one-task case.
    assert [s.row for s in load_training_samples(mini / "train.csv", "qa")] == [1, 3, 4]
    with pytest.raises(ValueError, match=r"task\(s\) \['qa'\] from sources \['ecva'\]"):
        load_task_samples(mini / "train.csv", ["qa"], sources=["ecva"])


def test_examples_carry_their_own_task(mini):
    pairs = load_task_samples(mini / "train.csv", ["qa", "tag"])
    data = VideoPromptDataset([s for s, _ in pairs], mini / "videos", [t for _, t in pairs], TINY)
    first, second = data[0], data[1]  # row 1 as QA, then as TAG
    assert first.sample is second.sample
    assert (first.columns["task"], second.columns["task"]) == ("qa", "tag")
    assert first.columns["span"] is None and second.columns["span"] == [-1.0, -1.0]  # row 1 is a normal clip
    assert "A. " in first.messages[0]["content"][0]["text"] and "<glue>" in second.messages[0]["content"][0]["text"]
    with pytest.raises(ValueError, match="one task per sample"):
        VideoPromptDataset([s for s, _ in pairs], mini / "videos", ["qa"], TINY)


def test_cached_videos_are_decoded_once(mini, monkeypatch):
    calls = []
    real = dataset_module.load_clip
    monkeypatch.setattr(dataset_module, "load_clip", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    pairs = load_task_samples(mini / "train.csv", ["qa", "tag"])
    samples, tasks = [s for s, _ in pairs], [t for _, t in pairs]
    cached = VideoPromptDataset(samples, mini / "videos", tasks, TINY, cache_videos=True)
    items = [cached[i] for i in range(len(cached))] + [cached[0]]
    assert len(calls) == len({s.video for s in samples}) == 4  # each clip once, whatever the task or epoch
    plain = VideoPromptDataset(samples, mini / "videos", tasks, TINY)
    assert torch.equal(items[1].video.pixel_values_videos, plain[1].video.pixel_values_videos)
    assert len(calls) == 5


def test_tasks_config():
    base = {"annotations": "a.csv", "video_root": "v"}
    assert DataConfig(**base, task="qa").task_list == ("qa",)
    assert DataConfig(**base, task="tag", tasks=("qa", "tag")).task_list == ("qa", "tag")  # tasks replaces task
    invalid = [
        ({}, "set data.task"),
        ({"tasks": ()}, "data.tasks is empty"),
        ({"tasks": ("qa", "qa")}, "lists a task twice"),
        ({"task": "ocr"}, "has ['ocr']"),
    ]
    for bad, message in invalid:
        with pytest.raises(ConfigError, match=re.escape(message)):
            DataConfig(**base, **bad)
    # Default rewards of several tasks: their union, in order (each reward skips rows it does not apply to).
    assert [r["name"] for r in reward_specs(None, ("qa", "tag"))] == ["format", "accuracy", "temporal_iou"]
    assert [r["name"] for r in reward_specs(None, "cls")] == ["format", "accuracy"]


def test_one_grpo_step_on_mixed_tasks(tmp_path):
    overrides = [
        "experiment=debug_cpu", f"output_dir={tmp_path}", "data.tasks=[qa,tag]", "rewards.funcs=null",
        "data.shuffle=false", "trainer.per_device_batch_size=4", "trainer.max_steps=1", "grpo.num_generations=2",
        "grpo.max_completion_tokens=6", "trainer.log_completions_every=0",
    ]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        trainer = build_trainer(compose("train", overrides=overrides))
    assert len(trainer.dataset) == 16  # 8 clips x 2 tasks
    trainer.fit()
    (exp,) = trainer.last_experiences
    tasks = [ex.columns["task"] for ex in exp.examples]
    assert tasks == ["qa", "tag", "qa", "tag"]
    names = [r.name for r in trainer.rewards]
    iou = exp.rewards[:, names.index("temporal_iou")]  # [B*G], prompt-major
    for row, task in enumerate(t for t in tasks for _ in range(2)):
        assert math.isnan(iou[row]) == (task == "qa")  # IoU applies to TAG rows only
    assert not exp.rewards[:, names.index("accuracy")].isnan().any()
    assert math.isfinite(trainer.engine.last_metrics["train/loss"])
