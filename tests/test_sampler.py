"""The rollout's inverse-CDF sampler: HF's filtered distribution, recorded log-probs, and stability under rounding.

A grid of uniforms ``(i + 0.5) / N`` makes the sampler's frequencies its interval widths (to ``1 / N``), so the
distribution is checked exactly rather than statistically.
"""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from vau_r1.policy.rollout import SamplingParams, _sample

GRID = 20_000


def _grid(n: int = GRID) -> torch.Tensor:
    return (torch.arange(n, dtype=torch.float64) + 0.5) / n


def _hf_probs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """``[V]`` probabilities after transformers' temperature, top-k and top-p warpers."""
    scores = logits[None] / params.temperature
    if params.top_k > 0:
        scores = TopKLogitsWarper(params.top_k)(None, scores)
    if params.top_p < 1.0:
        scores = TopPLogitsWarper(params.top_p)(None, scores)
    return torch.softmax(scores[0], dim=-1)


@pytest.mark.parametrize(
    "params", [SamplingParams(1, 1, temperature=0.7, top_k=5), SamplingParams(1, 1, top_p=0.8),
               SamplingParams(1, 1, temperature=1.3, top_k=8, top_p=0.9), SamplingParams(1, 1)],
)  # fmt: skip
def test_frequencies_are_hf_filtered_probabilities(params: SamplingParams) -> None:
    logits = torch.randn(40, generator=torch.Generator().manual_seed(3)) * 2
    uniforms = _grid()
    tokens, logp = _sample(logits.repeat(GRID, 1), params, uniforms, banned=None)
    frequency = torch.bincount(tokens, minlength=40).double() / GRID
    assert torch.allclose(frequency, _hf_probs(logits, params).double(), atol=2 / GRID)
    expected = torch.log_softmax(logits / params.temperature, dim=-1)[tokens]  # unfiltered: what the policy scores
    assert torch.allclose(logp, expected, atol=1e-5)


def test_banned_ids_are_never_drawn_but_keep_their_mass_in_the_logp() -> None:
    logits = torch.zeros(6)
    logits[2] = 5.0  # the banned id holds most of the mass
    tokens, logp = _sample(logits.repeat(GRID, 1), SamplingParams(1, 1, top_k=4), _grid(), torch.tensor([2]))
    assert 2 not in tokens.tolist()
    assert torch.allclose(logp, torch.log_softmax(logits, dim=-1)[tokens])


def test_near_tied_tokens_draw_the_same_token_after_rounding() -> None:
    """A 1e-6 change of near-tied logits (a shared vs repeated prompt cache) changes no draw away from a boundary."""
    logits = torch.randn(64, generator=torch.Generator().manual_seed(0))
    logits[10], logits[40] = 1.5, 1.5 + 1e-6  # nearly tied, inside the top-k
    nudged = logits.clone()
    nudged[10], nudged[40] = 1.5 + 2e-6, 1.5  # their rank swaps
    params, uniforms = SamplingParams(1, 1, top_k=20), _grid()
    first, _ = _sample(logits.repeat(GRID, 1), params, uniforms, None)
    second, _ = _sample(nudged.repeat(GRID, 1), params, uniforms, None)
    assert int((first != second).sum()) <= 2  # at most the grid points within rounding of a moved boundary


def test_a_uniform_just_under_one_never_draws_a_removed_token() -> None:
    logits = torch.tensor([3.0, 2.0, -50.0, -60.0])  # top-p removes the last two
    almost_one = torch.tensor([1.0 - 2.0**-53] * 4, dtype=torch.float64)
    tokens, logp = _sample(logits.repeat(4, 1), SamplingParams(1, 1, top_p=0.9, top_k=3), almost_one, None)
    assert set(tokens.tolist()) <= {0, 1} and bool(torch.isfinite(logp).all())
