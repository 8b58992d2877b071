"""DeepSpeed ZeRO-2/3 and FSDP2 for the GRPO trainer: the accelerate configs, real two-process CPU runs, and the
fp32 master weights of a bf16 model under one process/DDP and FSDP2.

Each run launches ``torchrun --nproc_per_node 2`` on this file; its ``__main__`` trains ``experiment=debug_cpu``
for two steps with ``trainer.strategy=<name>`` (gloo on CPU) and writes every rank's gathered full parameters.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from vau_r1.engine.distributed import ACCELERATE_CONFIGS, build_accelerator, strategy_plugins
from vau_r1.recipes.config import ConfigError, TrainerConfig
from vau_r1.resources import CONFIG_ROOT

ROOT = Path(__file__).resolve().parents[1]
HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
needs_deepspeed = pytest.mark.skipif(not HAS_DEEPSPEED, reason="DeepSpeed missing: pip install 'vau-r1[deepspeed]'")
# Two steps, a checkpoint after each; short completions keep a run at about 15 s on 2 cores.
RUN = ["trainer.max_steps=2", "trainer.save_every=1", "trainer.keep_last=null", "grpo.max_completion_tokens=12"]


def test_accelerate_configs_are_valid_and_every_key_is_commented():
    from accelerate.commands.config.config_args import ClusterConfig

    names = sorted(p.stem for p in ACCELERATE_CONFIGS.glob("*.yaml"))
    assert names == ["ddp", "fsdp2", "zero2", "zero3", "zero3_offload"]
    for name in names:
        path = ACCELERATE_CONFIGS / f"{name}.yaml"
        assert ClusterConfig.from_yaml_file(path).mixed_precision == "bf16", name  # accelerate accepts every key
        lines = path.read_text().splitlines()
        keys = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
        uncommented = [lines[i] for i in keys if not lines[i - 1].lstrip().startswith("#")]
        assert not uncommented, f"{name}.yaml: keys without a comment above them: {uncommented}"
        assert set(yaml.safe_load(path.read_text())) >= {"distributed_type", "mixed_precision", "num_processes"}


@needs_deepspeed
def test_strategies_build_the_plugins_of_their_configs():
    zero3 = strategy_plugins("zero3")[0]["deepspeed_plugin"]
    assert zero3.zero_stage == 3 and zero3.zero3_save_16bit_model  # checkpoints hold gathered HF weights
    offload = strategy_plugins("zero3_offload")[0]["deepspeed_plugin"].deepspeed_config["zero_optimization"]
    assert offload["offload_optimizer"]["device"] == offload["offload_param"]["device"] == "cpu"
    assert strategy_plugins("zero2")[0]["deepspeed_plugin"].zero_stage == 2
    fsdp = strategy_plugins("fsdp2")[0]["fsdp_plugin"]
    assert fsdp.fsdp_version == 2 and fsdp.reshard_after_forward is True
    assert strategy_plugins("ddp") == ({}, "bf16")
    assert strategy_plugins(str(ACCELERATE_CONFIGS / "zero2.yaml"))[0]["deepspeed_plugin"].zero_stage == 2


def test_bad_strategies_are_refused_before_anything_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer\.strategy='zero4'"):
        TrainerConfig(strategy="zero4")
    with pytest.raises(ValueError, match=r"no .*zero4\.yaml"):
        strategy_plugins("zero4")
    unknown = tmp_path / "mine.yaml"
    unknown.write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: DEEPSPEED\nmixed_precision: 'no'\nuse_cpu: false\n"
        "debug: false\ndeepspeed_config:\n  zero_stage: 2\n  stage3_x: 1\n"
    )
    with pytest.raises(ValueError, match=r"\['stage3_x'\] are not supported"):
        strategy_plugins(str(unknown))
    with pytest.raises(ValueError, match="ACCELERATE_USE_CPU"):
        build_accelerator(cpu=True, strategy="zero2")


def launch(out: Path, *overrides: str, corrupt_first_video: bool = False) -> None:
    """Train on two CPU processes with this file's ``__main__``; fail with both ranks' output tails."""
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}  # DeepSpeed refuses a forced CPU
    env.update({"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1",
                "VAU_R1_TEST_CORRUPT": "1" if corrupt_first_video else ""})  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               __file__, str(out), *RUN, *overrides]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def check_run(out: Path) -> dict[str, torch.Tensor]:
    """Finite losses, both ranks' full parameters identical, the HF checkpoint equal to them; returns them."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(math.isfinite(m["train/loss"]) and m["train/grad_norm"] > 0 for m in metrics), metrics
    rank0, rank1 = (torch.load(out / f"params_rank{r}.pt") for r in (0, 1))
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    final = out / "checkpoints" / "step_000002"
    state = json.loads((final / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and len(set(state["param_digest_per_rank"])) == 1
    assert (final / "accelerate_state").is_dir() and not (final / "optimizer.pt").exists()
    saved = dict(Qwen2_5_VLForConditionalGeneration.from_pretrained(final / "model").named_parameters())
    assert saved.keys() == rank0.keys()
    assert [k for k in rank0 if not torch.equal(saved[k], rank0[k].to(saved[k].dtype))] == []  # bf16: rounded
    return rank0


def check_resume(tmp_path: Path, overrides: list[str], reference: dict[str, torch.Tensor]) -> None:
    """Resuming from step 1 (model and optimizer from accelerate_state/) ends bitwise where the straight run did."""
    resumed = tmp_path / "resumed"
    launch(resumed, *overrides, f"resume={tmp_path / 'run' / 'checkpoints' / 'step_000001'}")
    params = torch.load(resumed / "params_rank0.pt")
    assert [k for k in reference if not torch.equal(params[k], reference[k])] == []


# slow: a two-process run (gloo); the first DeepSpeed run on a machine also builds its CPU Adam extension (minutes).
@pytest.mark.slow
@needs_deepspeed
def test_zero2_trains_and_saves_a_loadable_model(tmp_path):
    # About 15 s (a torchrun launch; imports dominate). Resuming from a DeepSpeed checkpoint is tested on ZeRO-3.
    launch(tmp_path / "run", "trainer.strategy=zero2", "trainer.gradient_accumulation_steps=2")
    check_run(tmp_path / "run")


# slow: a two-process run (gloo); the first DeepSpeed run on a machine also builds its CPU Adam extension (minutes).
@pytest.mark.slow
@needs_deepspeed
def test_zero3_trains_with_a_rank_that_lost_its_video_saves_and_resumes(tmp_path):
    # About 30 s (two launches). Rank 0's first prompt is undecodable: it runs a stand-in prompt (zero weight) so
    # that both ranks make the same gathers, vision tower included; without it the ranks' collectives mismatch
    # (a crash or a hang: ZeRO-3 gathers weights in every forward).
    overrides = ["trainer.strategy=zero3", "data.video.on_error=skip", "data.shuffle=false",
                 "trainer.per_device_batch_size=1", "grpo.num_iterations=2"]  # fmt: skip
    launch(tmp_path / "run", *overrides, corrupt_first_video=True)
    params = check_run(tmp_path / "run")
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["data/skipped"] for line in metrics] == [1.0, 0.0]
    check_resume(tmp_path, overrides, params)


# slow: a two-process FSDP2 run (gloo), about 25 s.
@pytest.mark.slow
def test_fsdp2_trains_with_accumulation_saves_and_resumes(tmp_path):
    # About 25 s (two launches), two steps of two micro-batches each.
    overrides = ["trainer.strategy=fsdp2", "trainer.gradient_accumulation_steps=2", "trainer.per_device_batch_size=1"]
    launch(tmp_path / "run", *overrides)
    check_resume(tmp_path, overrides, check_run(tmp_path / "run"))


# slow: a two-process FSDP2 run (gloo) and its resume, about 25 s.
@pytest.mark.slow
def test_fsdp2_trains_bf16_weights_as_fp32_masters_and_resumes(tmp_path):
    # About 25 s (two launches). At lr 1e-6 bf16 weights updated in place would barely move; fp32 shards do.
    overrides = ["trainer.strategy=fsdp2", "model.dtype=bfloat16", "trainer.learning_rate=1e-6"]
    launch(tmp_path / "run", *overrides)
    params = check_run(tmp_path / "run")
    assert {p.dtype for p in params.values()} == {torch.float32}
    saved = tmp_path / "run" / "checkpoints" / "step_000002" / "model"
    assert json.loads((saved / "config.json").read_text())["dtype"] == "bfloat16"
    initial = tiny_model("bfloat16")
    assert moved_fraction(initial, params) > 0.5
    check_resume(tmp_path, overrides, params)


# ------------------------------------------------------------------ fp32 master weights, one process


def tiny_model(dtype: str) -> dict[str, torch.Tensor]:
    """The initial weights of ``experiment=debug_cpu``'s tiny model, loaded in ``dtype``."""
    from omegaconf import OmegaConf

    from vau_r1.model.builder import ModelConfig, load_model_and_processor

    config = OmegaConf.to_container(OmegaConf.load(CONFIG_ROOT / "model" / "tiny_random.yaml"))
    model, _ = load_model_and_processor(ModelConfig(**{**config, "dtype": dtype}))
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def moved_fraction(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    """Share of the scalar weights that differ between ``before`` and ``after`` (compared in fp32)."""
    moved = sum(int((before[k].float() != after[k].float()).sum()) for k in before)
    return moved / sum(v.numel() for v in before.values())


def train_one_process(out: Path, *overrides: str) -> Any:
    """A fitted one-process GRPO trainer of ``experiment=debug_cpu`` (short completions, no reference model)."""
    from hydra import compose, initialize_config_dir

    from vau_r1.apps.train import build_trainer

    fast = ["grpo.max_completion_tokens=6", "grpo.num_generations=2", "grpo.beta=0", "trainer.log_completions_every=0"]
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("train", overrides=["experiment=debug_cpu", f"output_dir={out}", *fast, *overrides])
    trainer = build_trainer(cfg)
    trainer.fit()
    return trainer


def weights(trainer: Any) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in trainer.model.named_parameters()}


# slow: two one-process runs of one step, about 8 s.
@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_bf16_weights_move_at_lr_1e6_as_fp32_weights_do(tmp_path):
    # Plain AdamW on bf16 weights changed about 1% of them here (the rest rounds away), fp32 weights 85% (the
    # embedding rows of tokens absent from the batch get no gradient).
    step = ["trainer.learning_rate=1e-6", "trainer.max_steps=1"]
    fp32 = weights(train_one_process(tmp_path / "fp32", *step))
    trainer = train_one_process(tmp_path / "bf16", *step, "model.dtype=bfloat16")
    bf16 = weights(trainer)
    reference = moved_fraction(tiny_model("float32"), fp32)
    assert reference > 0.5 and moved_fraction(tiny_model("bfloat16"), bf16) >= 0.95 * reference
    assert {p.dtype for p in bf16.values()} == {torch.float32}  # the masters

    from transformers import Qwen2_5_VLForConditionalGeneration

    model_dir = tmp_path / "bf16" / "checkpoints" / "step_000001" / "model"  # saved in the configured dtype
    assert json.loads((model_dir / "config.json").read_text())["dtype"] == "bfloat16"
    saved = dict(Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype="auto").named_parameters())
    assert [k for k in bf16 if saved[k].dtype != torch.bfloat16 or not torch.equal(saved[k], bf16[k].bfloat16())] == []


@pytest.mark.usefixtures("one_torch_thread")
def test_bf16_run_resumed_from_its_checkpoint_ends_bitwise_where_the_straight_run_ends(tmp_path):
    # model/ holds the weights rounded to bf16; master_weights.pt carries the fp32 masters across the resume.
    common = ["model.dtype=bfloat16", "trainer.learning_rate=1e-4", "trainer.max_steps=2", "trainer.save_every=1"]
    straight = weights(train_one_process(tmp_path / "straight", *common))
    step1 = tmp_path / "straight" / "checkpoints" / "step_000001"
    assert (step1 / "master_weights.pt").is_file()
    resumed = weights(train_one_process(tmp_path / "resumed", *common, f"resume={step1}"))
    assert [k for k in straight if not torch.equal(straight[k], resumed[k])] == []


def _worker(out: Path, overrides: list[str]) -> None:
    """Rank body under torchrun: train, then save this rank's gathered full parameters."""
    from hydra import compose, initialize_config_dir

    from vau_r1.apps.train import build_trainer

    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("train", overrides=["experiment=debug_cpu", f"output_dir={out}", *overrides])
    trainer = build_trainer(cfg)
    if os.environ.get("VAU_R1_TEST_CORRUPT") and trainer.accelerator.is_main_process:
        (out / "mini_bench" / "videos" / trainer.dataset.samples[0].video).write_bytes(b"not a video")
    trainer.accelerator.wait_for_everyone()
    trainer.fit()
    trainer.engine.metric_logger.close()
    with trainer.engine.sharding.full_parameters(trainer.engine.scorer):
        params = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    torch.save(params, out / f"params_rank{trainer.accelerator.process_index}.pt")
    trainer.accelerator.wait_for_everyone()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[0]))
    from gloo_rank import run_rank

    run_rank(_worker, Path(sys.argv[1]), sys.argv[2:])
