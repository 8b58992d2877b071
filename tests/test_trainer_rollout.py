"""Rollout and policy pass on the tiny Qwen-VL: the log-probs of sampling are the log-probs that are trained.

Each test guards a silent failure of ``docs/qwen_vl_notes.md``: the time encoding
(``second_per_grid_ts``) and ``mm_token_type_ids`` reaching every pass (items 1-2), the mutable
``rope_deltas`` (item 3), and prefill-once + KV-cache expansion reproducing plain decoding (items 4-5).
"""

from __future__ import annotations

import pytest
import torch

from vau_r1.data.mini_bench import write_mini_bench
from vau_r1.data.video import VideoConfig
from vau_r1.model.builder import ModelConfig, load_model_and_processor
from vau_r1.model.processing import encode_prompts
from vau_r1.policy.rollout import SamplingParams, generate_rollout, rope_model
from vau_r1.policy.scorer import CompletionScorer
from vau_r1.tasks.dataset import VideoPromptDataset, load_training_samples

# 1.5 fps on 4-s clips: 6 frames, sample_fps 1.5, so second_per_grid_ts = 4/3 (the official trainer's bug
# only shows when it differs from 1, i.e. sample_fps != 2).
VIDEO = {**VideoConfig.from_preset("tiny_cpu").to_dict(), "fps": 1.5}
TOL = 1e-5


# The tiny model runs fastest on one thread (conftest.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    csv = write_mini_bench(root, num_clips=4)
    samples = load_training_samples(csv, "tag")
    dataset = VideoPromptDataset(samples, root / "videos", "tag", VideoConfig.from_dict(VIDEO))
    return [dataset[0], dataset[1]]


def _tiny(family: str = "qwen2_5_vl"):
    return load_model_and_processor(ModelConfig(name_or_path="tiny-random", tiny={"family": family}))


def _prompt(tokenizer, examples, family: str = "qwen2_5_vl") -> dict[str, torch.Tensor]:
    batch = encode_prompts(tokenizer, [e.messages for e in examples], [e.video for e in examples], family=family)
    return batch.model_kwargs()


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


def _rollout(model, tokenizer, prompt, seed=0, eos=None, **kwargs):
    params = SamplingParams(**{"num_generations": 3, "max_new_tokens": 10, "temperature": 0.7, **kwargs})
    eos = [tokenizer.eos_token_id] if eos is None else eos
    return generate_rollout(
        model, prompt, params, eos_token_ids=eos, pad_token_id=tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip


@pytest.mark.parametrize(("reuse_vision", "chunk"), [(True, None), (False, None), (True, 7)])
def test_policy_pass_reproduces_sampling_logprobs(tiny, examples, reuse_vision, chunk):
    model, tokenizer = tiny
    prompt = _prompt(tokenizer, examples)
    assert torch.allclose(prompt["second_per_grid_ts"], torch.tensor([4 / 3, 4 / 3]))  # not the default 1.0
    roll = _rollout(model, tokenizer, prompt)
    logp = CompletionScorer(model, reuse_vision, chunk)(prompt, roll.completion_ids, roll.completion_mask, 0.7)
    mask = roll.completion_mask.bool()
    assert roll.completion_ids.shape == (6, 10)  # B*G rows, prompt-major
    assert (logp - roll.sampled_logp)[mask].abs().max() < TOL


def test_time_encoding_and_token_types_change_the_logprobs(tiny, examples):
    # The consistency test above is only meaningful if leaving an input out would break it.
    model, tokenizer = tiny
    prompt = _prompt(tokenizer, examples)
    roll = _rollout(model, tokenizer, prompt)
    mask = roll.completion_mask.bool()
    for missing in ("second_per_grid_ts", "mm_token_type_ids"):
        partial = {k: v for k, v in prompt.items() if k != missing}
        if missing == "mm_token_type_ids":  # the scorer needs the types; zeros = "no video" positions
            partial[missing] = torch.zeros_like(prompt[missing])
        logp = CompletionScorer(model)(partial, roll.completion_ids, roll.completion_mask, 0.7)
        assert (logp - roll.sampled_logp)[mask].abs().max() > 100 * TOL, missing


def test_rollout_ignores_stale_rope_deltas(tiny, examples):
    # A training or reference forward overwrites model.model.rope_deltas; decoding must not depend on it.
    model, tokenizer = tiny
    prompt = _prompt(tokenizer, examples)
    clean = _rollout(model, tokenizer, prompt, seed=3)
    rope_model(model).rope_deltas = torch.full((2, 1), 1000)
    stale = _rollout(model, tokenizer, prompt, seed=3)
    assert torch.equal(clean.completion_ids, stale.completion_ids)
    assert torch.equal(clean.sampled_logp, stale.sampled_logp)


def test_prefill_once_matches_hf_generate(tiny, examples):
    # top_k=1 makes sampling greedy: the prefill-once, cache-expanded decode must pick HF's tokens.
    model, tokenizer = tiny
    prompt = _prompt(tokenizer, examples)
    ours = _rollout(model, tokenizer, prompt, top_k=1, max_new_tokens=8, num_generations=2)
    hf = model.generate(**prompt, do_sample=False, max_new_tokens=8, eos_token_id=[tokenizer.eos_token_id],
                        pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    reference = hf[:, prompt["input_ids"].shape[1] :].repeat_interleave(2, dim=0)
    assert torch.equal(ours.completion_ids[:, : reference.shape[1]], reference)


def test_eos_ends_a_completion_and_pads_after_it(tiny, examples):
    model, tokenizer = tiny
    prompt = _prompt(tokenizer, examples)
    eos = list(range(0, 400))  # many "EOS" ids, so most rows stop early
    roll = _rollout(model, tokenizer, prompt, eos=eos, max_new_tokens=12)
    for ids, mask, truncated, logp in zip(roll.completion_ids, roll.completion_mask, roll.is_truncated,
                                          roll.sampled_logp, strict=True):  # fmt: skip
        ends = [i for i, t in enumerate(ids.tolist()) if t in eos]
        if truncated:
            assert not ends and mask.all()
            continue
        first = ends[0]
        assert mask[: first + 1].all() and not mask[first + 1 :].any()  # EOS included
        assert (ids[first + 1 :] == tokenizer.pad_token_id).all()
        assert (logp[first + 1 :] == 0).all()
    assert not roll.is_truncated.all()


def test_placeholder_tokens_are_never_sampled(examples):
    # Push the video-pad logit far up: it would be sampled everywhere, and the policy pass would then count
    # more video slots than video features.
    model, tokenizer = _tiny()
    video_id = model.config.video_token_id
    model.lm_head.register_forward_hook(lambda module, args, out: out.index_add(
        -1, torch.tensor([video_id]), torch.full((*out.shape[:-1], 1), 20.0)))  # fmt: skip
    prompt = _prompt(tokenizer, examples)
    unguarded = generate_rollout(model, prompt, SamplingParams(2, 4), eos_token_ids=[tokenizer.eos_token_id],
                                 pad_token_id=tokenizer.pad_token_id, banned_token_ids=[])  # fmt: skip
    assert (unguarded.completion_ids == video_id).float().mean() > 0.9  # the hook works
    roll = _rollout(model, tokenizer, prompt)
    assert not (roll.completion_ids == video_id).any()
    logp = CompletionScorer(model)(prompt, roll.completion_ids, roll.completion_mask, 0.7)
    assert (logp - roll.sampled_logp)[roll.completion_mask.bool()].abs().max() < TOL


def test_qwen2_vl_family_without_time_encoding(examples):
    model, tokenizer = _tiny("qwen2_vl")
    prompt = _prompt(tokenizer, examples, family="qwen2_vl")
    assert "second_per_grid_ts" not in prompt
    roll = _rollout(model, tokenizer, prompt)
    logp = CompletionScorer(model)(prompt, roll.completion_ids, roll.completion_mask, 0.7)
    assert (logp - roll.sampled_logp)[roll.completion_mask.bool()].abs().max() < TOL
