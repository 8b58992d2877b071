"""The shared-prompt policy pass (``grpo.share_prompt``): each prompt runs once per group, and nothing changes.

The packed pass (:mod:`vau_r1.policy.shared_prefix`) must give the unshared pass's log-probs (every position,
padding included) and the same gradients for every parameter, vision tower included, on both families, with
left padding, padding after EOS, a temperature, LoRA, gradient checkpointing, full or chunked logits, and
sdpa or eager attention; models it is not checked for fall back to the unshared pass with a logged line.
"""

from __future__ import annotations

import logging

import pytest
import torch

from vau_r1.data.video import VideoClip
from vau_r1.data.vision import video_inputs
from vau_r1.model.builder import apply_lora
from vau_r1.model.families import get_family
from vau_r1.model.processing import encode_prompts
from vau_r1.model.tiny import TinyConfig, build_tiny_model
from vau_r1.policy import scorer as scorer_module
from vau_r1.policy.scorer import CompletionScorer
from vau_r1.policy.shared_prefix import (
    gather_index,
    packed_attention_mask,
    packed_key_mask,
    packed_positions,
    packed_tokens,
    segment_ids,
)  # fmt: skip

pytestmark = pytest.mark.usefixtures("one_torch_thread")
G, L, TEMPERATURE = 3, 5, 0.7
LOGP_TOL, GRAD_RTOL = 1e-5, 1e-5

# ------------------------------------------------------------------ pure helpers, by hand


def test_packed_layout_by_hand():
    # B=1, P=3 (one left pad), G=2, L=2; completion 1 ends at its first token (padding after EOS).
    prompt_mask, completion_mask = torch.tensor([[0, 1, 1]]), torch.tensor([[1, 1], [1, 0]])
    assert packed_tokens(torch.tensor([[7, 8, 9]]), torch.tensor([[1, 2], [3, 4]])).tolist() == [[7, 8, 9, 1, 2, 3, 4]]
    keys = packed_key_mask(prompt_mask, completion_mask)
    assert keys.tolist() == [[False, True, True, True, True, True, False]]
    assert segment_ids(3, 2, 2).tolist() == [0, 0, 0, 1, 1, 2, 2]
    want = [
        [1, 0, 0, 0, 0, 0, 0],  # left pad: sees only itself (no empty softmax row)
        [0, 1, 0, 0, 0, 0, 0],
        [0, 1, 1, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0, 0],  # completion 0, token 0: the real prompt and itself
        [0, 1, 1, 1, 1, 0, 0],
        [0, 1, 1, 0, 0, 1, 0],  # completion 1, token 0: never completion 0
        [0, 1, 1, 0, 0, 1, 0],  # completion 1's padding: as in the unshared pass, not itself
    ]
    assert packed_attention_mask(keys, 3, 2)[0, 0].int().tolist() == want
    positions = torch.tensor([[[0, 0, 1]], [[0, 0, 1]], [[0, 0, 1]]])  # [3, B, P]; last prompt position 1
    assert packed_positions(positions, completion_mask)[:, 0].tolist() == [[0, 0, 1, 2, 3, 2, 0]] * 3
    # Token 0 of each completion is predicted at the last prompt position (2), token t by its own t-1.
    assert gather_index(1, 3, 2, 2).tolist() == [[2, 3], [2, 5]]
    assert gather_index(2, 1, 1, 2).tolist() == [[0, 1], [3, 4]]  # row b offset by b * T (T = 3)


# ------------------------------------------------------------------ exactness against the unshared pass


def _clip(side_px: int, seed: int) -> VideoClip:
    """A random 4-frame clip sampled at 1.5 fps (second_per_grid_ts = 4/3, not the default 1)."""
    frames = torch.randint(0, 256, (4, 3, side_px, side_px), generator=torch.Generator().manual_seed(seed)).float()
    return VideoClip(
        frames=frames, timestamps_s=(0.0, 2 / 3, 4 / 3, 2.0), frame_indices=(0, 1, 2, 3), sample_fps=1.5,
        duration_s=8 / 3, video_fps=1.5, total_frames=4, path=f"clip{seed}.mp4", original_size=(side_px, side_px),
    )  # fmt: skip


def _prompt(tokenizer, family: str) -> dict[str, torch.Tensor]:
    """Two left-padded prompts of different lengths (different video sizes and questions)."""
    texts = ["Is there any anomaly in the video?", "What happens? Answer with A, B, C or D. Think first."]
    messages = [[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": t}]}] for t in texts]
    videos = [video_inputs(_clip(56, 0)), video_inputs(_clip(84, 1))]
    prompt = dict(encode_prompts(tokenizer, messages, videos, family=family).model_kwargs())
    assert prompt["attention_mask"].sum(1).unique().numel() == 2  # the shorter prompt is left-padded
    return prompt


def _completions(tokenizer, num_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random text tokens ``[N, L]`` with EOS at random places and padding after it."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 200, (num_rows, L), generator=generator)  # byte tokens: no video/image placeholder
    lengths = torch.tensor([L, 1, 3, 2, L, 4])[:num_rows]
    mask = (torch.arange(L) < lengths[:, None]).long()
    ids[torch.arange(num_rows), lengths - 1] = tokenizer.eos_token_id
    return ids.masked_fill(mask == 0, tokenizer.pad_token_id), mask


def _score(model, prompt, ids, mask, share: bool, chunk: int | None):
    """Log-probs and the gradients of a weighted sum of them (every trainable parameter)."""
    model.zero_grad(set_to_none=True)
    logp = CompletionScorer(model, True, chunk, share_prompt=share)(prompt, ids, mask, TEMPERATURE)
    weights = torch.linspace(-1, 2, logp.numel()).view_as(logp)
    (logp * weights * mask).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logp.detach(), grads


def assert_same_pass(model, tokenizer, family: str, chunk: int | None = 4) -> None:
    prompt = _prompt(tokenizer, family)
    ids, mask = _completions(tokenizer, 2 * G)
    want, want_grads = _score(model, prompt, ids, mask, share=False, chunk=chunk)
    got, got_grads = _score(model, prompt, ids, mask, share=True, chunk=chunk)
    assert got.shape == (2 * G, L)
    assert (got - want).abs().max() < LOGP_TOL  # padding positions included
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert got_grads.keys() == want_grads.keys() == trainable
    assert any(".visual." in n for n in trainable) or all("lora_" in n for n in trainable)
    bad = {n: float((got_grads[n] - g).abs().max() / g.abs().max().clamp_min(1e-30)) for n, g in want_grads.items()}
    assert max(bad.values()) < GRAD_RTOL, {n: r for n, r in bad.items() if r >= GRAD_RTOL}


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_shared_pass_equals_the_unshared_pass(family):
    model, tokenizer = build_tiny_model(TinyConfig(family=family))
    assert_same_pass(model.train(), tokenizer, family)


def test_shared_pass_with_eager_attention_and_full_logits():
    model, tokenizer = build_tiny_model(TinyConfig(), attn_implementation="eager")  # an additive float mask
    assert_same_pass(model.train(), tokenizer, "qwen2_5_vl", chunk=None)


def test_shared_pass_with_lora_and_gradient_checkpointing():
    model, tokenizer = build_tiny_model(TinyConfig())
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    settings = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "qkv"],
                "exclude_vision": False}  # fmt: skip
    lora = apply_lora(model, settings, get_family("qwen2_5_vl"))
    with torch.no_grad():  # B = 0 at init would give A no gradient: nothing to compare
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(name)))
    assert any(".visual." in n for n, p in lora.named_parameters() if p.requires_grad)
    assert_same_pass(lora.train(), tokenizer, "qwen2_5_vl")


# ------------------------------------------------------------------ where the packed pass is not used


def test_unchecked_model_types_fall_back_with_one_logged_line(monkeypatch, caplog):
    model, _ = build_tiny_model(TinyConfig())
    monkeypatch.setattr(scorer_module, "SHARED_PROMPT_MODEL_TYPES", ("qwen2_vl",))
    monkeypatch.setattr(scorer_module, "_LOGGED", set())
    with caplog.at_level(logging.INFO, logger=scorer_module.__name__):
        assert not CompletionScorer(model, share_prompt=True).share_prompt
        assert not CompletionScorer(model, share_prompt=True).share_prompt
    lines = [r.getMessage() for r in caplog.records if "share_prompt" in r.getMessage()]
    assert len(lines) == 1 and "unshared pass" in lines[0] and "'qwen2_5_vl'" in lines[0]


def test_a_flash_attention_text_model_is_switched_to_sdpa(monkeypatch, caplog):
    model, _ = build_tiny_model(TinyConfig(), attn_implementation="eager")
    monkeypatch.setattr(scorer_module, "_LOGGED", set())
    text, vision = model.model.language_model.config, model.model.visual.config
    text._attn_implementation_internal = "flash_attention_2"  # as loaded by the paper configs (no FA2 on CPU)
    with caplog.at_level(logging.WARNING, logger=scorer_module.__name__):
        assert CompletionScorer(model, share_prompt=True).share_prompt
    assert (text._attn_implementation, vision._attn_implementation) == ("sdpa", "eager")
    assert any("now sdpa instead of 'flash_attention_2'" in r.getMessage() for r in caplog.records)
    assert not CompletionScorer(model).share_prompt  # off unless asked (SFT, tests)


# ------------------------------------------------------------------ the GRPO trainer, one process and DDP


def _trainer_step(out_dir, share: bool):
    """A one-step debug GRPO run (reference model, mu = 2); returns the trainer, metrics, first-update grads."""
    from hydra import compose, initialize_config_dir

    from vau_r1.apps.train import build_trainer
    from vau_r1.resources import CONFIG_ROOT

    overrides = ["experiment=debug_cpu", f"output_dir={out_dir}", "trainer.max_steps=1", "trainer.save_final=false",
                 "grpo.max_completion_tokens=8", "grpo.num_iterations=2", "trainer.log_completions_every=0",
                 f"grpo.share_prompt={str(share).lower()}"]  # fmt: skip
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        trainer = build_trainer(compose("train", overrides=overrides))
    grads: list[dict[str, torch.Tensor]] = []
    optimizer_step = trainer.engine.optimizer_step

    def recording_step() -> float:
        grads.append({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
        return optimizer_step()

    trainer.engine.optimizer_step = recording_step
    metrics = trainer.fit()
    return trainer, metrics, grads[0]


# Two one-process GRPO runs of one step, about 5 s: the config switch reaches the policy, old and reference passes.
def test_one_grpo_step_gives_the_same_loss_and_gradients_shared_or_not(tmp_path):
    shared, shared_metrics, shared_grads = _trainer_step(tmp_path / "shared", share=True)
    plain, plain_metrics, plain_grads = _trainer_step(tmp_path / "plain", share=False)
    assert shared.accelerator.unwrap_model(shared.engine.scorer).share_prompt
    assert not plain.accelerator.unwrap_model(plain.engine.scorer).share_prompt
    (got,), (want,) = shared.last_experiences, plain.last_experiences
    assert torch.equal(got.rollout.completion_ids, want.rollout.completion_ids)  # same rollout
    mask = want.loss_mask.bool()
    assert got.ref_logp is not None and got.old_logp is not None  # the frozen passes ran, shared too
    assert (got.ref_logp - want.ref_logp)[mask].abs().max() < LOGP_TOL
    assert (got.old_logp - want.old_logp)[mask].abs().max() < LOGP_TOL
    assert shared_metrics["train/loss"] == pytest.approx(plain_metrics["train/loss"], rel=1e-4, abs=1e-6)
    assert shared_grads.keys() == plain_grads.keys() and any(".visual." in n for n in plain_grads)
    scale = max(float(g.abs().max()) for g in plain_grads.values())
    assert max(float((shared_grads[n] - g).abs().max()) for n, g in plain_grads.items()) < GRAD_RTOL * scale


def _launch(out_dir, strategy: str, share: bool) -> list[dict]:
    """Two processes (gloo) of tests/test_strategies.py's worker under ``strategy``; returns the logged metrics."""
    import json

    from test_strategies import launch

    launch(out_dir, f"trainer.strategy={strategy}", f"grpo.share_prompt={str(share).lower()}")
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


# slow: two two-process runs of two steps each, about 40 s per strategy (ZeRO-3 gathers its partitioned weights for
# the packed pass as for the unshared one; FSDP2 shards them; both must give the unshared pass's numbers).
@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "zero3", "fsdp2"])
def test_two_process_run_shared_or_not_gives_the_same_losses_and_weights(tmp_path, strategy):
    shared, plain = _launch(tmp_path / "shared", strategy, True), _launch(tmp_path / "plain", strategy, False)
    for got, want in zip(shared, plain, strict=True):
        assert got["train/loss"] == pytest.approx(want["train/loss"], rel=1e-4, abs=1e-6)
        assert got["train/grad_norm"] == pytest.approx(want["train/grad_norm"], rel=1e-4)
    weights = [torch.load(tmp_path / run / "params_rank0.pt") for run in ("shared", "plain")]
    diffs = torch.cat([(weights[0][k] - weights[1][k]).abs().flatten() for k in weights[1]])
    # Adam's first steps move each weight by about lr * sign(grad): a weight whose gradient is ~0 may flip.
    assert float((diffs > 1e-5).float().mean()) < 1e-3, float(diffs.max())
