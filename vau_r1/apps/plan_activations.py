"""Activation arithmetic of ``vau-r1 plan``: what the passes of one GRPO step hold besides the persistent state.

Every count is bytes = elements x dtype size, with the element counts of what autograd keeps for backward in
transformers' Qwen2/2.5-VL layers (:func:`lm_saved_per_token`), of the log-prob head's vocabulary-wide buffers
(:func:`head_bytes`, after :mod:`vau_r1.policy.logprobs`) and of the sampler's (:func:`sampling_bytes`, after
:mod:`vau_r1.policy.rollout`). Nothing is fitted to a measurement.
"""

from __future__ import annotations

from vau_r1.apps.plan_terms import FP32, FP64, Arch, Precision, Shapes, Trainable

#: Elements autograd keeps per token and decoder layer, per unit of hidden size ``H``: input norm (normalised,
#: scaled) 2, rotated q 1, attention output 1, its contiguous copy for o_proj 1, residual 1, post-attention norm 2,
#: residual 1 (the next layer's input).
LM_SAVED_PER_H = 9
#: ... per unit of key/value width: rotated k and v, saved by attention.
LM_SAVED_PER_KV = 2
#: ... per unit of MLP width (SwiGLU): gate, up, silu(gate), silu(gate) * up.
LM_SAVED_PER_I = 4
#: ... of which float32 whatever the compute dtype: the normalised hidden state of each of the two RMSNorms.
LM_SAVED_FP32_PER_H = 2
#: Elements live per token in one layer of a pass without gradients (hidden, norm, attention out; gate, up, act).
WORK_PER_H, WORK_PER_KV, WORK_PER_I = 3, 2, 3
#: Elements per token outside the layers: input embeddings, the video scatter, the final norm (3).
LM_SAVED_OUTSIDE_PER_H = 4
#: GELU-MLP (Qwen2-VL vision) keeps fc1's output and the GELU output: 2 per unit of MLP width.
GELU_SAVED_PER_I = 2
#: Values of one vision patch: channels 3 x temporal patch 2 x 14 x 14 pixels.
PATCH_VALUES = 3 * 2 * 14 * 14
#: Positions of one row the full-logits path (:func:`~vau_r1.policy.logprobs.token_logprobs`) upcasts at once.
ROW_CHUNK_TOKENS = 512


def lm_saved_per_token(arch: Arch) -> int:
    """Elements kept for backward per token by one decoder layer (see :data:`LM_SAVED_PER_H`)."""
    return LM_SAVED_PER_H * arch.hidden + LM_SAVED_PER_KV * arch.kv_dim + LM_SAVED_PER_I * arch.intermediate


def work_per_token(arch: Arch) -> int:
    """Elements live per token in one decoder layer of a pass without gradients."""
    return WORK_PER_H * arch.hidden + WORK_PER_KV * arch.kv_dim + WORK_PER_I * arch.intermediate


def vision_saved_per_patch(arch: Arch) -> int:
    """Elements kept per patch by one vision block (full-width q, k, v: no grouped heads in the vision tower)."""
    mlp = LM_SAVED_PER_I if arch.vision_gated else GELU_SAVED_PER_I
    return (LM_SAVED_PER_H + LM_SAVED_PER_KV) * arch.vision_hidden + mlp * arch.vision_intermediate


def mask_bytes(shapes: Shapes, prec: Precision, saved_layers: int) -> float:
    """The 4-D attention mask of padded (or packed) rows: a bool ``[rows, 1, T, T]`` once, and under sdpa a
    float32 copy per layer, which ``scaled_dot_product_attention`` makes from a bool mask and keeps for backward
    (``saved_layers`` of them). Eager attention adds the mask in the compute dtype once; flash-attention 2 unpads.
    """
    attention = "sdpa" if shapes.share_prompt and prec.attention == "flash_attention_2" else prec.attention
    if attention == "flash_attention_2" or not (shapes.padded or shapes.share_prompt):
        return 0.0  # the packed pass switches flash-attention 2 to sdpa (grpo.share_prompt)
    square = shapes.rows * shapes.row_tokens**2
    if attention == "eager":
        return square * (1 + prec.compute_bytes)
    return square * (1 + FP32 * saved_layers)


def lm_activation_bytes(arch: Arch, shapes: Shapes, prec: Precision, train: Trainable) -> float:
    """Saved activations of the language model over ``rows x row_tokens`` (the policy pass, with gradients)."""
    tokens, cb = shapes.rows * shapes.row_tokens, prec.compute_bytes
    per_layer_bytes = lm_saved_per_token(arch) * cb + LM_SAVED_FP32_PER_H * arch.hidden * (FP32 - cb)
    if train.lora_dropout:
        per_layer_bytes += (6 * arch.hidden + arch.intermediate) * (cb + 1)  # dropped input copies + masks
    attention = arch.heads * shapes.row_tokens**2 * shapes.rows * (FP32 + (cb if cb < FP32 else 0))
    layer = tokens * per_layer_bytes + (attention if prec.attention == "eager" else 0)
    stored = arch.layers * layer
    if prec.gradient_checkpointing:  # layer inputs only, and one layer recomputed at a time
        stored = arch.layers * tokens * arch.hidden * cb + layer
    return stored + tokens * LM_SAVED_OUTSIDE_PER_H * arch.hidden * cb


def vision_activation_bytes(arch: Arch, shapes: Shapes, prec: Precision, train: Trainable) -> float:
    """Saved activations of the vision tower (once per video with ``reuse_vision``, else ``G`` times)."""
    if not train.vision:
        return 0.0
    videos = shapes.prompts * (1 if shapes.reuse_vision else shapes.generations)
    patches = videos * shapes.visual_tokens * shapes.merge**2
    block = patches * vision_saved_per_patch(arch) * prec.compute_bytes
    blocks = arch.vision_depth * block
    if prec.gradient_checkpointing:
        blocks = arch.vision_depth * patches * arch.vision_hidden * prec.compute_bytes + block
    merger = patches * 3 * arch.vision_hidden * prec.compute_bytes  # merger norm, fc1 and GELU outputs
    return blocks + merger


def head_weight_bytes(prec: Precision, train: Trainable) -> int:
    """Bytes per element of the LM head's weight: trained heads are fp32 masters outside DeepSpeed."""
    if train.head and not prec.strategy.startswith("zero"):
        return FP32
    return prec.weight_bytes


def head_bytes(arch: Arch, shapes: Shapes, prec: Precision, train: Trainable, with_grad: bool) -> float:
    """The log-prob head's working set at its peak: vocabulary-wide logits (or chunks of them) and, in the
    policy pass, the head's gradient (a ``[V, H]`` accumulator in at least fp32), the first gradient of the
    backward. It is the larger of the forward's and the backward's moments.

    Chunked (``grpo.logprob_chunk_tokens``): in forward a ``[C, V]`` chunk of fp32 logits and the temporary of
    the same size ``torch.logsumexp`` makes inside its kernel (real memory, invisible to a dispatch-level
    tracker); in backward the chunk, its ``/ T`` copy (``T != 1``) and its cast back to a low-precision weight.
    Full logits: ``[N, L+1, V]`` in the compute dtype, their gradient of the same size in backward, and
    ``[min(L, 512), V]`` fp32 copies.
    """
    V, hb = arch.vocab, head_weight_bytes(prec, train)
    grad = with_grad and train.head
    head_grad = arch.head_elements * (FP32 + (hb if hb < FP32 else 0)) if grad else 0  # accumulator (+ its cast)
    chunk = shapes.logprob_chunk_tokens
    if chunk is None:
        logits = shapes.prompts * shapes.generations * (shapes.completion_tokens + 1) * V * prec.compute_bytes
        copies = 2 * min(ROW_CHUNK_TOKENS, shapes.completion_tokens) * V * FP32  # upcast + logsumexp temporary
        forward = logits + copies
        return max(forward, 2 * logits + copies / 2, logits + head_grad) if with_grad else forward
    rows = min(chunk, shapes.scored_tokens) * V
    forward = rows * 2 * FP32  # the chunk's fp32 logits (/ T) and logsumexp's temporary of the same size
    if not with_grad:
        return forward
    divided = FP32 if shapes.temperature != 1.0 else 0
    backward = rows * (FP32 + divided + (hb if hb < FP32 else 0))  # fp32 logits, / T, cast back to the weight
    hidden_grad = shapes.scored_tokens * arch.hidden * prec.compute_bytes
    return max(forward, backward + head_grad + hidden_grad)


def sampling_bytes(arch: Arch, shapes: Shapes, prec: Precision) -> float:
    """One decode step of the sampler over ``B*G`` rows: the previous and the new logits ``[B*G, V]``, their
    fp32 upcast (low precision), and two float64 ``[B*G, V]`` tensors (probabilities, their cumulative sum)."""
    cb = prec.compute_bytes
    per_element = 2 * cb + (FP32 if cb < FP32 else 0) + 2 * FP64
    return shapes.prompts * shapes.generations * arch.vocab * per_element
