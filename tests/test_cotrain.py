"""Co-training (paper Table C): task weights, per-task sources, per-task metrics, experiment files, exact resume.

One model trains on QA + TAG + CLS (``data.tasks``); ``data.task_weights`` sets each task's draws per epoch and
``data.task_sources`` its sources; GRPO logs ``reward/<name>/<task>/mean`` and ``data/prompts/<task>``, SFT
``train/loss/<task>``, all keyed by the configured tasks so that every rank reduces the same vector.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vau_r1.apps.train import build_trainer
from vau_r1.data.mini_bench import write_mini_bench
from vau_r1.engine.distributed import ShardedBatchSampler
from vau_r1.recipes.config import ConfigError, DataConfig, RunConfig
from vau_r1.recipes.grpo_metrics import stat_keys
from vau_r1.resources import CONFIG_ROOT
from vau_r1.tasks.dataset import load_task_samples, restrict_task_sources, weight_task_pairs

TASKS = ("qa", "tag", "cls")
DATA = ["data.annotations=/data/train.csv", "data.video_root=/data/videos"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mini_csv(tmp_path_factory) -> Path:
    """Four mini clips, each a QA, a TAG and a CLS row."""
    return write_mini_bench(tmp_path_factory.mktemp("cotrain"), num_clips=4, duration_s=2.0)


@pytest.fixture(scope="module")
def pairs(mini_csv: Path) -> list:
    return load_task_samples(mini_csv, TASKS)


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        return compose("train", overrides=list(overrides))


# ---------------------------------------------------------------- the task mix


def test_task_weights_change_the_mix_as_configured(pairs) -> None:
    assert weight_task_pairs(pairs, None) == pairs
    assert weight_task_pairs(pairs, dict.fromkeys(TASKS, 1.0)) == pairs  # weight 1 everywhere: as without weights
    weighted = weight_task_pairs(pairs, {"qa": 1.0, "tag": 2.0, "cls": 0.5})
    assert Counter(t for _, t in weighted) == {"qa": 4, "tag": 8, "cls": 2}
    assert Counter((s.row, t) for s, t in weighted if t == "tag") == {(row, "tag"): 2 for row in (1, 2, 3, 4)}
    assert sorted(s.row for s, t in weighted if t == "cls") == [2, 4]  # an evenly spaced half, not the first two
    assert Counter(t for _, t in weight_task_pairs(pairs, {"tag": 1.5})) == {"qa": 4, "tag": 6, "cls": 4}
    assert Counter(t for _, t in weight_task_pairs(pairs, {"cls": 0.01})) == {"qa": 4, "tag": 4, "cls": 1}
    assert weight_task_pairs(pairs, {"tag": 2.0}) == weight_task_pairs(pairs, {"tag": 2.0})  # deterministic


def test_task_sources_keep_a_task_to_its_sources(pairs) -> None:
    assert restrict_task_sources(pairs, None) == pairs
    assert restrict_task_sources(pairs, {"tag": ["msad"]}) == pairs  # the mini clips are all msad
    with pytest.raises(ValueError, match=re.escape("data.task_sources.tag=['ecva']")):
        restrict_task_sources(pairs, {"tag": ["ecva"]})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"task_weights": {"cls": 1.0}}, "data.task_weights has ['cls']"),
        ({"task_weights": {"qa": 0.0}}, "data.task_weights.qa=0.0; set a number > 0"),
        ({"task_weights": {"qa": True}}, "data.task_weights.qa=True"),
        ({"task_sources": {"cls": ["msad"]}}, "data.task_sources has ['cls']"),
        ({"task_sources": {"tag": ["kinetics"]}}, "data.task_sources.tag=['kinetics']"),
        ({"task_sources": {"tag": []}}, "data.task_sources.tag=[]"),
    ],
)
def test_bad_weights_and_sources_name_the_key(extra: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        DataConfig(annotations="a.csv", video_root="v", tasks=("qa", "tag"), **extra)


def test_a_resumed_process_rebuilds_the_same_weighted_order(pairs, mini_csv: Path) -> None:
    """A resumed run rebuilds the expanded list from the CSV and the sampler continues at the saved batch."""
    weights = {"qa": 1.0, "tag": 2.0, "cls": 0.5}
    rebuilt = weight_task_pairs(load_task_samples(mini_csv, TASKS), weights)  # a fresh load, as on resume
    weighted = weight_task_pairs(pairs, weights)
    assert [(s.row, t) for s, t in rebuilt] == [(s.row, t) for s, t in weighted]
    sampler = ShardedBatchSampler(len(weighted), 3, rank=0, world_size=1, seed=7)
    stream = iter(sampler)
    straight = [next(stream) for _ in range(2 * len(sampler))]
    k = len(sampler) + 1  # mid second epoch
    resumed = ShardedBatchSampler(len(rebuilt), 3, rank=0, world_size=1, seed=7)
    resumed.load_state_dict({"epoch": k // len(sampler), "position": k % len(sampler)})
    stream = iter(resumed)
    tail = [[(rebuilt[i][0].row, rebuilt[i][1]) for i in next(stream)] for _ in range(len(straight) - k)]
    assert tail == [[(weighted[i][0].row, weighted[i][1]) for i in batch] for batch in straight[k:]]


# ---------------------------------------------------------------- metric keys and experiment files


def test_stat_keys_come_from_the_configured_tasks() -> None:
    rewards = [type("R", (), {"name": name})() for name in ("format", "temporal_iou")]
    keys = stat_keys(rewards, TASKS)
    assert len(keys) == len(set(keys))
    assert {"reward/temporal_iou/qa", "reward/total/cls", "data/prompts/tag"} <= set(keys)
    assert stat_keys(rewards, TASKS) == keys  # the same on every call (every rank)


def test_cotrain_experiments_train_the_three_tasks() -> None:
    model = "qwen2_5_vl_3b"  # the qwen2_vl_2b twins differ in model.* only (test_experiments.py)
    for algorithm in ("grpo", "sft"):
        cfg = compose_cfg(f"experiment=cotrain_{algorithm}_{model}", *DATA)
        run = RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
        assert run.algorithm == algorithm and run.data.task_list == TASKS and run.data.task_weights is None
        assert run.data.task_sources == {"tag": ["msad", "ecva"]} and run.data.sources is None
        assert run.trainer.learning_rate == (1e-6 if algorithm == "grpo" else 2e-5)
        if algorithm == "grpo":  # the rewards of all three tasks (rewards/cotrain.yaml)
            assert [r["name"] for r in run.rewards] == ["format", "accuracy", "temporal_iou"]


# ---------------------------------------------------------------- runs


def metrics_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_cotraining_debug_cpu_run_logs_per_task_rewards(tmp_path: Path) -> None:
    trainer = build_trainer(compose_cfg(
        "experiment=debug_cpu_cotrain", f"output_dir={tmp_path}", "data.shuffle=false", "trainer.max_steps=2",
        "grpo.num_generations=2", "grpo.max_completion_tokens=6", "trainer.save_every=100", "trainer.save_final=false",
        "trainer.log_completions_every=0", "data.mini_bench.num_clips=4", "data.mini_bench.duration_s=2.0",
    ))  # fmt: skip
    assert Counter(trainer.dataset.tasks) == {"qa": 4, "tag": 8, "cls": 2}  # debug_cpu_cotrain's weights
    trainer.fit()
    lines = metrics_lines(tmp_path)
    assert [m["step"] for m in lines] == [1, 2]
    for step, m in enumerate(lines):
        batch = Counter(trainer.dataset.tasks[3 * step : 3 * step + 3])  # unshuffled: consecutive rows
        assert {t: m[f"data/prompts/{t}"] for t in TASKS} == {t: batch[t] for t in TASKS}
        assert "reward/temporal_iou/qa/mean" not in m and "reward/temporal_iou/cls/mean" not in m  # not applicable
        present = [t for t in TASKS if batch[t]]
        assert all(f"reward/total/{t}/mean" in m for t in present)
        assert not any(f"reward/total/{t}/mean" in m for t in TASKS if not batch[t])
        # The per-task means average back to the step's mean (2 completions per prompt, none NaN here).
        pooled = sum(m[f"reward/total/{t}/mean"] * batch[t] for t in present) / sum(batch.values())
        assert math.isclose(pooled, m["reward/total/mean"], rel_tol=1e-6)
    assert {"qa", "tag"} <= {t for m in lines for t in TASKS if m[f"data/prompts/{t}"]}


def test_cotraining_sft_logs_the_loss_per_task(tmp_path: Path) -> None:
    trainer = build_trainer(compose_cfg(
        "experiment=debug_cpu_cotrain", "algorithm=sft", f"output_dir={tmp_path}", "data.shuffle=false",
        "trainer.max_steps=2", "trainer.save_every=100", "trainer.save_final=false", "data.mini_bench.num_clips=4",
        "data.mini_bench.duration_s=2.0",
    ))  # fmt: skip
    trainer.fit()
    for m in metrics_lines(tmp_path):
        tokens = {t: m[f"data/target_tokens/{t}"] for t in TASKS}
        assert sum(tokens.values()) == m["data/target_tokens"]
        mixed = sum(m[f"train/loss/{t}"] * n for t, n in tokens.items() if n) / m["data/target_tokens"]
        assert math.isclose(mixed, m["train/loss"], rel_tol=1e-6)  # the step's loss is the token-weighted mix
        assert all((f"train/loss/{t}" in m) == (n > 0) for t, n in tokens.items())


# slow: two runs of four GRPO steps, about 15 s.
@pytest.mark.slow
def test_weighted_cotraining_resumes_exactly(tmp_path: Path) -> None:
    common = ["experiment=debug_cpu_cotrain", "trainer.max_steps=4", "trainer.save_every=2", "grpo.num_generations=2",
              "grpo.max_completion_tokens=6", "trainer.log_completions_every=0", "data.mini_bench.num_clips=4",
              "data.mini_bench.duration_s=2.0"]  # fmt: skip
    straight = build_trainer(compose_cfg(*common, f"output_dir={tmp_path / 'straight'}"))
    straight.fit()
    first = build_trainer(compose_cfg(*common, f"output_dir={tmp_path / 'resumed'}"))
    first.fit(until_step=2)
    second = build_trainer(compose_cfg(*common, f"output_dir={tmp_path / 'resumed'}", "resume=auto"))
    second.fit()
    reference = dict(straight.model.named_parameters())
    for name, param in second.model.named_parameters():
        torch.testing.assert_close(param, reference[name], rtol=0, atol=0, msg=name)  # bitwise
    last = [metrics_lines(tmp_path / name)[-1] for name in ("straight", "resumed")]
    keys = [k for k in last[0] if k.startswith(("reward/", "data/prompts")) and "/time" not in k]
    assert [last[0][k] for k in keys] == [last[1][k] for k in keys]


def test_table_c_cotrain_script_plans_both_cotrained_rows() -> None:
    script = Path(__file__).resolve().parents[1] / "scripts" / "table_c_cotrain.sh"
    env = {**os.environ, "DRY_RUN": "1", "VAU_DATA_ROOT": "/data/vau", "TASK_WEIGHTS": "{qa:1.0,tag:1.0,cls:2.0}"}
    lines = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60,
                           check=True).stdout.splitlines()  # fmt: skip
    trains = [line for line in lines if "vau_r1.apps.train" in line]
    assert len(trains) == 2 and all("experiment=cotrain_grpo_qwen2_5_vl_3b" in line for line in trains)
    assert ["data.tasks=[qa,tag]" in trains[0], "data.tasks=[qa,tag,cls]" in trains[1]] == [True, True]
    assert all("data.task_weights={qa:1.0,tag:1.0,cls:2.0}" in line for line in trains)
    evals = [line for line in lines if "vau_r1.apps.evaluate" in line]
    assert len(evals) == 12 and all("task=cls" in line for line in evals)  # 2 runs x 3 test sets x 2 protocols
    assert sum("--pool MSAD+UCF-Crime+ECVA" in line for line in lines) == 2
