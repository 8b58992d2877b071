"""Reward combination and group-relative advantages, against hand-computed values and the paper's formula."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import vau_r1.grpo.advantages
from vau_r1.grpo.advantages import combine_rewards, group_advantages

NAN = float("nan")


# ---------------------------------------------------------------- combine_rewards


def test_combine_rewards_weighted_nansum() -> None:
    per_func = torch.tensor(
        [
            [1.0, 0.5, 1.0],  # 1·1 + 2·0.5 + 0.5·1 = 2.5
            [NAN, 1.0, 0.0],  # NaN skipped: 2·1 + 0.5·0 = 2.0
            [0.0, NAN, NAN],  # one scored function returning 0 stays 0, not NaN
            [NAN, NAN, NAN],  # unscorable → NaN
        ]
    )
    total = combine_rewards(per_func, [1.0, 2.0, 0.5])
    torch.testing.assert_close(total[:3], torch.tensor([2.5, 2.0, 0.0]))
    assert math.isnan(total[3].item())


def test_combine_rewards_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="one per reward function"):
        combine_rewards(torch.zeros(3, 2), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        combine_rewards(torch.zeros(3), [1.0])


# ---------------------------------------------------------------- group_advantages: hand-computed


def test_group_scale_unbiased_std_hand_computed() -> None:
    # Group 0 = [1, 0, 0, 1]: mean 0.5, deviations ±0.5, unbiased var = 4·0.25/3 = 1/3, std = 0.577350
    #   → A = ±0.5 / (0.577350 + 1e-4) = ±0.865876
    # Group 1 = [3, 1, 2, 2]: mean 2, deviations [1, -1, 0, 0], var = 2/3, std = 0.816497
    #   → A = ±1 / (0.816497 + 1e-4) = ±1.224590, 0, 0
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 3.0, 1.0, 2.0, 2.0])
    out = group_advantages(rewards, num_generations=4)
    a, b = 0.5 / (math.sqrt(1 / 3) + 1e-4), 1.0 / (math.sqrt(2 / 3) + 1e-4)
    torch.testing.assert_close(out.values, torch.tensor([a, -a, -a, a, b, -b, 0.0, 0.0]))
    torch.testing.assert_close(out.group_std, torch.tensor([math.sqrt(1 / 3), math.sqrt(2 / 3)]))
    assert out.frac_zero_std.item() == 0.0


def test_group_scale_population_std() -> None:
    # [1, 0, 0, 1]: population std = 0.5 → A = ±0.5 / 0.5001 = ±0.999800
    out = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 4, std_unbiased=False)
    a = 0.5 / 0.5001
    torch.testing.assert_close(out.values, torch.tensor([a, -a, -a, a]))


def test_matches_paper_formula_with_torch_std() -> None:
    # docs/paper.md §6.1 step 8: (r - mean_g) / (torch.std(r_g) + 1e-4), unbiased std, per group of G.
    gen = torch.Generator().manual_seed(0)
    rewards = torch.rand(6 * 4, generator=gen) * 3
    grouped = rewards.view(6, 4)
    expected = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)
    torch.testing.assert_close(group_advantages(rewards, 4).values, expected.view(-1))


def test_batch_scale_hand_computed() -> None:
    # Groups (G=2): [1, 0] mean 0.5, [3, 3] mean 3 (zero std → exactly 0).
    # Batch [1, 0, 3, 3]: mean 1.75, squared deviations 0.5625+3.0625+1.5625+1.5625 = 6.75,
    #   unbiased var 6.75/3 = 2.25, std 1.5 → A = ±0.5 / 1.5001 = ±0.333311
    rewards = torch.tensor([1.0, 0.0, 3.0, 3.0])
    out = group_advantages(rewards, 2, scale="batch")
    a = 0.5 / 1.5001
    torch.testing.assert_close(out.values, torch.tensor([a, -a, 0.0, 0.0]))
    assert out.frac_zero_std.item() == 0.5
    # A precomputed cross-rank std replaces the local one: ±0.5 / 2.0001
    out = group_advantages(rewards, 2, scale="batch", batch_std=torch.tensor(2.0))
    torch.testing.assert_close(out.values, torch.tensor([0.5 / 2.0001, -0.5 / 2.0001, 0.0, 0.0]))


def test_none_scale_is_mean_centred_only() -> None:
    # Dr. GRPO: no division. [1, 0] → ±0.5; [4, 0, 2, 2] group mean 2 → [2, -2, 0, 0]
    out = group_advantages(torch.tensor([1.0, 0.0, 4.0, 0.0]), 2, scale="none")
    torch.testing.assert_close(out.values, torch.tensor([0.5, -0.5, 2.0, -2.0]))
    out = group_advantages(torch.tensor([4.0, 0.0, 2.0, 2.0]), 4, scale="none")
    torch.testing.assert_close(out.values, torch.tensor([2.0, -2.0, 0.0, 0.0]))


# ---------------------------------------------------------------- zero variance and NaN rows


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_zero_variance_group_is_exactly_zero(scale: str) -> None:
    # 8 × 0.3 in float32: mean(x) differs from 0.3 by ~3e-8, so a naive (r - mean)/(std + 1e-4) gives ~3e-4.
    rewards = torch.cat([torch.full((8,), 0.3), torch.tensor([1.0, 0.0] * 4)])
    out = group_advantages(rewards, 8, scale=scale)
    assert torch.equal(out.values[:8], torch.zeros(8))
    assert out.values[8:].abs().min() > 0.1
    assert out.frac_zero_std.item() == 0.5


def test_nan_rows_are_ignored_and_get_zero() -> None:
    # Group 0 = [1, NaN, 0, NaN]: scored [1, 0], mean 0.5, unbiased std √0.5 → ±0.5/(0.707107+1e-4)
    # Group 1 = [NaN, 2, NaN, NaN]: a single scored row → zero std, all 0
    # Group 2 = all NaN → all 0
    rewards = torch.tensor([1.0, NAN, 0.0, NAN, NAN, 2.0, NAN, NAN, NAN, NAN, NAN, NAN])
    out = group_advantages(rewards, 4)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    expected = torch.tensor([a, 0.0, -a, 0.0] + [0.0] * 8)
    torch.testing.assert_close(out.values, expected)
    assert torch.isfinite(out.values).all()
    torch.testing.assert_close(out.group_std, torch.tensor([math.sqrt(0.5), 0.0, 0.0]))
    assert out.frac_zero_std.item() == pytest.approx(2 / 3)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="Unknown advantage scale 'groups'"):
        group_advantages(torch.zeros(4), 2, scale="groups")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="divisible by num_generations=4"):
        group_advantages(torch.zeros(6), 4)


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(
        st.lists(st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])), min_size=4, max_size=4),
        min_size=1,
        max_size=5,
    ),
    scale=st.sampled_from(["group", "batch", "none"]),
)
def test_properties(groups: list[list[float | None]], scale: str) -> None:
    rewards = torch.tensor([NAN if r is None else r for g in groups for r in g])
    out = group_advantages(rewards, 4, scale=scale)  # type: ignore[arg-type]
    adv = out.values.view(-1, 4)
    assert torch.isfinite(adv).all()
    # Advantages of the scored rows of a group sum to 0 (mean-centred); unscored rows are 0.
    torch.testing.assert_close(adv.sum(1), torch.zeros(len(groups)), atol=1e-4, rtol=0)
    assert (adv[rewards.view(-1, 4).isnan()] == 0).all()
    # Ordering within a group is preserved: a higher reward never gets a lower advantage.
    for g_rewards, g_adv in zip(rewards.view(-1, 4), adv, strict=True):
        scored = ~g_rewards.isnan()
        order = g_rewards[scored].argsort()
        assert (g_adv[scored][order].diff() >= -1e-6).all()


def test_docstring_examples() -> None:
    result = doctest.testmod(vau_r1.grpo.advantages)
    assert result.attempted > 0 and result.failed == 0
