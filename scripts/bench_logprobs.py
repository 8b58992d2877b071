"""Benchmark token log-probs + backward: naive full logits vs row-wise vs the chunked autograd function.

Each variant computes ``log p(token)`` for ``N×T`` tokens from hidden states ``[N, T, H]`` and an
``lm_head`` ``[V, H]`` (both trainable), then runs backward:

* ``naive``:   ``log_softmax(hidden @ W^T).gather`` — full ``[N, T, V]`` logits kept for backward;
* ``rowwise``: full logits, then :func:`vau_r1.grpo.token_logprobs` (chunked log-sum-exp and backward);
* ``chunked``: :func:`vau_r1.grpo.chunked_logprobs` — at most ``chunk_size`` rows of logits alive.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above what the inputs hold. On CPU, each
(size, variant) runs in a fresh subprocess and reports the growth of ``ru_maxrss`` (the process's
peak resident set) from after input setup to after the timed runs. Ratios are against ``naive`` run
by the same script at the same size.

Usage (repository root; the package must be importable, e.g. ``pip install -e .`` or ``PYTHONPATH=.``)::

    python scripts/bench_logprobs.py                                  # CPU defaults, < 1 min on 2 cores
    python scripts/bench_logprobs.py --sizes 8x512 --vocab 151936 --hidden 2048 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from vau_r1.policy.logprobs import DEFAULT_CHUNK_TOKENS, chunked_logprobs, token_logprobs

VARIANTS = ("naive", "rowwise", "chunked")


def _inputs(n: int, t: int, args: argparse.Namespace, device: str) -> tuple[torch.Tensor, ...]:
    """Hidden ``[N, T, H]``, lm_head ``[V, H]`` (both requiring grad) and tokens ``[N, T]``."""
    gen = torch.Generator(device=device).manual_seed(0)
    hidden = torch.randn(n, t, args.hidden, generator=gen, device=device).requires_grad_()
    weight = (torch.randn(args.vocab, args.hidden, generator=gen, device=device) * 0.02).requires_grad_()
    tokens = torch.randint(0, args.vocab, (n, t), generator=gen, device=device)
    return hidden, weight, tokens


def _step(variant: str, hidden: torch.Tensor, weight: torch.Tensor, tokens: torch.Tensor, chunk: int) -> None:
    """One forward + backward of ``variant``; gradients land in ``hidden.grad`` / ``weight.grad``."""
    if variant == "chunked":
        logp = chunked_logprobs(hidden, weight, tokens, chunk_size=chunk)
    else:
        logits = hidden @ weight.T  # [N, T, V]
        if variant == "naive":
            logp = logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        else:
            logp = token_logprobs(logits, tokens)
    logp.sum().backward()
    hidden.grad = weight.grad = None


def _measure(variant: str, n: int, t: int, args: argparse.Namespace, device: str) -> dict[str, float]:
    """Median seconds per step over ``args.repeats`` (plus one warm-up on CUDA) and peak extra MiB."""
    hidden, weight, tokens = _inputs(n, t, args, device)
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times = []
    warmup = 1 if device == "cuda" else 0  # CUDA: exclude cuBLAS/allocator start-up from the timings
    for i in range(args.repeats + warmup):
        start = time.perf_counter()
        _step(variant, hidden, weight, tokens, args.chunk_size)
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak_mib = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    return {"time_s": statistics.median(times), "peak_mib": peak_mib}


def _measure_in_subprocess(variant: str, size: str, argv: list[str]) -> dict[str, float]:
    """Run one CPU measurement in a fresh interpreter so that ``ru_maxrss`` is this variant's alone."""
    cmd = [sys.executable, __file__, *argv, "--worker", variant, "--sizes", size]
    # A fixed glibc mmap threshold returns every freed buffer ≥ 64 KiB to the OS at once; with the default
    # dynamic threshold, freed chunks linger in the heap and a second repeat inflates ru_maxrss.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, run every (size, variant) and print a table with ratios to ``naive``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4x256,8x256", help="comma-separated NxT (sequences x tokens)")
    parser.add_argument("--vocab", type=int, default=32_000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_TOKENS, help="token rows per chunk")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]

    if args.worker:  # child process: one measurement, JSON on the last stdout line
        print(json.dumps(_measure(args.worker, *sizes[0], args, device)))
        return

    child_argv = ["--vocab", str(args.vocab), "--hidden", str(args.hidden), "--chunk-size", str(args.chunk_size)]
    child_argv += ["--repeats", str(args.repeats), "--device", device]
    print(f"device={device} V={args.vocab} H={args.hidden} chunk={args.chunk_size} repeats={args.repeats}")
    print(f"{'N x T':>9} {'variant':>8} {'time_s':>8} {'peak_MiB':>9} {'time/naive':>10} {'mem/naive':>9}")
    for n, t in sizes:
        results = {}
        for variant in VARIANTS:
            if device == "cuda":
                results[variant] = _measure(variant, n, t, args, device)
            else:
                results[variant] = _measure_in_subprocess(variant, f"{n}x{t}", child_argv)
        naive = results["naive"]
        for variant, r in results.items():
            print(
                f"{f'{n}x{t}':>9} {variant:>8} {r['time_s']:8.3f} {r['peak_mib']:9.1f} "
                f"{r['time_s'] / naive['time_s']:10.2f} {r['peak_mib'] / naive['peak_mib']:9.2f}"
            )


if __name__ == "__main__":
    main()
