"""Checkpoints: HF-format model, exact resume state, manifest, pruning, resume resolution."""

from __future__ import annotations

import hashlib
import json
import random
from importlib import metadata

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, get_scheduler

from vau_r1.data.video import VideoConfig
from vau_r1.engine import checkpoint
from vau_r1.engine.distributed import build_accelerator
from vau_r1.model.builder import ModelConfig, load_model_and_processor


@pytest.fixture
def setup():
    model, tokenizer = load_model_and_processor(ModelConfig(name_or_path="tiny-random"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=10)
    # One real update, so the optimizer has moments and the scheduler has moved.
    loss = sum(p.float().pow(2).sum() for p in model.parameters())
    loss.backward()
    optimizer.step()
    scheduler.step()
    return build_accelerator(cpu=True), model, tokenizer, optimizer, scheduler


def save(tmp_path, setup, step, keep_last=None, manifest=None):
    accelerator, model, tokenizer, optimizer, scheduler = setup
    return checkpoint.save_checkpoint(
        tmp_path, step, accelerator=accelerator, model=model, tokenizer=tokenizer, optimizer=optimizer,
        scheduler=scheduler, trainer_state={"step": step, "consumed_batches": 2 * step},
        manifest=manifest or {"config": {}}, config_yaml="seed: 1\n", keep_last=keep_last,
    )  # fmt: skip


def test_checkpoint_layout_and_from_pretrained(tmp_path, setup):
    _, model, *_ = setup
    path = save(tmp_path, setup, 3)
    assert path == tmp_path / "checkpoints" / "step_000003"
    names = {p.name for p in path.iterdir()}
    assert names == {"model", "optimizer.pt", "scheduler.pt", "rng_rank0.pt", "trainer_state.json", "manifest.json",
                     "config.yaml"}  # fmt: skip
    loaded = type(model).from_pretrained(path / "model")
    reference = dict(model.named_parameters())
    for name, param in loaded.named_parameters():
        assert torch.equal(param, reference[name]), name
    tokenizer = AutoTokenizer.from_pretrained(path / "model")
    assert tokenizer.convert_tokens_to_ids("<|video_pad|>") == model.config.video_token_id
    assert json.loads((path / "trainer_state.json").read_text()) == {"step": 3, "consumed_batches": 6, "world_size": 1}


def test_load_restores_weights_optimizer_schedule_and_rng(tmp_path, setup):
    accelerator, model, _, optimizer, scheduler = setup
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    path = save(tmp_path, setup, 1)
    expected_draws = (random.random(), np.random.rand(), torch.rand(3))

    fresh, _ = load_model_and_processor(ModelConfig(name_or_path="tiny-random", tiny={"seed": 1}))
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
    fresh_sched = get_scheduler("linear", fresh_opt, num_warmup_steps=0, num_training_steps=10)
    state = checkpoint.load_checkpoint(path, accelerator=accelerator, model=fresh, optimizer=fresh_opt,
                                       scheduler=fresh_sched)  # fmt: skip
    assert state["consumed_batches"] == 2
    for (name, a), b in zip(model.named_parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(optimizer.state.values(), fresh_opt.state.values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    assert fresh_sched.get_last_lr() == scheduler.get_last_lr()
    draws = (random.random(), np.random.rand(), torch.rand(3))
    assert draws[:2] == expected_draws[:2] and torch.equal(draws[2], expected_draws[2])


def test_keep_last_prunes_the_oldest_and_leaves_no_temporary_dirs(tmp_path, setup):
    for step in (1, 2, 3, 4):
        save(tmp_path, setup, step, keep_last=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_000003", "step_000004"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_000003", "step_000004"]


def test_resume_resolution(tmp_path, setup):
    assert checkpoint.resolve_resume(None, tmp_path) is None
    assert checkpoint.resolve_resume("auto", tmp_path) is None  # nothing saved yet: start fresh
    save(tmp_path, setup, 1)
    save(tmp_path, setup, 10)
    assert checkpoint.resolve_resume("auto", tmp_path).name == "step_000010"
    explicit = tmp_path / "checkpoints" / "step_000001"
    assert checkpoint.resolve_resume(str(explicit), tmp_path) == explicit
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        checkpoint.resolve_resume(str(tmp_path), tmp_path)


def test_resume_with_another_process_count_is_refused(tmp_path, setup):
    accelerator, model, _, optimizer, scheduler = setup
    path = save(tmp_path, setup, 1)
    state = json.loads((path / "trainer_state.json").read_text())
    (path / "trainer_state.json").write_text(json.dumps({**state, "world_size": 8}))
    with pytest.raises(ValueError, match="written by 8 process"):
        checkpoint.load_checkpoint(
            path, accelerator=accelerator, model=model, optimizer=optimizer, scheduler=scheduler
        )


def test_manifest_records_config_versions_video_and_annotation_hash(tmp_path, setup):
    csv = tmp_path / "train.csv"
    csv.write_text("Video Name\nx.mp4\n")
    video = VideoConfig.from_preset("paper_train").to_dict()
    manifest = checkpoint.build_manifest({"seed": 3}, video, csv)
    assert manifest["config"] == {"seed": 3}
    assert manifest["video"]["total_pixels"] == 3584 * 28 * 28
    assert manifest["annotations"]["sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert manifest["packages"]["torch"] == metadata.version("torch")
    assert {"transformers", "trl", "peft", "accelerate", "decord", "vau-r1"} <= set(manifest["packages"])
    path = save(tmp_path, setup, 1, manifest=manifest)
    assert json.loads((path / "manifest.json").read_text())["annotations"]["sha256"] is not None


def test_lora_checkpoint_holds_the_adapter_and_restores_it(tmp_path):
    lora = {"r": 4, "alpha": 8, "dropout": 0.0}
    model, tokenizer = load_model_and_processor(ModelConfig(name_or_path="tiny-random", lora=lora))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)  # LoRA starts with B = 0; make the adapter non-trivial
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    scheduler = get_scheduler("constant", optimizer)
    setup = (build_accelerator(cpu=True), model, tokenizer, optimizer, scheduler)
    path = save(tmp_path, setup, 1)
    assert (path / "model" / "adapter_model.safetensors").is_file()
    fresh, _ = load_model_and_processor(ModelConfig(name_or_path="tiny-random", lora=lora))
    fresh_opt = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad], lr=1e-2)
    checkpoint.load_checkpoint(path, accelerator=setup[0], model=fresh, optimizer=fresh_opt,
                               scheduler=get_scheduler("constant", fresh_opt))  # fmt: skip
    adapters = {n: p for n, p in model.named_parameters() if "lora_" in n}
    restored = {n: p for n, p in fresh.named_parameters() if "lora_" in n}
    assert adapters.keys() == restored.keys() and adapters
    assert all(torch.equal(adapters[n], restored[n]) for n in adapters)
