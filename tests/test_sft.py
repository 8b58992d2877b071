"""SFT on the tiny model and the synthetic mini split (``experiment=debug_cpu_sft``), one process, CPU.

Sequences and labels (only the answer and its ``<|im_end|>`` carry loss, no extra assistant turn), think and
description targets, learning on a fixed batch, trained/frozen/LoRA parameters, exact resume, an SFT checkpoint
starting a GRPO run, the CLI, and the paper experiment files.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

from vau_r1.apps.train import build_trainer
from vau_r1.cli import main as cli_main
from vau_r1.data.schema import VideoSample
from vau_r1.model.tokenizer import EOS_TOKEN, VIDEO_PAD_TOKEN
from vau_r1.recipes.config import ConfigError, RunConfig
from vau_r1.resources import CONFIG_ROOT
from vau_r1.sft.batching import IGNORE_INDEX, SFTTargets, build_sft_batch
from vau_r1.tasks.dataset import collate_examples

CONFIGS = CONFIG_ROOT
SFT_PAPER = sorted(p.stem for p in (CONFIGS / "experiment").glob("*_sft_*.yaml"))
DATA_PATHS = ["data.annotations=/data/vau_bench/train.csv", "data.video_root=/data/vau_bench/videos"]


# The tiny model runs fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def compose_cfg(output_dir: Path, *overrides: str, experiment: str = "debug_cpu_sft"):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose("train", overrides=[f"experiment={experiment}", f"output_dir={output_dir}", *overrides])


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


@pytest.fixture(scope="module")
def sft(tmp_path_factory):
    """A built (untrained) SFT trainer on QA + TAG, and a fixed batch of four examples: qa, tag, qa, tag."""
    out = tmp_path_factory.mktemp("sft")
    trainer = build_trainer(compose_cfg(out, "data.shuffle=false", "trainer.save_final=false"))
    return trainer, collate_examples([trainer.dataset[i] for i in range(4)])


# ---------------------------------------------------------------- sequences and labels


def test_only_the_answer_and_its_end_token_carry_loss(sft):
    trainer, micro = sft
    tok = trainer.tokenizer
    batch = trainer.encode(micro.examples)
    seq = batch.sequences()
    ids, labels, mask = seq["input_ids"], seq["labels"], seq["attention_mask"]
    assert [ex.columns["task"] for ex in micro.examples] == ["qa", "tag", "qa", "tag"]
    assert len({int(m.sum()) for m in mask}) > 1  # rows of different lengths: both paddings are exercised
    start, assistant = tok.convert_tokens_to_ids("<|im_start|>"), tok("assistant\n")["input_ids"]
    for row, example in enumerate(micro.examples):
        target = trainer.targets.text(example.sample, example.columns["task"])
        labelled = labels[row] != IGNORE_INDEX
        # The labelled span decodes to exactly the target text and its closing <|im_end|>.
        assert tok.decode(labels[row][labelled]) == target + EOS_TOKEN
        assert torch.equal(labels[row][labelled], ids[row][labelled])
        # Everything before it is -100: padding, system text, template, user text, video pads.
        first = int(labelled.nonzero()[0])
        assert (labels[row][:first] == IGNORE_INDEX).all() and labelled[first:].sum() == labelled.sum()
        assert (labels[row][ids[row] == tok.convert_tokens_to_ids(VIDEO_PAD_TOKEN)] == IGNORE_INDEX).all()
        assert (labels[row][mask[row] == 0] == IGNORE_INDEX).all()
        # The labelled span follows "<|im_start|>assistant\n" and the real tokens end with <|im_end|>: no extra turn.
        assert ids[row][first - len(assistant) - 1 : first].tolist() == [start, *assistant]
        real = ids[row][mask[row].bool()]
        assert real[-1] == tok.convert_tokens_to_ids(EOS_TOKEN) and (real == start).sum() == 3  # system, user, asst.
        assert "You are a helpful assistant." in tok.decode(real[:first])


def test_sequence_is_the_chat_template_of_prompt_and_answer(sft):
    # The official collate appended "<|im_start|>assistant\n" after the answer (add_generation_prompt=True).
    trainer, micro = sft
    tok, example = trainer.tokenizer, micro.examples[1]
    seq = trainer.encode([example]).sequences()
    target = trainer.targets.text(example.sample, "tag")
    chat = [*example.messages, {"role": "assistant", "content": [{"type": "text", "text": target}]}]
    expected = tok.apply_chat_template(chat, tokenize=False)
    decoded = tok.decode(seq["input_ids"][0][seq["attention_mask"][0].bool()])
    n = example.video.num_video_tokens
    assert decoded.replace(VIDEO_PAD_TOKEN * n, VIDEO_PAD_TOKEN) + "\n" == expected
    assert not decoded.endswith("<|im_start|>assistant\n")


def test_trainer_loss_equals_the_models_cross_entropy_on_the_labels(sft):
    trainer, micro = sft
    batch = trainer.encode(micro.examples)
    with torch.no_grad():
        logp = trainer.engine.scorer(batch.prompt, batch.target_ids, batch.loss_mask)
        ours = -(logp * batch.loss_mask).sum() / batch.loss_mask.sum()
        reference = trainer.model(**batch.sequences(), use_cache=False).loss
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


SAMPLE = VideoSample(
    video="msad_x.mp4", source="msad", row=1, question="What happens?", options=("a", "b", "c", "d"), answer="B",
    anomaly_class="Fire", is_normal=False, span_s=(1.0, 2.5), description="A fire starts.", reasoning="Smoke rises.",
)  # fmt: skip


def test_think_targets_start_with_the_reasoning():
    think, plain = SFTTargets("default"), SFTTargets("default_no_think")
    assert think.text(SAMPLE, "qa") == "<think>Smoke rises.</think><answer>B</answer>"
    assert think.text(SAMPLE, "tag") == "<think>Smoke rises.</think><answer>Anomaly</answer><glue>[1.0, 2.5]</glue>"
    assert plain.text(SAMPLE, "qa") == "<answer>B</answer>" and plain.text(SAMPLE, "cls") == "<answer>Fire</answer>"
    assert SFTTargets("default", think=False).text(SAMPLE, "qa") == "<answer>B</answer>"  # forced off
    # The official grammar: glue with a trailing period; its think variant adds the reasoning and <answer>.
    assert SFTTargets("paper_sft").text(SAMPLE, "tag") == "<glue>[1.0, 2.5]</glue>."
    assert SFTTargets("paper_sft_think").text(SAMPLE, "tag") == (
        "<think>Smoke rises.</think><answer>Anomaly</answer><glue>[1.0, 2.5]</glue>."
    )
    assert SFTTargets("paper_sft").text(SAMPLE, "reasoning") == "A fire starts."  # description: the text itself


def test_think_targets_drop_rows_without_reasoning():
    bare = VideoSample(video="msad_y.mp4", source="msad", row=2, answer="A", reasoning=None)
    pairs = [(SAMPLE, "qa"), (bare, "qa")]
    assert SFTTargets("default").filter(pairs) == [(SAMPLE, "qa")]
    assert SFTTargets("default_no_think").filter(pairs) == pairs
    with pytest.raises(ValueError, match=r"sft\.think=false"):
        SFTTargets("default").filter([(bare, "qa")])


def test_max_seq_tokens_cuts_the_target_tail_never_the_prompt(sft):
    trainer, micro = sft
    tok, example = trainer.tokenizer, micro.examples[0]
    args = (tok, [example.messages], [example.video], ["<answer>B</answer>"])
    full = build_sft_batch(*args)
    prompt_len = full.prompt["input_ids"].shape[1]
    cut = build_sft_batch(*args, max_seq_tokens=prompt_len + 2)
    assert cut.num_tokens == 2 and bool(cut.truncated[0]) and not bool(full.truncated[0])
    assert torch.equal(cut.target_ids[0], full.target_ids[0, :2])
    with pytest.raises(ValueError, match=r"sft\.max_seq_tokens"):
        build_sft_batch(*args, max_seq_tokens=prompt_len)


# ---------------------------------------------------------------- training


def test_loss_falls_markedly_on_a_fixed_batch(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "trainer.max_steps=30", "trainer.lr_scheduler=constant"))
    micro = collate_examples([trainer.dataset[i] for i in range(4)])
    before = snapshot(trainer.model)
    losses = [trainer.step([micro])["train/loss"] for _ in range(30)]
    assert losses[-1] < 0.3 * losses[0], losses
    assert changed(before, trainer.model) == set(before)  # full fine-tuning: every weight moves, vision included


def test_frozen_vision_tower_stays_fixed(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "model.freeze_vision=true", "trainer.max_steps=2"))
    before = snapshot(trainer.model)
    trainer.fit()
    moved, vision = changed(before, trainer.model), {n for n in before if ".visual." in n}
    assert vision and not (moved & vision) and moved == set(before) - vision


def test_lora_trains_and_saves_adapters_only(tmp_path):
    trainer = build_trainer(compose_cfg(tmp_path, "model.lora={r: 4, alpha: 8, dropout: 0.0}", "trainer.max_steps=2",
                                        "trainer.learning_rate=1e-2"))  # fmt: skip
    before = snapshot(trainer.model)
    trainer.fit()
    moved = changed(before, trainer.model)
    assert moved and all("lora_" in n for n in moved)
    saved = tmp_path / "checkpoints" / "step_000002" / "model"
    assert (saved / "adapter_config.json").is_file() and (saved / "adapter_model.safetensors").is_file()
    assert not (saved / "model.safetensors").exists()


def test_undecodable_video_is_dropped_and_counted(tmp_path):
    # Batch 1: the broken video's micro-batch is empty; the step still runs a zero-weight pass and changes nothing.
    cfg = compose_cfg(tmp_path, "trainer.per_device_batch_size=1", "trainer.max_steps=3", "data.video.on_error=skip",
                      "data.shuffle=false", "trainer.save_final=false")  # fmt: skip
    trainer = build_trainer(cfg)
    (tmp_path / "mini_bench" / "videos" / trainer.dataset.samples[0].video).write_bytes(b"not a video")
    before = snapshot(trainer.model)
    metrics = trainer.step([collate_examples([trainer.dataset[0]])])
    assert not changed(before, trainer.model) and metrics["data/skipped"] == 1 and "train/loss" not in metrics
    metrics = trainer.step([collate_examples([trainer.dataset[2]])])
    assert changed(before, trainer.model) and metrics["data/skipped"] == 0 and metrics["data/prompts"] == 1


def test_stopped_and_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path):
    common = ["trainer.max_steps=5", "trainer.save_every=2", "trainer.per_device_batch_size=3"]
    straight = build_trainer(compose_cfg(tmp_path / "straight", *common))
    straight.fit()
    first = build_trainer(compose_cfg(tmp_path / "resumed", *common))
    first.fit(until_step=2)
    second = build_trainer(compose_cfg(tmp_path / "resumed", *common, "resume=auto"))
    second.fit()
    assert second.engine.step_count == 5 and second.engine.consumed_batches == straight.engine.consumed_batches
    reference = dict(straight.model.named_parameters())
    for name, param in second.model.named_parameters():
        torch.testing.assert_close(param, reference[name], rtol=0, atol=0, msg=name)  # bitwise
    assert straight.engine.last_metrics["train/loss"] == second.engine.last_metrics["train/loss"]
    state = json.loads((tmp_path / "resumed" / "checkpoints" / "step_000005" / "trainer_state.json").read_text())
    assert state["algorithm"] == "sft" and state["step"] == 5


def test_sft_checkpoint_initialises_a_grpo_run(tmp_path):
    sft_trainer = build_trainer(compose_cfg(tmp_path / "sft", "trainer.max_steps=2"))
    sft_trainer.fit()
    model_dir = tmp_path / "sft" / "checkpoints" / "step_000002" / "model"
    grpo_cfg = compose_cfg(
        tmp_path / "grpo", f"model.name_or_path={model_dir}", "model.tiny=null", "trainer.max_steps=1",
        "grpo.max_completion_tokens=6", "grpo.num_generations=2", experiment="debug_cpu",
    )  # fmt: skip
    grpo = build_trainer(grpo_cfg)
    assert grpo.cfg.algorithm == "grpo"
    trained = dict(sft_trainer.model.named_parameters())
    for name, param in grpo.model.named_parameters():
        torch.testing.assert_close(param, trained[name], rtol=0, atol=0, msg=name)  # the SFT weights, bitwise
    a, b = sft_trainer.tokenizer, grpo.tokenizer
    assert a.get_vocab() == b.get_vocab() and a.chat_template == b.chat_template
    assert (a.pad_token_id, a.eos_token_id) == (b.pad_token_id, b.eos_token_id)
    text = a.apply_chat_template(sft_trainer.dataset[0].messages, tokenize=False, add_generation_prompt=True)
    assert a(text)["input_ids"] == b(text)["input_ids"]
    grpo.fit()
    assert torch.isfinite(torch.tensor(grpo.engine.last_metrics["train/loss"]))


def test_cli_trains_and_writes_a_loadable_checkpoint(tmp_path):
    assert cli_main(["train", "algorithm=sft", "experiment=debug_cpu_sft", f"output_dir={tmp_path}",
                     "trainer.max_steps=3", "trainer.save_every=2"]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_000002", "step_000003"]
    final = tmp_path / "checkpoints" / "step_000003"
    assert Qwen2_5_VLForConditionalGeneration.from_pretrained(final / "model").config.model_type == "qwen2_5_vl"
    assert AutoTokenizer.from_pretrained(final / "model").chat_template
    assert {"optimizer.pt", "scheduler.pt", "rng_rank0.pt", "manifest.json", "config.yaml"} <= {
        p.name for p in final.iterdir()
    }
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    assert {"train/loss", "train/grad_norm", "train/lr", "data/target_tokens", "time/step_s"} <= set(lines[-1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CPU-only machine)")
def test_sft_trains_on_gpu_in_bf16(tmp_path, monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    bf16 = ["model.dtype=bfloat16", "trainer.mixed_precision=bf16", "trainer.torch_threads=null"]
    assert cli_main(["train", "experiment=debug_cpu_sft", f"output_dir={tmp_path}", "trainer.max_steps=2", *bf16]) == 0
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 2 and math.isfinite(last["train/loss"])


# ---------------------------------------------------------------- configs


def validate(cfg) -> RunConfig:
    return RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algorithm=ppo"], "algorithm='ppo'; expected one of"),
        (["sft.target_preset=nope"], "sft.target_preset='nope'"),
        # Every trained task needs the prompt preset; reasoning has no GRPO prompt.
        (["data.tasks=[qa,reasoning]", "data.prompt_preset=paper_grpo"], "data.prompt_preset='paper_grpo'"),
        (["sft.max_seq_tokens=1"], "sft.max_seq_tokens=1"),
        (["+sft.packing=true"], "unknown key(s) ['sft.packing']"),
    ],
)
def test_invalid_sft_settings_name_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(compose_cfg(tmp_path, *overrides))


def test_sft_trains_the_description_task_grpo_does_not(tmp_path):
    assert validate(compose_cfg(tmp_path, "data.tasks=[reasoning]")).data.task_list == ("reasoning",)
    with pytest.raises(ConfigError, match="GRPO trains one of"):
        validate(compose_cfg(tmp_path, "algorithm=grpo", "data.tasks=[qa,reasoning]"))


@pytest.mark.parametrize("name", SFT_PAPER)
def test_paper_sft_experiments(name):
    # docs/paper.md §7: lr 2e-5, 1 epoch, batch 1, bf16, full FT except CLS (LoRA r16/a16/0.05), logging 5, save 200.
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        run = validate(compose("train", overrides=[f"experiment={name}", *DATA_PATHS]))
    task = name.split("_")[0]
    t = run.trainer
    assert run.algorithm == "sft" and run.run_name == name and run.data.prompt_preset == "paper_sft"
    if task == "cotrain":  # Table C's co-training control: the three tasks of one model (docs/paper.md §9)
        assert run.data.task is None and run.data.task_list == ("qa", "tag", "cls")
    else:
        assert run.data.task == {"description": "reasoning"}.get(task, task)
    assert (t.learning_rate, t.num_epochs, t.per_device_batch_size, t.gradient_accumulation_steps) == (2e-5, 1, 1, 1)
    assert (t.log_every, t.save_every, t.max_grad_norm, t.lr_scheduler, t.warmup_steps) == (5, 200, 1.0, "linear", 0)
    assert run.model["dtype"] == "bfloat16" and run.model["freeze_vision"] is False
    lora = run.model["lora"]
    if task == "cls":
        assert (lora["r"], lora["alpha"], lora["dropout"]) == (16, 16, 0.05)
        assert lora["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    else:
        assert lora is None
    assert run.data.sources == (("msad", "ecva") if task == "tag" else None)
