"""Token log-probs: the row-wise path and the chunked autograd function against a naive log_softmax."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import pytest
import torch

import vau_r1.policy.logprobs
from vau_r1.policy.logprobs import chunked_logprobs, token_logprobs


def _naive(
    hidden: torch.Tensor, weight: torch.Tensor, tokens: torch.Tensor, temperature: float, bias: torch.Tensor | None
) -> torch.Tensor:
    """Reference: full [N, T, V] logits, log_softmax, gather."""
    logits = torch.nn.functional.linear(hidden, weight, bias) / temperature  # [N, T, V]
    return logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # [N, T]


def _inputs(dtype: torch.dtype, n: int = 3, t: int = 5, h: int = 8, v: int = 11, seed: int = 0) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, t, h, generator=gen, dtype=dtype).requires_grad_()
    weight = torch.randn(v, h, generator=gen, dtype=dtype).requires_grad_()
    bias = torch.randn(v, generator=gen, dtype=dtype).requires_grad_()
    tokens = torch.randint(0, v, (n, t), generator=gen)
    return hidden, weight, bias, tokens


# ---------------------------------------------------------------- token_logprobs


@pytest.mark.parametrize("chunk_size", [1, 3, 512])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_token_logprobs_matches_log_softmax(temperature: float, chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(0)
    full = (torch.randn(3, 6, 50, generator=gen) * 5).requires_grad_()
    logits = full[:, 1:-1]  # non-contiguous, as when slicing completion positions out of model logits
    tokens = torch.randint(0, 50, (3, 4), generator=gen)
    expected = (logits / temperature).log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    out = token_logprobs(logits, tokens, temperature, chunk_size=chunk_size)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    grad_out = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, full, grad_out)
    (expected_grad,) = torch.autograd.grad(expected, full, grad_out)
    torch.testing.assert_close(grad, expected_grad, atol=1e-6, rtol=1e-5)


def test_token_logprobs_hand_computed_and_bf16() -> None:
    # logits [0, ln 3] over 2 classes: p = [1/4, 3/4]; at T = 0.5 logits double → [0, ln 9]: p = [1/10, 9/10]
    logits = torch.tensor([[[0.0, 1.0986123], [0.0, 1.0986123]]])
    tokens = torch.tensor([[0, 1]])
    torch.testing.assert_close(token_logprobs(logits, tokens), torch.log(torch.tensor([[0.25, 0.75]])))
    torch.testing.assert_close(token_logprobs(logits, tokens, 0.5), torch.log(torch.tensor([[0.1, 0.9]])))
    # bf16 logits are upcast per row: float32 out, equal to the fp32 computation on the same values
    bf16 = (torch.randn(2, 3, 40) * 4).bfloat16()
    toks = torch.randint(0, 40, (2, 3))
    out = token_logprobs(bf16, toks)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, token_logprobs(bf16.float(), toks))


def test_token_logprobs_gradient() -> None:
    logits = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, 7, (2, 3))
    assert torch.autograd.gradcheck(lambda x: token_logprobs(x, tokens, 0.8, chunk_size=2), (logits,))


# ---------------------------------------------------------------- chunked_logprobs


@pytest.mark.parametrize("chunk_size", [1, 4, 15, 64])  # 15 rows = N·T exactly; 4 does not divide 15
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_matches_naive_fp32(chunk_size: int, temperature: float) -> None:
    hidden, weight, bias, tokens = _inputs(torch.float32)
    expected = _naive(hidden, weight, tokens, temperature, bias)
    out = chunked_logprobs(hidden, weight, tokens, temperature, chunk_size=chunk_size, lm_head_bias=bias)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    grad_out = torch.randn_like(out)
    grads = torch.autograd.grad(out, (hidden, weight, bias), grad_out)
    expected_grads = torch.autograd.grad(expected, (hidden, weight, bias), grad_out)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("use_bias", [False, True])
def test_chunked_gradcheck_fp64(use_bias: bool) -> None:
    hidden, weight, bias, tokens = _inputs(torch.float64, n=2, t=3, h=4, v=7)

    def fn(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return chunked_logprobs(h, w, tokens, 0.8, chunk_size=4, lm_head_bias=b if use_bias else None)

    assert torch.autograd.gradcheck(fn, (hidden, weight, bias))


def test_chunked_frozen_head_gives_hidden_grad_only() -> None:
    hidden, weight, _, tokens = _inputs(torch.float32)
    weight = weight.detach()  # e.g. LoRA: lm_head is frozen
    chunked_logprobs(hidden, weight, tokens, chunk_size=4).sum().backward()
    (expected,) = torch.autograd.grad(_naive(hidden, weight, tokens, 1.0, None).sum(), hidden)
    torch.testing.assert_close(hidden.grad, expected, atol=1e-5, rtol=1e-4)
    assert weight.grad is None


def test_chunked_bf16_close_to_fp32() -> None:
    hidden, weight, _, tokens = _inputs(torch.float32, h=32, v=64)
    out = chunked_logprobs(hidden.bfloat16(), weight.bfloat16(), tokens, chunk_size=4)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, _naive(hidden, weight, tokens, 1.0, None), atol=0.3, rtol=0.05)


def test_chunked_saves_no_full_logits() -> None:
    # Tensors kept for backward: the naive path keeps [N·T, V] logits; the chunked one only inputs + [N·T].
    hidden, weight, _, tokens = _inputs(torch.float32, n=4, t=16, h=8, v=500)
    full = tokens.numel() * weight.shape[0]

    def max_saved(fn: Callable[[], torch.Tensor]) -> int:
        sizes: list[int] = []
        with torch.autograd.graph.saved_tensors_hooks(lambda x: sizes.append(x.numel()) or x, lambda x: x):
            fn()
        return max(sizes)

    assert max_saved(lambda: _naive(hidden, weight, tokens, 1.0, None)) >= full
    # token_logprobs keeps a reference to the caller's logits, never a new full-size tensor
    logits = (hidden @ weight.T).detach().requires_grad_()
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: saved.append(x) or x, lambda x: x):
        token_logprobs(logits, tokens, chunk_size=16)
    assert all(x.numel() < full or x.data_ptr() == logits.data_ptr() for x in saved)
    largest_input = max(hidden.numel(), weight.numel())  # 4000 < full = 32000
    assert max_saved(lambda: chunked_logprobs(hidden, weight, tokens, chunk_size=16)) <= largest_input


def test_chunked_rejects_bad_arguments() -> None:
    hidden, weight, _, tokens = _inputs(torch.float32)
    with pytest.raises(ValueError, match="temperature > 0"):
        chunked_logprobs(hidden, weight, tokens, temperature=0.0)
    with pytest.raises(ValueError, match="shapes disagree"):
        chunked_logprobs(hidden, weight[:, :3], tokens)


def test_docstring_examples() -> None:
    result = doctest.testmod(vau_r1.policy.logprobs)
    assert result.attempted > 0 and result.failed == 0
