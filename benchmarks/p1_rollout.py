"""P1: time of the GRPO rollout (``G`` sampled completions per video prompt) against its floor and ``generate``.

* **project**: :func:`vau_r1.policy.rollout.generate_rollout` with the trainer's sampling defaults (top-k 50,
  temperature 1): vision + prefill once, the ``G`` rows reading the prompt's keys and values in place
  (:mod:`vau_r1.policy.prefix_decode`), top-k sampling by inverse CDF with recorded log-probs, rows dropped
  from the decode batch at their EOS.
* **floor**: :func:`floor_rollout`, the least any such rollout does: one vision pass, one prefill, the cache
  repeated, then a plain ``G``-row greedy decode loop (argmax, no filtering, no bookkeeping).
* **generate**: ``model.generate(num_return_sequences=G, do_sample=True, top_k=50)``, which runs the vision
  tower and the prefill ``G`` times and samples with ``torch.multinomial`` over the whole vocabulary.

Fixed lengths: all three decode exactly ``L`` tokens with ``L - 1`` decode forwards after the prefill: EOS is
suppressed (project ``eos_token_ids=[]``, generate ``eos_token_id=None``, the floor never checks it); the forwards
are counted with a hook on the language model and checked. ``exactness`` (every scale) checks that the recorded
log-probs equal a full forward's (the policy pass) and that the row-dropping, prompt-sharing decode gives the
tokens of the plain loop :func:`simple_rollout` over a repeated cache, with EOS on so that rows stop at different
steps. ``scaling`` repeats the timing over
``G`` (at 1.5k video tokens) and over the video length (at ``G`` = 8), with fewer repeats.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
from transformers import DynamicCache

from benchmarks.harness import load_line, one_thread, paired_times, ratio_summary, spread
from benchmarks.models import bench_model, video_prompt
from vau_r1.model.cache import repeat_cache
from vau_r1.policy.rollout import (
    Rollout,
    SamplingParams,
    _prefill,
    _sample,
    generate_rollout,
    placeholder_token_ids,
    prompt_positions,
    rope_model,
)  # fmt: skip
from vau_r1.policy.scorer import CompletionScorer

#: Per scale: model size, video tokens, prompts B, completions per prompt G, completion tokens L.
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"size": "proportional", "video_tokens": 1500, "batch": 1, "G": 8, "L": 64},
    "smoke": {"size": "smoke", "video_tokens": 64, "batch": 2, "G": 4, "L": 8},
}
SCALING_G, SCALING_VIDEO_TOKENS = (2, 4, 8, 16), (512, 1500, 3000)
FULL_VOCAB_SIZE = "small"  # the same point on the 151,936-logit model (benchmarks.models), for information
TOP_K, TEMPERATURE = 50, 1.0  # the trainer's defaults (GRPOConfig)
LOGP_TOL = 1e-4  # recorded log-probs against the policy pass (fp32)


@torch.no_grad()
def floor_rollout(model: torch.nn.Module, prompt: dict[str, torch.Tensor], G: int, L: int) -> torch.Tensor:
    """``[B*G, L]`` greedy tokens: one vision pass and prefill, the cache repeated ``G`` times, a plain loop."""
    positions = prompt_positions(model, prompt)  # [3, B, P]
    out = model(**prompt, position_ids=positions, past_key_values=DynamicCache(config=model.config.get_text_config()),
                use_cache=True, logits_to_keep=1)  # fmt: skip
    cache = repeat_cache(out.past_key_values, G)
    position = positions[:, :, -1:].repeat_interleave(G, dim=1) + 1
    mask = prompt["attention_mask"].repeat_interleave(G, dim=0)
    tokens = [out.logits[:, -1].repeat_interleave(G, dim=0).argmax(dim=-1)]
    for _ in range(L - 1):
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        logits = model(input_ids=tokens[-1][:, None], attention_mask=mask, position_ids=position,
                       past_key_values=cache, use_cache=True).logits[:, -1]  # fmt: skip
        position = position + 1
        tokens.append(logits.argmax(dim=-1))
    return torch.stack(tokens, dim=1)


@torch.no_grad()
def simple_rollout(
    model: torch.nn.Module, prompt: dict[str, torch.Tensor], params: SamplingParams, eos: list[int], pad_id: int,
    generator: torch.Generator,
) -> Rollout:  # fmt: skip
    """The project's sampler in a plain loop: every row decoded until all are done (no row dropping)."""
    positions = prompt_positions(model, prompt)
    n, G = prompt["input_ids"].shape[0] * params.num_generations, params.num_generations
    logits, cache, _ = _prefill(model, prompt, positions, G)  # the repeated cache: the reference decode
    position = positions[:, :, -1:].repeat_interleave(G, dim=1) + 1
    mask = prompt["attention_mask"].repeat_interleave(G, dim=0)
    banned = torch.tensor(placeholder_token_ids(model))
    done = torch.zeros(n, dtype=torch.bool)
    tokens, logps, masks = [], [], []
    for _ in range(params.max_new_tokens):
        token, logp = _sample(logits, params, torch.rand(n, generator=generator, dtype=torch.float64), banned)
        tokens.append(token.masked_fill(done, pad_id))
        logps.append(logp.masked_fill(done, 0.0))
        masks.append(~done)
        done = done | torch.isin(token, torch.tensor(eos))
        if bool(done.all()) or len(tokens) == params.max_new_tokens:
            break
        mask = torch.cat([mask, mask.new_ones(n, 1)], dim=1)
        logits = model(input_ids=tokens[-1][:, None], attention_mask=mask, position_ids=position,
                       past_key_values=cache, use_cache=True).logits[:, -1]  # fmt: skip
        position = position + 1
    return Rollout(torch.stack(tokens, 1), torch.stack(masks, 1).long(), ~done, torch.stack(logps, 1), G)


def _project(model: torch.nn.Module, tokenizer: Any, prompt: dict, G: int, L: int, eos: list[int]) -> Rollout:
    params = SamplingParams(G, L, temperature=TEMPERATURE, top_k=TOP_K)
    return generate_rollout(model, prompt, params, eos_token_ids=eos, pad_token_id=tokenizer.pad_token_id,
                            generator=torch.Generator().manual_seed(0))  # fmt: skip


def _generate(model: torch.nn.Module, tokenizer: Any, prompt: dict, G: int, L: int) -> torch.Tensor:
    """``[B*G, L]`` tokens of HF ``generate`` with the same sampling, EOS suppressed (``eos_token_id=None``)."""
    out = model.generate(**prompt, do_sample=True, num_return_sequences=G, max_new_tokens=L, top_k=TOP_K,
                         top_p=1.0, temperature=TEMPERATURE, eos_token_id=None, pad_token_id=tokenizer.pad_token_id)
    return out[:, prompt["input_ids"].shape[1] :]


def _fns(model: torch.nn.Module, tokenizer: Any, prompt: dict, G: int, L: int) -> dict[str, Callable[[], Any]]:
    return {
        "project": lambda: _project(model, tokenizer, prompt, G, L, eos=[]),
        "floor": lambda: floor_rollout(model, prompt, G, L),
        "generate": lambda: _generate(model, tokenizer, prompt, G, L),
    }


def decode_forwards(model: torch.nn.Module, fn: Callable[[], Any]) -> tuple[int, int]:
    """``(language-model forwards, tokens per row)`` of one call of ``fn`` (the prefill is one of the forwards)."""
    calls = []
    hook = rope_model(model).language_model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        out = fn()
    finally:
        hook.remove()
    ids = out.completion_ids if isinstance(out, Rollout) else out
    return len(calls), int(ids.shape[1])


def exactness(model: torch.nn.Module, tokenizer: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """Log-probs against the policy pass, row dropping against the plain loop, and the forward counts; asserts."""
    G, L = settings["G"], settings["L"]
    prompt = video_prompt(tokenizer, settings["video_tokens"], batch=2)  # batch 2: left padding, 2 groups
    eos = list(range(max(50, len(tokenizer) // 64)))  # many "EOS" ids: rows stop at different steps
    params = SamplingParams(G, L, temperature=0.7, top_k=TOP_K)
    kwargs = {"eos_token_ids": eos, "pad_token_id": tokenizer.pad_token_id}
    roll = generate_rollout(model, prompt, params, **kwargs, generator=torch.Generator().manual_seed(1))
    plain = simple_rollout(model, prompt, params, eos, tokenizer.pad_token_id, torch.Generator().manual_seed(1))
    scored = CompletionScorer(model)(prompt, roll.completion_ids, roll.completion_mask, params.temperature)
    keep = roll.completion_mask.bool()
    result = {
        "logp_max_abs_diff_vs_policy_pass": float((scored.detach() - roll.sampled_logp)[keep].abs().max()),
        "same_tokens_as_plain_loop": bool(torch.equal(roll.completion_ids, plain.completion_ids)
                                          and torch.equal(roll.completion_mask, plain.completion_mask)
                                          and torch.equal(roll.is_truncated, plain.is_truncated)),
        "logp_max_abs_diff_vs_plain_loop": float((roll.sampled_logp - plain.sampled_logp).abs().max()),
        "lengths": roll.lengths.tolist(),
    }
    assert result["logp_max_abs_diff_vs_policy_pass"] < LOGP_TOL, result
    assert result["same_tokens_as_plain_loop"] and result["logp_max_abs_diff_vs_plain_loop"] < 1e-5, result
    one = video_prompt(tokenizer, settings["video_tokens"], batch=1)
    forwards = {name: decode_forwards(model, fn) for name, fn in _fns(model, tokenizer, one, G, L).items()}
    assert all(f == (L, L) for f in forwards.values()), forwards  # prefill + L-1 decode forwards, L tokens each
    result["lm_forwards_and_tokens"] = forwards
    return result


def _timed(model: torch.nn.Module, tokenizer: Any, video_tokens: int, G: int, L: int, repeats: int,
           warmup: int = 1) -> dict[str, Any]:  # fmt: skip
    prompt = video_prompt(tokenizer, video_tokens, batch=1)
    times = paired_times(_fns(model, tokenizer, prompt, G, L), repeats, warmup)
    return {
        "G": G, "video_tokens": video_tokens, "prompt_tokens": int(prompt["input_ids"].shape[1]),
        **ratio_summary(times["project"], times["generate"]),
        "floor_ratio": ratio_summary(times["project"], times["floor"])["ratio"],
        "floor_ratio_spread": ratio_summary(times["project"], times["floor"]),
        "time_s": {name: spread(values) for name, values in times.items()},
    }  # fmt: skip


def _full_vocab(settings: dict[str, Any], repeats: int) -> dict[str, Any]:
    """The headline point timed on the full-vocabulary model, where the ``lm_head`` dominates every token."""
    model, tokenizer = bench_model(FULL_VOCAB_SIZE)
    row = _timed(model, tokenizer, settings["video_tokens"], settings["G"], settings["L"], repeats, warmup=0)
    return {"size": FULL_VOCAB_SIZE, **{k: v for k, v in row.items() if k != "floor_ratio_spread"}}


def run(scale: str = "full", repeats: int = 5) -> dict[str, Any]:
    """Project rollout ÷ ``generate`` (``ratio``) and ÷ the floor (``floor_ratio``); raises if exactness fails."""
    one_thread()
    settings = SETTINGS[scale]
    model, tokenizer = bench_model(settings["size"])
    exact = exactness(model, tokenizer, settings)
    main = _timed(model, tokenizer, settings["video_tokens"], settings["G"], settings["L"], repeats)
    scaling = []
    if scale == "full":
        points = [(G, settings["video_tokens"]) for G in SCALING_G if settings["G"] != G]
        points += [(settings["G"], v) for v in SCALING_VIDEO_TOKENS if v != settings["video_tokens"]]
        for G, video_tokens in points:
            row = _timed(model, tokenizer, video_tokens, G, settings["L"], max(1, repeats // 2), warmup=0)
            scaling.append({k: v for k, v in row.items() if k != "floor_ratio_spread"})
        full_vocab = _full_vocab(settings, max(1, repeats // 2))
    return {
        "settings": {**settings, "top_k": TOP_K, "temperature": TEMPERATURE, "prompt_tokens": main["prompt_tokens"],
                     "fixed_length": "EOS suppressed in all three (project eos_token_ids=[], generate "
                                     "eos_token_id=None, floor greedy without EOS); each does 1 prefill + L-1 "
                                     "decode forwards, counted in exactness.lm_forwards_and_tokens",
                     "floor": "vision + prefill once, cache repeated G times, greedy G-row decode loop"},
        **{k: main[k] for k in ("ratio", "ratio_min", "ratio_max", "floor_ratio", "floor_ratio_spread", "time_s")},
        "exactness": exact,
        "scaling": scaling,
        **({"full_vocab": full_vocab, "full_vocab_ratio": full_vocab["ratio"]} if scale == "full" else {}),
        "repeats": repeats,
        "load": load_line(),
    }  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(run("smoke", 2), indent=2))
