"""GRPO trainer on the tiny model and the synthetic mini split (``experiment=debug_cpu``), one process, CPU.

What is trained (and what is not), reward alignment with batch size > 1, the reference model,
μ > 1, the loss variants, skipped videos, and exact resume.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from vau_r1.apps.train import build_trainer
from vau_r1.resources import CONFIG_ROOT
from vau_r1.rewards import WeightedReward, build_rewards
from vau_r1.tasks.dataset import collate_examples

CONFIGS = CONFIG_ROOT
# Short completions and small groups keep every test at a few seconds.
FAST = ["grpo.max_completion_tokens=6", "grpo.num_generations=2", "trainer.log_completions_every=0"]


# The tiny model runs fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def compose_cfg(output_dir: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose("train", overrides=["experiment=debug_cpu", f"output_dir={output_dir}", *FAST, *overrides])


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


def test_one_step_trains_every_parameter_including_the_vision_tower(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "trainer.max_steps=1", "trainer.save_final=false"))
    before = snapshot(trainer.model)
    trainer.fit()
    moved = changed(before, trainer.model)
    assert {n for n in before if ".visual." in n} <= moved  # the paper trains the vision tower too
    assert {n for n in before if ".language_model." in n} <= moved
    assert trainer.engine.last_metrics["train/grad_norm"] > 0


def test_frozen_vision_tower_stays_fixed(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "model.freeze_vision=true", "trainer.max_steps=1"))
    before = snapshot(trainer.model)
    trainer.fit()
    moved = changed(before, trainer.model)
    vision = {n for n in before if ".visual." in n}
    assert vision and not (moved & vision)
    assert {n for n in before if ".language_model." in n} <= moved


def test_lora_trains_adapters_only_and_saves_them_as_adapters(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "model.lora={r: 4, alpha: 8, dropout: 0.0}", "trainer.max_steps=1"))
    assert trainer.ref_model is None  # beta > 0 with LoRA: the reference is the policy without adapters
    before = snapshot(trainer.model)
    trainer.fit()
    moved = changed(before, trainer.model)
    assert moved and all("lora_" in n for n in moved)
    saved = tmp_path / "checkpoints" / "step_000001" / "model"
    assert (saved / "adapter_config.json").is_file() and (saved / "adapter_model.safetensors").is_file()
    assert not (saved / "model.safetensors").exists()


class RecordingReward:
    """Remembers what each call saw; scores by completion length so advantages are non-zero."""

    __name__ = "recording"

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, completions: list[str], **columns) -> list[float]:
        self.calls.append({"completions": list(completions), **{k: list(v) for k, v in columns.items()}})
        return [float(len(c)) for c in completions]


def test_each_completion_is_scored_against_its_own_target(tmp_path):
    recorder = RecordingReward()
    cfg = compose_cfg(tmp_path, "trainer.per_device_batch_size=3", "grpo.num_generations=3", "trainer.max_steps=1")
    trainer = build_trainer(cfg, rewards=[WeightedReward("recording", recorder, 1.0)])
    trainer.fit()
    (call,) = recorder.calls
    (exp,) = trainer.last_experiences
    G = 3
    assert len(exp.examples) == 3 and len(call["completions"]) == 9
    assert call["completions"] == exp.texts  # rows in rollout order
    for row in range(9):
        example = exp.examples[row // G]  # prompt-major: completion i of prompt b is row b*G + i
        assert call["answer"][row] == example.columns["answer"]
        assert call["span"][row] == example.columns["span"]
    assert len({tuple(map(str, call["span"][b * G : (b + 1) * G])) for b in range(3)}) > 1  # distinct targets
    assert torch.equal(exp.total, torch.tensor([float(len(t)) for t in exp.texts]))


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_reference_model_only_with_a_kl_term(tmp_path, beta):
    trainer = build_trainer(compose_cfg(tmp_path, f"grpo.beta={beta}", "trainer.max_steps=1"))
    assert (trainer.ref_model is None) == (beta == 0)
    trainer.fit()
    (exp,) = trainer.last_experiences
    assert (exp.ref_logp is None) == (beta == 0)
    assert ("train/kl" in trainer.engine.last_metrics) == (beta > 0)


def test_num_iterations_reuses_each_rollout(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "grpo.num_iterations=2", "trainer.max_steps=2"))
    trainer.fit()
    (exp,) = trainer.last_experiences
    assert exp.old_logp is not None and exp.old_logp.shape == exp.rollout.completion_ids.shape
    assert trainer.engine.scheduler.last_epoch == 4  # two updates per rollout, two rollouts
    state = next(iter(trainer.engine.optimizer.state_dict()["state"].values()))
    assert float(state["step"]) == 4
    assert "train/clip_ratio/region" in trainer.engine.last_metrics


@pytest.mark.parametrize(
    "overrides",
    [
        ["grpo.loss_type=dapo", "grpo.epsilon_high=0.28"],
        ["grpo.loss_type=dr_grpo", "grpo.scale_rewards=none"],
        ["grpo.loss_type=bnpo", "grpo.scale_rewards=batch", "trainer.gradient_accumulation_steps=2"],
    ],
)
def test_loss_variants_train(tmp_path, overrides):
    trainer = build_trainer(compose_cfg(tmp_path, "trainer.max_steps=1", *overrides))
    before = snapshot(trainer.model)
    trainer.fit()
    assert torch.isfinite(torch.tensor(trainer.engine.last_metrics["train/loss"]))
    assert changed(before, trainer.model)


def test_truncated_completions_can_be_masked_out(tmp_path):
    # 6 tokens are far too few for the tiny model to reach EOS: every completion is truncated, so nothing trains.
    trainer = build_trainer(compose_cfg(tmp_path, "grpo.mask_truncated_completions=true", "trainer.max_steps=1"))
    before = snapshot(trainer.model)
    trainer.fit()
    assert trainer.engine.last_metrics["completion/truncated"] == 1.0
    assert trainer.engine.last_metrics["train/grad_norm"] == 0.0
    assert not changed(before, trainer.model)


def test_undecodable_video_is_dropped_and_counted(tmp_path):
    # batch 1: the first micro-batch (the broken video) is empty; the step still runs a zero-weight pass.
    cfg = compose_cfg(tmp_path, "trainer.per_device_batch_size=1", "trainer.max_steps=8", "data.video.on_error=skip",
                      "data.shuffle=false", "trainer.save_final=false")  # fmt: skip
    trainer = build_trainer(cfg)
    (tmp_path / "mini_bench" / "videos" / trainer.dataset.samples[0].video).write_bytes(b"not a video")
    before = snapshot(trainer.model)
    trainer.step([collate_examples([trainer.dataset[0]])])
    assert not changed(before, trainer.model)  # nothing to learn from: the weights stay put
    trainer.fit()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    skipped = [float(line.split('"data/skipped": ')[1].split(",")[0]) for line in lines]
    assert skipped == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert trainer.engine.step_count == 8


def test_stopped_and_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path):
    common = ["trainer.max_steps=4", "trainer.save_every=2", "trainer.per_device_batch_size=2"]
    straight = build_trainer(compose_cfg(tmp_path / "straight", *common))
    straight.fit()
    first = build_trainer(compose_cfg(tmp_path / "resumed", *common))
    first.fit(until_step=2)
    assert [p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()] == ["step_000002"]
    second = build_trainer(compose_cfg(tmp_path / "resumed", *common, "resume=auto"))
    second.fit()
    assert second.engine.step_count == 4
    reference = dict(straight.model.named_parameters())
    for name, param in second.model.named_parameters():
        torch.testing.assert_close(param, reference[name], rtol=0, atol=0, msg=name)  # bitwise
    key = "reward/total/mean"
    assert straight.engine.last_metrics[key] == pytest.approx(second.engine.last_metrics[key])


# slow: 10 s of GRPO steps on 2 cores (a learning check, run by CI's slow pass).
@pytest.mark.slow
def test_grpo_raises_a_simple_reward(tmp_path):
    # End-to-end sign check of advantages, loss and optimizer: the share of spaces must go up.
    def spaces(completions: list[str], **columns) -> list[float]:
        return [text.count(" ") / max(len(text), 1) for text in completions]

    cfg = compose_cfg(
        tmp_path, "trainer.max_steps=30", "trainer.learning_rate=3e-2", "grpo.beta=0", "grpo.num_generations=4",
        "grpo.max_completion_tokens=16", "trainer.save_final=false",
    )  # fmt: skip
    trainer = build_trainer(cfg, rewards=[WeightedReward("spaces", spaces, 1.0)])
    trainer.fit()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    reward = [float(line.split('"reward/spaces/mean": ')[1].split(",")[0]) for line in lines]
    assert sum(reward[-10:]) > 1.5 * sum(reward[:10]), reward


def test_default_rewards_come_from_the_task(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "rewards.funcs=null"))
    assert [r.name for r in trainer.rewards] == [r.name for r in build_rewards(["format", "accuracy", "temporal_iou"])]
