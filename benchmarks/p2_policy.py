"""P2: time of the GRPO policy pass (forward + backward, vision tower trained) with the prompt shared per group.

The project path is :class:`~vau_r1.policy.scorer.CompletionScorer` with ``share_prompt=True``: each prompt and
its ``G`` completions packed into one row, so the vision tower and the language model run the ~1.5k-token video
prompt once per group (:mod:`vau_r1.policy.shared_prefix`). The baseline is the official trainer's way, the
vision tower and the prompt re-run for every completion (``reuse_vision=False``, rows ``[B*G, P+L]``); the
current unshared pass that shares only the vision output (``reuse_vision=True``) is timed too, for information.
All three use the default ``grpo.logprob_chunk_tokens``; they must agree on the log-probs and on every gradient.

``scaling`` repeats the project/baseline timing over ``G`` and over the video length (fewer repeats).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.harness import load_line, one_thread, paired_times, ratio_summary, spread
from benchmarks.models import bench_model, video_prompt
from vau_r1.grpo.config import GRPOConfig
from vau_r1.policy.scorer import CompletionScorer

#: Per scale: model size, video tokens, prompts B, completions per prompt G, completion tokens L.
SETTINGS: dict[str, dict[str, Any]] = {
    "full": {"size": "proportional", "video_tokens": 1500, "batch": 1, "G": 8, "L": 64},
    "smoke": {"size": "smoke", "video_tokens": 64, "batch": 2, "G": 4, "L": 8},
}
SCALING_G, SCALING_VIDEO_TOKENS = (2, 4, 8, 16), (512, 1500, 3000)
FULL_VOCAB_SIZE = "small"  # the same point on the 151,936-logit model (benchmarks.models), for information
TEMPERATURE = 0.9
#: Exactness bounds: fp32 log-probs (abs) and gradients (relative to each parameter's largest entry).
LOGP_TOL, GRAD_RTOL = 1e-4, 1e-4


def _completions(num_rows: int, length: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N, L]`` random byte-level tokens (never a video placeholder), some rows padded after an early end."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 256, (num_rows, length), generator=generator)
    lengths = torch.randint(length // 2, length + 1, (num_rows,), generator=generator)
    mask = (torch.arange(length) < lengths[:, None]).long()
    return ids.masked_fill(mask == 0, pad_id), mask


def _passes(model: torch.nn.Module) -> dict[str, CompletionScorer]:
    chunk = GRPOConfig().logprob_chunk_tokens
    return {
        "project": CompletionScorer(model, True, chunk, share_prompt=True),
        "baseline": CompletionScorer(model, reuse_vision=False, chunk_size=chunk),
        "vision_shared": CompletionScorer(model, True, chunk),
    }


def _step(model: torch.nn.Module, scorer: CompletionScorer, inputs: tuple) -> torch.Tensor:
    """Forward + backward of a fixed weighted sum of the log-probs; returns the log-probs."""
    prompt, ids, mask = inputs
    model.zero_grad(set_to_none=True)
    logp = scorer(prompt, ids, mask, TEMPERATURE)
    weights = torch.linspace(-1.0, 1.0, logp.numel()).view_as(logp)
    (logp * weights * mask).sum().backward()
    return logp.detach()


def _check_exact(model: torch.nn.Module, passes: dict[str, CompletionScorer], inputs: tuple) -> dict[str, float]:
    """Max abs log-prob difference and max relative gradient difference, project against baseline."""
    got = _step(model, passes["project"], inputs)
    got_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    want = _step(model, passes["baseline"], inputs)
    want_grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got_grads.keys() == want_grads.keys(), sorted(set(got_grads) ^ set(want_grads))
    rel = max(float((got_grads[n] - g).abs().max() / g.abs().max().clamp_min(1e-30)) for n, g in want_grads.items())
    return {"logp_max_abs_diff": float((got - want).abs().max()), "grad_max_rel_diff": rel}


def _timed(model: torch.nn.Module, names: tuple[str, ...], inputs: tuple, repeats: int) -> dict[str, list[float]]:
    passes = _passes(model)
    fns: dict[str, Callable[[], Any]] = {name: (lambda s=passes[name]: _step(model, s, inputs)) for name in names}
    return paired_times(fns, repeats)


def _inputs(tokenizer: Any, video_tokens: int, batch: int, G: int, L: int) -> tuple:
    prompt = video_prompt(tokenizer, video_tokens, batch=batch)
    return (prompt, *_completions(batch * G, L, tokenizer.pad_token_id))


def _scaling(model: torch.nn.Module, tokenizer: Any, settings: dict[str, Any], repeats: int) -> list[dict]:
    """Project ÷ baseline time over ``G`` (at the set video length) and over video tokens (at the set ``G``)."""
    points = [(G, settings["video_tokens"]) for G in SCALING_G]
    points += [(settings["G"], v) for v in SCALING_VIDEO_TOKENS if v != settings["video_tokens"]]
    rows = []
    for G, video_tokens in points:
        inputs = _inputs(tokenizer, video_tokens, settings["batch"], G, settings["L"])
        times = _timed(model, ("project", "baseline"), inputs, repeats)
        rows.append({"G": G, "video_tokens": video_tokens, "prompt_tokens": int(inputs[0]["input_ids"].shape[1]),
                     **ratio_summary(times["project"], times["baseline"]),
                     "project_s": spread(times["project"])["median"],
                     "baseline_s": spread(times["baseline"])["median"]})  # fmt: skip
    return rows


def _full_vocab(settings: dict[str, Any], repeats: int) -> dict[str, Any]:
    """The headline point timed on the full-vocabulary model, where the ``lm_head`` dominates every token."""
    model, tokenizer = bench_model(FULL_VOCAB_SIZE)
    model.train()
    inputs = _inputs(tokenizer, settings["video_tokens"], settings["batch"], settings["G"], settings["L"])
    times = _timed(model, ("project", "baseline"), inputs, repeats)
    return {"size": FULL_VOCAB_SIZE, **ratio_summary(times["project"], times["baseline"]),
            "time_s": {name: spread(values) for name, values in times.items()}}  # fmt: skip


def run(scale: str = "full", repeats: int = 5) -> dict[str, Any]:
    """Time of the shared-prompt pass against re-running the prompt per completion; raises if they disagree."""
    one_thread()
    settings = SETTINGS[scale]
    model, tokenizer = bench_model(settings["size"])
    model.train()  # dropout is 0; train mode as in the trainer
    inputs = _inputs(tokenizer, settings["video_tokens"], settings["batch"], settings["G"], settings["L"])
    passes = _passes(model)
    assert passes["project"].share_prompt, "the packed pass fell back to the unshared one on the bench model"
    exact = _check_exact(model, passes, inputs)
    assert exact["logp_max_abs_diff"] < LOGP_TOL and exact["grad_max_rel_diff"] < GRAD_RTOL, exact
    times = _timed(model, ("project", "baseline", "vision_shared"), inputs, repeats)
    scaling = _scaling(model, tokenizer, settings, max(1, repeats // 2)) if scale == "full" else []
    full_vocab = _full_vocab(settings, max(1, repeats // 2)) if scale == "full" else None
    prompt_tokens = int(inputs[0]["input_ids"].shape[1])
    return {
        "settings": {**settings, "prompt_tokens": prompt_tokens, "chunk_tokens": GRPOConfig().logprob_chunk_tokens},
        **ratio_summary(times["project"], times["baseline"]),
        "ratio_vs_vision_shared": ratio_summary(times["project"], times["vision_shared"])["ratio"],
        "time_s": {name: spread(values) for name, values in times.items()},
        "exactness": exact,
        "scaling": scaling,
        **({"full_vocab": full_vocab, "full_vocab_ratio": full_vocab["ratio"]} if full_vocab else {}),
        "repeats": repeats,
        "load": load_line(),
    }


if __name__ == "__main__":
    print(json.dumps(run("smoke", 2), indent=2))
