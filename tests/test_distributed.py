"""Prompt sharding, per-rank seeds, and a real 2-process gloo DDP run of ``experiment=debug_cpu`` on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import Qwen2_5_VLForConditionalGeneration

from vau_r1.engine.distributed import ShardedBatchSampler, sampling_seed
from vau_r1.model.builder import ModelConfig, load_model_and_processor
from vau_r1.resources import CONFIG_ROOT

ROOT = Path(__file__).resolve().parents[1]


def shards(num_samples: int, batch_size: int, world_size: int, epoch: int = 0, **kwargs) -> list[list[list[int]]]:
    return [
        ShardedBatchSampler(num_samples, batch_size, rank, world_size, **kwargs).epoch_batches(epoch)
        for rank in range(world_size)
    ]


def test_ranks_get_disjoint_prompts_and_the_same_number_of_batches():
    per_rank = shards(23, batch_size=2, world_size=3, seed=7)
    assert [len(batches) for batches in per_rank] == [3, 3, 3]  # 23 // (2*3); the tail is dropped
    flat = [i for batches in per_rank for batch in batches for i in batch]
    assert len(flat) == len(set(flat)) == 18 and all(len(b) == 2 for r in per_rank for b in r)


def test_every_epoch_reshuffles_with_the_shared_seed():
    epoch0, epoch1 = shards(16, 2, 2, epoch=0, seed=1), shards(16, 2, 2, epoch=1, seed=1)
    assert epoch0 != epoch1
    assert epoch0 == shards(16, 2, 2, epoch=0, seed=1)  # every rank computes the same order
    assert shards(6, 2, 1, shuffle=False) == [[[0, 1], [2, 3], [4, 5]]]


def test_sampler_resumes_at_any_batch_of_any_epoch():
    sampler = ShardedBatchSampler(10, 2, rank=1, world_size=2, seed=3)
    stream = iter(sampler)
    taken = [next(stream) for _ in range(5)]  # 2 batches per epoch: into epoch 2
    assert sampler.state_dict() == {"epoch": 2, "position": 1}
    resumed = ShardedBatchSampler(10, 2, rank=1, world_size=2, seed=3)
    resumed.load_state_dict({"epoch": 1, "position": 1})
    assert next(iter(resumed)) == taken[3]


def test_too_few_samples_for_the_processes_is_an_error():
    with pytest.raises(ValueError, match="per_device_batch_size=2"):
        ShardedBatchSampler(3, batch_size=2, rank=0, world_size=2)


def test_sampling_seeds_differ_by_rank_and_step_and_are_reproducible():
    seeds = {sampling_seed(42, rank, step) for rank in range(4) for step in range(50)}
    assert len(seeds) == 200
    assert sampling_seed(42, 1, 7) == sampling_seed(42, 1, 7)


# slow: a two-process DDP run of the CLI (gloo), about 11 s.
@pytest.mark.slow
def test_two_process_ddp_run_of_the_cli_keeps_ranks_identical(tmp_path):
    # About 10-25 s on 2 cores: torchrun, two interpreters importing torch/transformers, 4 GRPO steps (gloo DDP).
    # Without a GPU, the plain torchrun command (no ACCELERATE_USE_CPU) is one two-process gloo run, not two runs.
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}
    env.update({"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"})
    if torch.cuda.is_available():  # this test is about CPU processes; ranks must not share one GPU
        env["ACCELERATE_USE_CPU"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "vau_r1.apps.train", "experiment=debug_cpu", f"output_dir={out}", "grpo.max_completion_tokens=12",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # Every checkpoint compares the ranks' parameters (and raises if they differ); both digests are recorded.
    for step in (2, 4):
        state = json.loads((out / "checkpoints" / f"step_{step:06d}" / "trainer_state.json").read_text())
        assert state["world_size"] == 2 and state["step"] == step  # one run of two ranks (not two runs of one)
        digests = state["param_digest_per_rank"]
        assert len(digests) == 2 and digests[0] == digests[1]
    trained = Qwen2_5_VLForConditionalGeneration.from_pretrained(out / "checkpoints" / "step_000004" / "model")
    initial, _ = load_model_and_processor(ModelConfig(**OmegaConf.load(CONFIG_ROOT / "model" / "tiny_random.yaml")))
    moved = [n for n, p in initial.named_parameters() if not torch.equal(p, dict(trained.named_parameters())[n])]
    assert len(moved) == len(list(initial.parameters()))  # every parameter trained (vision tower included)

    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]  # rank 0 alone writes the log
    assert all(m["data/prompts"] == 4 for m in metrics)  # 2 prompts per rank per step, summed over ranks
    assert (out / "train_rank0.log").is_file() and (out / "train_rank1.log").is_file()
