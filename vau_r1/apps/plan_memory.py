"""Peak-memory arithmetic of one GRPO step per device, as small pure functions (``vau-r1 plan``).

Every term is derived from the architecture and the run's shapes, not fitted: bytes = elements x dtype size
(the types and the phases are in :mod:`vau_r1.apps.plan_terms`, the activations in
:mod:`vau_r1.apps.plan_activations`). The step's peak is the largest phase (:meth:`Estimate.peak`).

Persistent state is the weights (and fp32 master weights of bf16/fp16 models), the AdamW states (two fp32
tensors per trainable parameter) and the reference model (``grpo.beta > 0`` without LoRA), each divided by the
process count where the strategy partitions it (ZeRO-2: gradients and optimizer states; ZeRO-3, FSDP2: weights
too). Checked against the measured peak of a step on CPU (:mod:`vau_r1.apps.plan_check`, tests/test_plan.py).
"""

from __future__ import annotations

from vau_r1.apps.plan_activations import (
    PATCH_VALUES,
    head_bytes,
    lm_activation_bytes,
    mask_bytes,
    sampling_bytes,
    vision_activation_bytes,
    work_per_token,
)  # fmt: skip
from vau_r1.apps.plan_terms import FP32, PHASES, Arch, Estimate, Precision, Shapes, Term, Trainable

__all__ = ["PHASES", "Arch", "Estimate", "Precision", "Shapes", "Term", "Trainable", "estimate", "shard"]


def shard(strategy: str, what: str, processes: int) -> int:
    """Divisor of ``what`` (weights, grads, states) per device under ``strategy``: 1, or the process count."""
    split = {"ddp": (), "zero2": ("grads", "states"), "zero3": ("weights", "grads", "states"),
             "zero3_offload": ("weights", "grads", "states"), "fsdp2": ("weights", "grads", "states")}  # fmt: skip
    return processes if what in split.get(strategy, ()) else 1


def state_terms(arch: Arch, train: Trainable, prec: Precision) -> list[Term]:
    """Weights, fp32 master weights, AdamW states, the reference copy and weight copies, per device."""
    total, n, strategy = arch.params_total + train.added, prec.processes, prec.strategy
    low = prec.weight_bytes < FP32
    offload = strategy == "zero3_offload"
    terms: list[Term] = []
    if strategy.startswith("zero"):  # DeepSpeed: low-precision weights, fp32 masters in the optimizer partition
        terms.append(Term("weights", 0 if offload else total * prec.weight_bytes / shard(strategy, "weights", n),
                          ("all",), "offloaded to CPU" if offload else ""))  # fmt: skip
        if low and not offload:
            terms.append(Term("fp32 master weights", train.params * FP32 / n, ("all",)))
    else:  # ddp / fsdp2: trainable bf16/fp16 weights become fp32 masters (vau_r1.engine.sharding.keep_fp32_masters)
        div = shard(strategy, "weights", n)
        terms.append(Term("weights (frozen part)", (total - train.params) * prec.weight_bytes / div, ("all",)))
        trained = train.params * (FP32 if low else prec.weight_bytes) / div
        terms.append(Term("weights (trainable, fp32 masters)" if low else "weights (trainable)", trained, ("all",)))
    states = 0 if offload else 2 * FP32 * train.params / shard(strategy, "states", n)
    terms.append(Term("optimizer states (AdamW, 2 x fp32)", states, ("all",), "offloaded to CPU" if offload else ""))
    if train.reference:
        ref = arch.params_total * prec.weight_bytes / (1 if strategy in ("ddp", "zero2") else n)
        terms.append(Term("reference model", ref, ("all",), "grpo.beta > 0"))
    if low and not strategy.startswith("zero") and strategy != "fsdp2" and prec.compute_bytes < FP32:
        casts = ("rollout", "scoring", "policy")
        terms.append(Term("autocast weight copies", train.params * prec.compute_bytes, casts,
                          "bf16 casts of the fp32 masters, cached per autocast region"))  # fmt: skip
    if strategy in ("zero3", "zero3_offload", "fsdp2"):
        terms.append(Term("gathered weights (rollout)", arch.params_total * prec.compute_bytes, ("rollout",),
                          "the rollout gathers the full model once"))  # fmt: skip
    return terms


def gradient_terms(shapes: Shapes, train: Trainable, prec: Precision) -> list[Term]:
    """Every gradient (from the end of the backward through the optimizer step) and the optimizer's temporaries.

    One micro-batch: the backward makes the gradients while it frees the activations, so the policy phase holds
    only the head's gradient (in :func:`~vau_r1.apps.plan_activations.head_bytes`). With accumulation the later
    micro-batches run their whole pass over the gradients of the earlier ones.
    """
    strategy, n = prec.strategy, prec.processes
    grads = train.params * FP32 / shard(strategy, "grads", n)
    accumulating = shapes.micro_batches > 1
    phases = ("policy", "optimizer") if accumulating else ("optimizer",)
    note = "held through the later micro-batches" if accumulating else "complete at the end of the backward"
    terms = [Term("gradients", grads, phases, note)]
    if strategy == "ddp" and n > 1:  # DDP's reducer copies gradients into buckets (gradient_as_bucket_view=False)
        terms.append(Term("DDP gradient buckets", train.params * FP32, ("policy", "optimizer"), "all-reduce buckets"))
    if strategy.startswith("zero"):
        return terms  # DeepSpeed's fused/CPU Adam works in place on its partition
    if prec.on_gpu:  # foreach AdamW: torch._foreach_sqrt(exp_avg_sq) is one fp32 tensor per parameter
        terms.append(Term("AdamW temporaries (foreach)", train.params * FP32 / shard(strategy, "states", n),
                          ("optimizer",), "one fp32 copy of the trainable parameters"))  # fmt: skip
    else:  # single-tensor AdamW: denom = (exp_avg_sq.sqrt() / c).add_(eps), two at once, one tensor at a time
        terms.append(Term("AdamW temporaries (single-tensor, CPU)", 2 * train.largest * FP32, ("optimizer",),
                          "two fp32 copies of the largest trainable tensor"))  # fmt: skip
    return terms


def video_copies(prec: Precision) -> int:
    """Copies of a step's video patches on the device: the encoded prompts of this step and of the previous one
    (``GRPOTrainer.last_experiences`` keeps it for the completions table), and on CPU also both steps' decoded
    clips (the examples), which live on the same device there."""
    return 2 if prec.on_gpu else 4


def pass_terms(arch: Arch, shapes: Shapes, prec: Precision, train: Trainable) -> list[Term]:
    """Activation terms of the rollout, the frozen scoring passes and the policy pass."""
    cb, B, G = prec.compute_bytes, shapes.prompts, shapes.generations
    P, L = shapes.prompt_tokens, shapes.completion_tokens
    kv = (B * G * (P + L) + B * P) * arch.layers * 2 * arch.kv_dim * cb  # + the prefill cache while it is repeated
    rows, row_tokens = shapes.rows, shapes.row_tokens
    saved = 1 if prec.gradient_checkpointing else arch.layers
    patches = shapes.visual_tokens * shapes.merge**2
    chunks = "full logits" if shapes.logprob_chunk_tokens is None else f"chunks of {shapes.logprob_chunk_tokens}"
    terms = [
        Term("KV cache (rollout)", kv, ("rollout",), f"{B * G} rows x {P + L} tokens"),
        Term("prefill working set", B * P * work_per_token(arch) * cb, ("rollout",), "one layer of the prefill"),
        Term("sampler working set", sampling_bytes(arch, shapes, prec), ("rollout",),
             f"{B * G} rows x {arch.vocab} logits, fp64 probabilities"),
        Term("vision tower activations", vision_activation_bytes(arch, shapes, prec, train), ("policy",)),
        Term("language model activations", lm_activation_bytes(arch, shapes, prec, train), ("policy",),
             f"{rows} rows x {row_tokens} tokens, {arch.layers} layers"
             + (", gradient checkpointing" if prec.gradient_checkpointing else "")),
        Term("attention masks", mask_bytes(shapes, prec, saved), ("policy",),
             "bool 4-D mask, and per layer its float32 copy under sdpa" if mask_bytes(shapes, prec, 1) else ""),
        Term("video inputs", video_copies(prec) * shapes.micro_batches * B * patches * PATCH_VALUES * FP32,
             ("all",), f"float32 patches of every micro-batch's videos, {video_copies(prec)} copies"),
        Term("log-prob head (policy)", head_bytes(arch, shapes, prec, train, True), ("policy",),
             f"{chunks}" + (", the head's fp32 gradient" if train.head else "")),
    ]  # fmt: skip
    if shapes.reference_pass:
        frozen = rows * row_tokens * work_per_token(arch) * cb + mask_bytes(shapes, prec, 1)
        scoring = frozen + head_bytes(arch, shapes, prec, train, False)
        terms.append(Term("frozen log-prob pass", scoring, ("scoring",), f"reference / old policy, {chunks}"))
    return terms


def estimate(arch: Arch, shapes: Shapes, prec: Precision, train: Trainable) -> Estimate:
    """Every term of one GRPO step's memory per device; :meth:`Estimate.peak` is the step's peak."""
    terms = state_terms(arch, train, prec) + gradient_terms(shapes, train, prec)
    return Estimate(terms + pass_terms(arch, shapes, prec, train))
