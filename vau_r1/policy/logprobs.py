"""Per-token log-probabilities of sampled tokens, with two memory-lean paths.

* :func:`token_logprobs` starts from logits that already exist (``[N, T, V]``) and adds only one
  full-size tensor (their gradient) by working ``chunk_size`` rows at a time in forward and backward.
  It cannot lower the peak set by the logits themselves (``docs/qwen_vl_notes.md`` item 8).
* :func:`chunked_logprobs` starts from the final hidden states and ``lm_head.weight`` and never holds
  more than ``chunk_size`` rows of logits: a custom autograd function computes each chunk's logits,
  log-sum-exp and gathered target in forward, keeps only the ``[N*T]`` log-sum-exp, and recomputes
  the chunk's logits in backward. For Qwen2.5-VL, take ``hidden = model.model(...).last_hidden_state``
  at positions ``P-1 .. P+L-2`` (each position predicts the next token) and ``model.lm_head.weight``.

Both divide the logits by ``temperature`` before the softmax, as sampling does, and return
float32 (float64 for float64 inputs).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx, once_differentiable

DEFAULT_CHUNK_TOKENS = 512  # 512 × 151,936 vocab × 4 B ≈ 0.3 GB of fp32 logits per chunk


def _out_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half/bfloat16/float32 inputs, float64 for float64."""
    return torch.promote_types(dtype, torch.float32)


def _row_chunks(num_rows: int, length: int, chunk_size: int) -> Iterator[tuple[int, slice]]:
    """``(n, slice)`` pairs covering an ``[N, T]`` grid with at most ``chunk_size`` positions each."""
    for n in range(num_rows):
        for start in range(0, length, chunk_size):
            yield n, slice(start, start + chunk_size)


class _RowwiseLogprobs(torch.autograd.Function):
    """Autograd function behind :func:`token_logprobs`; works on strided ``[N, T, V]`` logits without a copy."""

    @staticmethod
    def forward(
        ctx: FunctionCtx, logits: torch.Tensor, tokens: torch.Tensor, temperature: float, chunk_size: int
    ) -> torch.Tensor:
        logp = torch.empty(tokens.shape, dtype=_out_dtype(logits.dtype), device=logits.device)  # [N, T]
        lse = torch.empty_like(logp)  # [N, T]
        for n, cols in _row_chunks(*tokens.shape, chunk_size):
            scaled = logits[n, cols].to(logp.dtype) / temperature  # [C, V], a copy: never touches the input
            lse[n, cols] = torch.logsumexp(scaled, dim=-1)
            logp[n, cols] = scaled.gather(-1, tokens[n, cols, None]).squeeze(-1) - lse[n, cols]
        ctx.save_for_backward(logits, tokens, lse)  # the caller's logits: no extra memory
        ctx.temperature, ctx.chunk_size = temperature, chunk_size
        return logp

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_logp: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        logits, tokens, lse = ctx.saved_tensors
        grad_logits = torch.empty_like(logits)  # [N, T, V], the only full-size buffer
        for n, cols in _row_chunks(*tokens.shape, ctx.chunk_size):
            g = grad_logp[n, cols].to(lse.dtype).unsqueeze(1)  # [C, 1]
            scaled = logits[n, cols].to(lse.dtype) / ctx.temperature  # [C, V]
            # d logp / d logits = (onehot(token) - softmax) / temperature
            d_logits = torch.exp_(scaled.sub_(lse[n, cols, None])).mul_(-g)
            d_logits.scatter_add_(1, tokens[n, cols, None], g)
            grad_logits[n, cols] = d_logits.div_(ctx.temperature)
        return grad_logits, None, None, None


def token_logprobs(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0, chunk_size: int = DEFAULT_CHUNK_TOKENS
) -> torch.Tensor:
    """Log-probability of each token under ``softmax(logits / temperature)``, ``chunk_size`` rows at a time.

    Forward keeps only the ``[N*T]`` log-sum-exp besides the caller's logits; backward writes the one
    ``[N, T, V]`` gradient buffer chunk by chunk (a plain ``log_softmax().gather()`` holds ~3 full-size
    tensors at its backward peak).

    Args:
        logits: ``[N, T, V]`` raw logits; position ``t`` scores ``tokens[:, t]``.
        tokens: ``[N, T]`` int64 token ids in ``[0, V)``.
        temperature: sampling temperature (> 0); logits are divided by it first.
        chunk_size: positions of one sequence upcast and processed at once.

    Returns:
        ``[N, T]`` log-probs (float32, or float64 for float64 logits).

    Example:
        >>> token_logprobs(torch.zeros(1, 2, 4), torch.tensor([[0, 3]]))  # uniform over 4 → log(1/4)
        tensor([[-1.3863, -1.3863]])
    """
    if temperature <= 0 or chunk_size < 1:
        raise ValueError(f"need temperature > 0 and chunk_size >= 1; got {temperature}, {chunk_size}")
    if logits.shape[:2] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and tokens {tuple(tokens.shape)} disagree on [N, T]")
    return _RowwiseLogprobs.apply(logits, tokens.long(), temperature, chunk_size)


def _chunk_logits(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, temperature: float
) -> torch.Tensor:
    """``[C, V]`` logits ``(h W^T + b) / temperature`` in the output dtype, matmul in ``weight``'s dtype."""
    logits = F.linear(hidden.to(weight.dtype), weight, bias).to(_out_dtype(weight.dtype))
    return logits / temperature if temperature != 1.0 else logits


class _ChunkedLogprobs(torch.autograd.Function):
    """Autograd function behind :func:`chunked_logprobs`; inputs are flattened to ``[M, H]`` / ``[M]``."""

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        hidden: torch.Tensor,  # [M, H]
        weight: torch.Tensor,  # [V, H]
        bias: torch.Tensor | None,  # [V]
        tokens: torch.Tensor,  # [M]
        temperature: float,
        chunk_size: int,
    ) -> torch.Tensor:
        out_dtype = _out_dtype(weight.dtype)
        logp = torch.empty(hidden.shape[0], dtype=out_dtype, device=hidden.device)  # [M]
        lse = torch.empty_like(logp)  # [M], all that backward needs besides the inputs
        for start in range(0, hidden.shape[0], chunk_size):
            end = start + chunk_size
            logits = _chunk_logits(hidden[start:end], weight, bias, temperature)  # [C, V]
            lse[start:end] = torch.logsumexp(logits, dim=-1)
            logp[start:end] = logits.gather(-1, tokens[start:end, None]).squeeze(-1) - lse[start:end]
        ctx.save_for_backward(hidden, weight, bias, tokens, lse)
        ctx.temperature, ctx.chunk_size = temperature, chunk_size
        return logp

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_logp: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden, weight, bias, tokens, lse = ctx.saved_tensors
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        # Accumulate the weight gradient across chunks in at least fp32 (V×H×4 bytes) to avoid bf16 round-off.
        acc_dtype = _out_dtype(weight.dtype)
        grad_weight = torch.zeros(weight.shape, dtype=acc_dtype, device=weight.device) if need_weight else None
        grad_bias = torch.zeros(weight.shape[0], dtype=acc_dtype, device=weight.device) if need_bias else None
        for start in range(0, hidden.shape[0], ctx.chunk_size):
            end = start + ctx.chunk_size
            h = hidden[start:end].to(weight.dtype)  # [C, H]
            logits = _chunk_logits(h, weight, bias, ctx.temperature)  # [C, V]
            g = grad_logp[start:end].to(logits.dtype).unsqueeze(1)  # [C, 1]
            # d logp / d logits = onehot(token) - softmax; reuse the logits buffer for the gradient.
            d_logits = torch.exp_(logits.sub_(lse[start:end, None])).mul_(-g)  # [C, V]
            d_logits.scatter_add_(1, tokens[start:end, None], g)
            if ctx.temperature != 1.0:
                d_logits.div_(ctx.temperature)  # chain rule through logits / temperature
            d_logits = d_logits.to(weight.dtype)
            if need_hidden:
                grad_hidden[start:end] = d_logits @ weight  # [C, H]
            if need_weight and grad_weight.dtype == h.dtype:
                grad_weight.addmm_(d_logits.T, h)  # [V, H], no temporary
            elif need_weight:
                grad_weight.add_(d_logits.T @ h)  # [V, H] low-precision product, fp32 accumulator
            if need_bias:
                grad_bias.add_(d_logits.sum(dim=0))  # [V]
        grad_weight = None if grad_weight is None else grad_weight.to(weight.dtype)
        grad_bias = None if grad_bias is None else grad_bias.to(bias.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None, None


def chunked_logprobs(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    tokens: torch.Tensor,
    temperature: float = 1.0,
    chunk_size: int = DEFAULT_CHUNK_TOKENS,
    lm_head_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-probs of ``tokens`` under ``softmax((hidden @ W^T + b) / temperature)`` without full logits.

    Peak extra memory is about two ``[chunk_size, V]`` buffers (plus a ``[V, H]`` fp32 accumulator when
    ``lm_head_weight`` requires grad) instead of several ``[N*T, V]`` tensors. Gradients flow to
    ``hidden``, ``lm_head_weight`` and ``lm_head_bias`` (each only if it requires grad); double backward
    is not supported.

    Args:
        hidden: ``[N, T, H]`` final hidden states; position ``t`` predicts ``tokens[:, t]``.
        lm_head_weight: ``[V, H]`` output projection (``model.lm_head.weight``).
        tokens: ``[N, T]`` int64 token ids in ``[0, V)``.
        temperature: sampling temperature (> 0); logits are divided by it first.
        chunk_size: rows of the flattened ``N*T`` token axis processed at once.
        lm_head_bias: optional ``[V]`` output bias.

    Returns:
        ``[N, T]`` log-probs, float32 (float64 for a float64 weight).
    """
    if temperature <= 0 or chunk_size < 1:
        raise ValueError(f"need temperature > 0 and chunk_size >= 1; got {temperature}, {chunk_size}")
    if hidden.shape[:2] != tokens.shape or hidden.shape[-1] != lm_head_weight.shape[1]:
        raise ValueError(
            f"shapes disagree: hidden {tuple(hidden.shape)} must be [N, T, H] with tokens {tuple(tokens.shape)} "
            f"= [N, T] and lm_head_weight {tuple(lm_head_weight.shape)} = [V, H]"
        )
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])  # [N*T, H]
    flat_tokens = tokens.reshape(-1).long()  # [N*T]
    logp = _ChunkedLogprobs.apply(flat_hidden, lm_head_weight, lm_head_bias, flat_tokens, temperature, chunk_size)
    return logp.view(tokens.shape)
