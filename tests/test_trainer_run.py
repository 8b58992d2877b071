"""``vau-r1 train experiment=debug_cpu`` end to end: checkpoints, metrics, completion tables, wandb/TensorBoard."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

from vau_r1.cli import main as cli_main

METRICS = [
    "reward/format/mean", "reward/format/std", "reward/accuracy/mean", "reward/temporal_iou/mean",
    "reward/total/mean", "reward/total/std", "advantage/std", "train/kl", "train/clip_ratio/region",
    "completion/length/mean", "groups/frac_zero_std", "completion/truncated", "train/lr", "time/step_s",
    "train/loss", "train/grad_norm", "data/prompts", "data/skipped",
]  # fmt: skip


@pytest.fixture(autouse=True)
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def train(tmp_path, *overrides: str) -> None:
    args = ["train", "experiment=debug_cpu", f"output_dir={tmp_path}", "grpo.max_completion_tokens=12", *overrides]
    assert cli_main(args) == 0


# slow: a whole debug_cpu run through the CLI, about 7 s (the wheel check in .ci/run does it too).
@pytest.mark.slow
def test_debug_cpu_run_writes_a_loadable_checkpoint_and_logs_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    train(tmp_path, "logger=wandb")
    final = tmp_path / "checkpoints" / "step_000004"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_000002", "step_000004"]
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(final / "model")
    assert model.config.model_type == "qwen2_5_vl"
    assert AutoTokenizer.from_pretrained(final / "model").pad_token_id is not None

    manifest = json.loads((final / "manifest.json").read_text())
    assert manifest["video"]["fps"] == 1.5 and manifest["config"]["run_name"] == "debug_cpu"
    assert manifest["annotations"]["sha256"] and manifest["packages"]["transformers"]
    assert (final / "config.yaml").read_text().startswith("model:")

    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4]
    missing = [key for key in METRICS if key not in lines[-1]]
    assert not missing, f"metrics not logged: {missing}"
    table = [json.loads(line) for line in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert {row["step"] for row in table} == {2, 4} and {"completion", "answer", "total", "format"} <= set(table[0])

    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run directory"
    assert (tmp_path / ".hydra" / "config.yaml").is_file()  # hydra.run.dir = output_dir, no timestamp
    assert (tmp_path / "train_rank0.log").is_file()


def test_tensorboard_logger_writes_event_files_and_resume_continues(tmp_path):
    train(tmp_path, "logger=tensorboard", "trainer.max_steps=2")
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    # Same command with a larger budget and resume=auto: continues from step 2 instead of starting over.
    train(tmp_path, "logger=tensorboard", "trainer.max_steps=3", "resume=auto")
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CPU-only machine)")
def test_debug_recipe_trains_on_gpu_in_bf16(tmp_path, monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    train(tmp_path, "model.dtype=bfloat16", "trainer.mixed_precision=bf16", "trainer.torch_threads=null")
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 4 and torch.isfinite(torch.tensor(last["train/loss"]))
    manifest = json.loads((tmp_path / "checkpoints" / "step_000004" / "manifest.json").read_text())
    assert manifest["config"]["model"]["dtype"] == "bfloat16"
