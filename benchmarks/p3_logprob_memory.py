"""P3: peak memory and time of completion log-probs (forward + backward) with the default settings.

The project path is what the policy pass does with the defaults: ``GRPOConfig().logprob_chunk_tokens``
rows of logits at a time from the final hidden states (:func:`vau_r1.policy.logprobs.chunked_logprobs`),
or the full logits then :func:`~vau_r1.policy.logprobs.token_logprobs` when the default is ``None``.
The baseline is naive ``log_softmax(hidden @ W^T / T).gather(token)``. Both start from the same trainable
hidden states ``[N, L, H]`` and ``lm_head`` weight ``[V, H]`` and run backward; memory is the peak of live
tensor bytes above the inputs (:func:`vau_r1.engine.memory.peak_bytes`), time is paired and interleaved.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from benchmarks.harness import load_line, one_thread, paired_times, peak_bytes, ratio_summary, spread
from vau_r1.grpo.config import GRPOConfig
from vau_r1.model.tiny import QWEN2_5_VOCAB_SIZE
from vau_r1.policy.logprobs import chunked_logprobs, token_logprobs

#: (rows N, completion tokens L, hidden H, vocabulary V) per scale; "full" is the issue's 8 × 1024 × 151,936.
SHAPES: dict[str, tuple[int, int, int, int]] = {"full": (8, 1024, 256, QWEN2_5_VOCAB_SIZE), "smoke": (2, 64, 32, 4096)}
TEMPERATURE = 0.9


def _inputs(rows: int, length: int, hidden: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(rows, length, hidden, generator=generator).requires_grad_()
    weight = (torch.randn(vocab, hidden, generator=generator) * hidden**-0.5).requires_grad_()
    tokens = torch.randint(0, vocab, (rows, length), generator=generator)
    return states, weight, tokens


def naive(states: torch.Tensor, weight: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The baseline: full ``[N, L, V]`` logits, ``log_softmax``, gather."""
    logits = states @ weight.T / TEMPERATURE
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def project(states: torch.Tensor, weight: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The policy pass's log-probs with the default ``grpo.logprob_chunk_tokens``."""
    chunk = GRPOConfig().logprob_chunk_tokens
    if chunk is None:
        return token_logprobs(states @ weight.T, tokens, TEMPERATURE)
    return chunked_logprobs(states, weight, tokens, TEMPERATURE, chunk)


def _step(fn: Any, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    states, weight, tokens = inputs
    states.grad = weight.grad = None
    logp = fn(states, weight, tokens)
    logp.sum().backward()
    return logp.detach()


def _check_exact(inputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Max abs differences of the log-probs and both gradients, project against naive."""
    got = _step(project, inputs)
    got_grads = [t.grad.clone() for t in inputs[:2]]
    want = _step(naive, inputs)
    diffs = {"logp_max_abs_diff": float((got - want).abs().max())}
    for name, grad, tensor in zip(("hidden", "weight"), got_grads, inputs[:2], strict=True):
        diffs[f"grad_{name}_max_rel_diff"] = float((grad - tensor.grad).abs().max() / tensor.grad.abs().max())
    return diffs


def run(scale: str = "full", repeats: int = 5) -> dict[str, Any]:
    """Peak memory and time of the default path against naive; raises if they disagree beyond float tolerance."""
    one_thread()
    rows, length, hidden, vocab = SHAPES[scale]
    inputs = _inputs(rows, length, hidden, vocab)
    exact = _check_exact(inputs)
    assert exact["logp_max_abs_diff"] < 1e-3 and max(exact.values()) < 1e-3, exact
    passes = (("project", project), ("naive", naive))
    memory = {name: peak_bytes(lambda fn=fn: _step(fn, inputs)) for name, fn in passes}
    times = paired_times({"project": lambda: _step(project, inputs), "naive": lambda: _step(naive, inputs)}, repeats)
    return {
        "shape": {"rows": rows, "tokens": length, "hidden": hidden, "vocab": vocab},
        "chunk_tokens": GRPOConfig().logprob_chunk_tokens,
        "ratio": memory["project"] / memory["naive"],
        "peak_gib": {name: value / 2**30 for name, value in memory.items()},
        "time_ratio": ratio_summary(times["project"], times["naive"]),
        "time_s": {name: spread(values) for name, values in times.items()},
        "exactness": exact,
        "repeats": repeats,
        "load": load_line(),
    }


if __name__ == "__main__":
    print(json.dumps(run("smoke", 3), indent=2))
