"""GRPO policy loss: hand-computed aggregation, clipping, KL, masking, gradients and equivalences."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

import vau_r1.grpo.loss
from vau_r1.grpo.loss import kl_k3, policy_loss, truncation_mask

LN2 = math.log(2.0)


def _toy() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two completions of lengths 3 and 2 (L = 3), advantages +1 and -2; on-policy, so ratio ≡ 1."""
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-1.5, -0.2, -9.0]], requires_grad=True)  # [2, 3]
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])  # [2, 3]
    adv = torch.tensor([1.0, -2.0])  # [2]
    return logp, mask, adv


# ---------------------------------------------------------------- kl_k3 and truncation_mask


def test_kl_k3_hand_computed() -> None:
    # δ = ref - logp: δ=0 → 0; δ=ln2 → 2 - ln2 - 1 = 0.306853; δ=-ln2 → 0.5 + ln2 - 1 = 0.193147
    logp = torch.tensor([[-1.0, -1.0, -1.0]])
    ref = logp + torch.tensor([[0.0, LN2, -LN2]])
    torch.testing.assert_close(kl_k3(logp, ref), torch.tensor([[0.0, 1.0 - LN2, LN2 - 0.5]]))


def test_truncation_mask_zeroes_truncated_rows() -> None:
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    out = truncation_mask(mask, torch.tensor([False, True, False]))
    assert torch.equal(out, torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 0]]))
    assert out.dtype == mask.dtype


# ---------------------------------------------------------------- aggregation, hand-computed


@pytest.mark.parametrize(
    ("loss_type", "kwargs", "expected"),
    [
        # per-token loss = -A·ratio = -A: row 0 [-1, -1, -1], row 1 [2, 2, (masked)]
        ("grpo", {}, (-3 / 3 + 4 / 2) / 2),  # per-sequence means -1 and 2 → 0.5
        ("bnpo", {}, (-3 + 4) / 5),  # token mean over 5 tokens → 0.2
        ("dr_grpo", {"max_completion_length": 4}, (-3 + 4) / (2 * 4)),  # N·max_len = 8 → 0.125
        ("dapo", {"num_items_in_batch": 10}, (-3 + 4) / 10),  # global token count → 0.1
        ("dapo", {}, (-3 + 4) / 5),  # falls back to the local token count → 0.2
    ],
)
def test_loss_types_hand_computed(loss_type: str, kwargs: dict, expected: float) -> None:
    logp, mask, adv = _toy()
    loss, stats = policy_loss(logp, None, adv, mask, epsilon=0.2, loss_type=loss_type, **kwargs)
    assert loss.item() == pytest.approx(expected)
    assert stats.ratio.item() == 1.0 and stats.clip_region.item() == 0.0
    assert stats.kl is None


def test_kl_term_hand_computed() -> None:
    # KL = 1 - ln2 = 0.306853 at token (0, 1) only; β = 0.1.
    # grpo: row 0 = (-1 - 1 + 0.1·0.306853 - 1)/3, row 1 = (2 + 2)/2 → mean
    logp, mask, adv = _toy()
    ref = logp.detach().clone()
    ref[0, 1] += LN2
    ref[1, 2] = 50.0  # masked position: must not count
    loss, stats = policy_loss(logp, None, adv, mask, epsilon=0.2, beta=0.1, ref_logp=ref)
    kl = 1.0 - LN2
    assert loss.item() == pytest.approx(((-3 + 0.1 * kl) / 3 + 2) / 2)
    assert stats.kl.item() == pytest.approx(kl / 5)  # masked token mean


def test_beta_zero_ignores_ref_logp() -> None:
    logp, mask, adv = _toy()
    ref = torch.randn(2, 3)
    loss_ref, stats_ref = policy_loss(logp, None, adv, mask, epsilon=0.2, beta=0.0, ref_logp=ref)
    loss_none, stats_none = policy_loss(logp, None, adv, mask, epsilon=0.2, beta=0.0, ref_logp=None)
    assert loss_ref.item() == loss_none.item()
    assert stats_none.kl is None and stats_ref.kl is not None  # KL is still reported for logging
    with pytest.raises(ValueError, match="needs ref_logp"):
        policy_loss(logp, None, adv, mask, epsilon=0.2, beta=0.04)


# ---------------------------------------------------------------- clipping


def test_clipping_hand_computed() -> None:
    # Four one-token sequences (grpo = plain mean over 4), ε = 0.2:
    #   ratio 1.5, A=+1: min(1.5, 1.2) = 1.2  → loss -1.2, clipped high, no gradient
    #   ratio 0.5, A=+1: min(0.5, 0.8) = 0.5  → loss -0.5, not clipped, dℓ/dlogp = -A·ratio = -0.5
    #   ratio 0.5, A=-1: min(-0.5, -0.8) = -0.8 → loss 0.8, clipped low, no gradient
    #   ratio 1.5, A=-1: min(-1.5, -1.2) = -1.5 → loss 1.5, not clipped, dℓ/dlogp = 1.5
    old = torch.zeros(4, 1)
    logp = torch.log(torch.tensor([[1.5], [0.5], [0.5], [1.5]])).requires_grad_()
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    mask = torch.ones(4, 1)
    loss, stats = policy_loss(logp, old, adv, mask, epsilon=0.2)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 0.8 + 1.5) / 4)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0], [-0.5 / 4], [0.0], [1.5 / 4]]))
    assert (stats.clip_low.item(), stats.clip_high.item(), stats.clip_region.item()) == (0.25, 0.25, 0.5)
    assert stats.ratio.item() == pytest.approx(1.0)
    # clip-higher: ε_high = 0.6 leaves ratio 1.5 unclipped for A > 0 → first loss becomes -1.5
    loss, stats = policy_loss(logp, old, adv, mask, epsilon=0.2, epsilon_high=0.6)
    assert loss.item() == pytest.approx((-1.5 - 0.5 + 0.8 + 1.5) / 4)
    assert stats.clip_high.item() == 0.0 and stats.clip_low.item() == 0.25


# ---------------------------------------------------------------- on-policy, masking, gradients


def test_on_policy_matches_paper_formula_and_gradient() -> None:
    # docs/paper.md §6.1 step 9, written literally: ℓ = -(exp(logp - sg(logp))·A - β·KL), per-sequence mean.
    gen = torch.Generator().manual_seed(0)
    logp = (-torch.rand(3, 5, generator=gen) * 3).requires_grad_()
    ref = -torch.rand(3, 5, generator=gen) * 3
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    adv = torch.tensor([0.7, -1.3, 0.4])
    beta = 0.04
    per_token = -(torch.exp(logp - logp.detach()) * adv[:, None] - beta * kl_k3(logp, ref))
    expected = ((per_token * mask).sum(1) / mask.sum(1)).mean()
    (expected_grad,) = torch.autograd.grad(expected, logp)
    loss, stats = policy_loss(logp, None, adv, mask, epsilon=0.2, beta=beta, ref_logp=ref)
    (grad,) = torch.autograd.grad(loss, logp)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grad, expected_grad)
    assert stats.ratio.item() == 1.0
    torch.testing.assert_close(stats.kl, (kl_k3(logp, ref) * mask).sum() / mask.sum())
    # old_logp=None is the same as passing logp.detach()
    loss2, _ = policy_loss(logp, logp.detach(), adv, mask, epsilon=0.2, beta=beta, ref_logp=ref)
    torch.testing.assert_close(loss2, loss)


def test_empty_rows_and_garbage_padding_stay_finite() -> None:
    # Row 1 is fully masked (e.g. a truncated completion) and holds -inf/NaN; padding holds NaN too.
    logp = torch.tensor([[-1.0, -2.0, float("nan")], [float("-inf"), float("nan"), -1.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.0, float("inf")], [0.0, 0.0, 0.0]])
    ref = torch.full((2, 3), float("nan"))
    ref[0, :2] = logp.detach()[0, :2]
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    adv = torch.tensor([1.0, 5.0])
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
        loss, stats = policy_loss(
            logp, old, adv, mask, epsilon=0.2, beta=0.1, ref_logp=ref, loss_type=loss_type, max_completion_length=3
        )
        (grad,) = torch.autograd.grad(loss, logp)
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), loss_type
        assert all(torch.isfinite(x) for x in stats), loss_type
        assert (grad[1] == 0).all() and grad[0, 2] == 0
    # grpo: the empty row counts in the mean over N = 2: (-2/2 + 0)/2 = -0.5
    loss, _ = policy_loss(logp, old, adv, mask, epsilon=0.2)
    assert loss.item() == pytest.approx(-0.5)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_sgd_step_moves_sampled_token_with_advantage(loss_type: str, sign: float) -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6, requires_grad=True)  # [N, L, V]
    tokens = torch.randint(0, 6, (2, 4))
    mask = torch.ones(2, 4)

    def sampled_logp() -> torch.Tensor:
        return logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)  # [N, L]

    before = sampled_logp().detach()
    loss, _ = policy_loss(
        sampled_logp(), None, torch.full((2,), sign), mask, epsilon=0.2, loss_type=loss_type, max_completion_length=4
    )
    loss.backward()
    with torch.no_grad():
        logits -= 1.0 * logits.grad
    change = sampled_logp().detach() - before
    assert (sign * change > 0).all()


# ---------------------------------------------------------------- equivalences and errors


def test_equivalences_when_lengths_are_equal() -> None:
    gen = torch.Generator().manual_seed(1)
    n, length, max_len = 4, 6, 10
    logp = -torch.rand(n, length, generator=gen)
    old = logp + 0.3 * torch.randn(n, length, generator=gen)  # off-policy, some tokens clipped
    adv = torch.randn(n, generator=gen)
    mask = torch.ones(n, length)
    kw = {"epsilon": 0.2, "beta": 0.05, "ref_logp": -torch.rand(n, length, generator=gen)}
    grpo, stats = policy_loss(logp, old, adv, mask, loss_type="grpo", **kw)
    bnpo, _ = policy_loss(logp, old, adv, mask, loss_type="bnpo", **kw)
    dapo, _ = policy_loss(logp, old, adv, mask, loss_type="dapo", **kw)
    dr, _ = policy_loss(logp, old, adv, mask, loss_type="dr_grpo", max_completion_length=max_len, **kw)
    assert stats.clip_region.item() > 0
    torch.testing.assert_close(bnpo, grpo)
    torch.testing.assert_close(dapo, grpo)
    torch.testing.assert_close(dr, grpo * length / max_len)


def test_invalid_arguments_raise() -> None:
    logp, mask, adv = _toy()
    with pytest.raises(ValueError, match="Unknown loss_type 'ppo'"):
        policy_loss(logp, None, adv, mask, epsilon=0.2, loss_type="ppo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_completion_length"):
        policy_loss(logp, None, adv, mask, epsilon=0.2, loss_type="dr_grpo")


def test_stats_as_metrics() -> None:
    logp, mask, adv = _toy()
    _, stats = policy_loss(logp, None, adv, mask, epsilon=0.2, ref_logp=logp.detach())
    metrics = stats.as_metrics()
    assert metrics == {
        "train/clip_ratio/low": 0.0,
        "train/clip_ratio/high": 0.0,
        "train/clip_ratio/region": 0.0,
        "train/ratio": 1.0,
        "train/kl": 0.0,
    }


def test_docstring_examples() -> None:
    result = doctest.testmod(vau_r1.grpo.loss)
    assert result.attempted > 0 and result.failed == 0
