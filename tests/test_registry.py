"""Reward registry: registration, lookup (short names and dotted paths), config specs, weighted scoring."""

from __future__ import annotations

import doctest
import math
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vau_r1.rewards import (
    REWARDS,
    WeightedReward,
    accuracy_reward,
    build_rewards,
    format_reward,
    get_reward,
    register,
    registry,
    score_completions,
)
from vau_r1.rewards.temporal_iou import temporal_iou_reward

GOOD_QA = "<think>t</think><answer>B</answer>"


def test_module_doctests() -> None:
    result = doctest.testmod(registry)
    assert result.attempted > 0 and result.failed == 0


def test_builtin_names() -> None:
    assert {"format", "format_no_think", "accuracy", "temporal_iou", "tiou_v2"} <= set(REWARDS)
    assert get_reward("format") is format_reward
    assert get_reward("accuracy") is accuracy_reward
    assert get_reward("temporal_iou") is temporal_iou_reward
    assert format_reward.__name__ == "format_reward"  # TRL logs rewards under __name__


def test_register_rejects_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "REWARDS", {})

    @register("length")
    def length_reward(completions: list, **kwargs) -> list[float]:
        return [0.0 for _ in completions]

    assert {"length": length_reward} == registry.REWARDS
    with pytest.raises(ValueError, match=r"'length' is already registered by .*length_reward"):
        register("length")(lambda completions, **kwargs: [])


@pytest.mark.parametrize(
    "name",
    [
        "vau_r1.rewards.format:format_reward",  # pkg.mod:fn
        "vau_r1.rewards.format.format_reward",  # pkg.mod.fn
    ],
)
def test_get_reward_dotted_path(name: str) -> None:
    assert get_reward(name) is format_reward


def test_get_reward_user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_rewards.py").write_text(
        textwrap.dedent(
            """
            def brevity(completions, **kwargs):
                return [1.0 if len(c) < 10 else 0.0 for c in completions]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = get_reward("my_rewards:brevity")
    assert fn(["short", "much longer than ten"]) == [1.0, 0.0]


@pytest.mark.parametrize(
    ("name", "detail"),
    [
        ("acuracy", "Unknown reward 'acuracy'"),  # typo of a short name
        ("no_such_module.fn", "cannot import module 'no_such_module'"),  # missing module
        ("vau_r1.rewards.format:nope", "has no callable 'nope'"),  # missing attribute
        ("vau_r1.rewards.registry:REWARDS", "has no callable 'REWARDS'"),  # not callable
    ],
)
def test_get_reward_errors_list_valid_names(name: str, detail: str) -> None:
    with pytest.raises(ValueError) as info:
        get_reward(name)
    message = str(info.value)
    assert detail in message
    assert "'accuracy'" in message and "'format'" in message and "dotted import path" in message


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        ([{"name": "format", "weight": 0.5}, {"name": "accuracy"}], [("format", 0.5), ("accuracy", 1.0)]),  # dicts
        ([("format", 2), ("temporal_iou", 1.5)], [("format", 2.0), ("temporal_iou", 1.5)]),  # tuples
        (["format", "accuracy"], [("format", 1.0), ("accuracy", 1.0)]),  # bare names
        ({"format": 1.0, "accuracy": 3}, [("format", 1.0), ("accuracy", 3.0)]),  # {name: weight}
        ({"name": "format", "weight": 0.1}, [("format", 0.1)]),  # one spec alone
        ("accuracy", [("accuracy", 1.0)]),  # one name alone
        ([], []),  # nothing
    ],
)
def test_build_rewards(specs: object, expected: list[tuple[str, float]]) -> None:
    rewards = build_rewards(specs)
    assert [(r.name, r.weight) for r in rewards] == expected
    assert all(r.fn is get_reward(r.name) for r in rewards)


def test_build_rewards_from_omegaconf() -> None:
    cfg = OmegaConf.create({"rewards": [{"name": "format", "weight": 1.0}, {"name": "temporal_iou", "weight": 2.0}]})
    rewards = build_rewards(cfg.rewards)
    assert rewards == [
        WeightedReward("format", format_reward, 1.0),
        WeightedReward("temporal_iou", temporal_iou_reward, 2.0),
    ]


@pytest.mark.parametrize(
    ("specs", "match"),
    [
        ([{"name": "nope"}], "Unknown reward 'nope'"),  # unknown name
        ([{"name": "format", "weight": "heavy"}], "finite number"),  # weight not a number
        ([{"name": "format", "weight": float("inf")}], "finite number"),  # infinite weight
        ([{"name": "format", "wieght": 2}], "needs a 'name'"),  # misspelled key
        ([{"weight": 2}], "needs a 'name'"),  # no name
        (["format", "format"], "listed twice"),  # duplicate
        ([3], "Cannot read reward spec"),  # not a spec
    ],
)
def test_build_rewards_errors(specs: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_rewards(specs)


def _constant(value: float | None):
    def reward(completions: list, **kwargs) -> list[float | None]:
        return [value for _ in completions]

    return reward


def test_score_completions_weighted_sum_ignores_none() -> None:
    rewards = build_rewards([("format", 1.0), ("accuracy", 2.0), ("temporal_iou", 0.5)])
    completions = [
        GOOD_QA,  # QA row: format 1, accuracy 1, IoU not applicable
        "<think>t</think><answer>Anomaly</answer><glue>[2, 6]</glue>",  # TAG row: all three apply
        "junk",  # reasoning row without a span: only format applies
    ]
    columns = {"task": ["qa", "tag", "reasoning"], "answer": ["B", "Anomaly", None], "span": [None, [4, 8], None]}
    per_func, total = score_completions(rewards, completions, columns)
    assert per_func == [[1.0, 1.0, None], [1.0, 1.0, pytest.approx(1 / 3)], [0.0, None, None]]
    assert total == [3.0, pytest.approx(3.0 + 0.5 / 3), 0.0]


def test_score_completions_all_none_row_and_nan() -> None:
    rewards = [WeightedReward("none", _constant(None)), WeightedReward("nan", _constant(math.nan), 2.0)]
    per_func, total = score_completions(rewards, ["a", "b"], {})
    assert per_func == [[None, None], [None, None]]  # NaN is read as "not applicable"
    assert total == [None, None]  # no applicable reward: no total


def test_score_completions_wrong_length() -> None:
    bad = WeightedReward("bad", lambda completions, **kwargs: [1.0])
    with pytest.raises(ValueError, match="'bad' returned 1 values for 2 completions"):
        score_completions([bad], ["a", "b"])
