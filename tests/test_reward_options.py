"""Reward options (``normal_iou``), the blind-policy balance, and ``duration_s`` reaching the rewards in training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vau_r1.data.schema import VideoSample
from vau_r1.grpo.experience import score_rollout
from vau_r1.resources import CONFIG_ROOT
from vau_r1.rewards import (
    balanced_normal_iou,
    bind_options,
    build_rewards,
    get_reward,
    reward_options,
    score_completions,
    temporal_iou_reward,
    tiou_v2_reward,
)
from vau_r1.rewards.balance import best_constant_span, constant_span_reward, relative_span
from vau_r1.tasks import reward_columns

CONFIGS = CONFIG_ROOT
THINK = "<think>t</think>"
NORMAL_ANSWER = f"{THINK}<answer>Normal</answer><glue>[-1.0, -1.0]</glue>"

# A 50% normal split: 4 anomalous clips of different lengths and 4 normal ones.
ANOMALY_SPANS = [[2.0, 6.0], [10.0, 30.0], [0.0, 5.0], [12.0, 18.0]]
ANOMALY_DURATIONS = [10.0, 40.0, 20.0, 30.0]
SPANS = [*ANOMALY_SPANS, *[[-1.0, -1.0]] * 4]
DURATIONS = [*ANOMALY_DURATIONS, 10.0, 20.0, 30.0, 40.0]
ANSWERS = ["Anomaly"] * 4 + ["Normal"] * 4


def tag_rewards(iou: str, options: dict | None = None) -> list:
    spec = {"name": iou, "weight": 1.0, **({"options": options} if options else {})}
    return build_rewards(["format", "accuracy", spec])


def expected_total(rewards: list, answer_for) -> float:
    """Mean total reward over the split of the blind policy ``answer_for(duration_s)``."""
    completions = [answer_for(d) for d in DURATIONS]
    columns = {"task": ["tag"] * len(SPANS), "answer": ANSWERS, "span": SPANS, "duration_s": DURATIONS}
    totals = score_completions(rewards, completions, columns).total
    return math.fsum(totals) / len(totals)


def always_anomaly(span_rel: tuple[float, float]):
    a, b = span_rel
    return lambda d: f"{THINK}<answer>Anomaly</answer><glue>[{a * d:.6f}, {b * d:.6f}]</glue>"


# -- the blind-policy balance ------------------------------------------------------------------------


@pytest.mark.parametrize("iou", ["temporal_iou", "tiou_v2"])
def test_balanced_normal_iou_pays_blind_policies_the_same(iou: str) -> None:
    best = best_constant_span(SPANS, DURATIONS, metric=iou, resolution=20)
    balanced = balanced_normal_iou(SPANS, DURATIONS, metric=iou, resolution=20)
    assert 0.0 < balanced < 1.0
    rewards = tag_rewards(iou, {"normal_iou": balanced})
    normal = expected_total(rewards, lambda d: NORMAL_ANSWER)
    anomaly = expected_total(rewards, always_anomaly(best))
    assert normal == pytest.approx(1.0 + 0.5 + 0.5 * balanced)
    assert anomaly == pytest.approx(normal, rel=1e-5)
    for other in [(0.0, 1.0), (0.25, 0.75), (0.1, 0.4)]:  # no constant span beats "always Normal"
        assert expected_total(rewards, always_anomaly(other)) <= normal + 1e-5


@pytest.mark.parametrize("iou", ["temporal_iou", "tiou_v2"])
def test_paper_rule_favours_always_normal(iou: str) -> None:
    best = best_constant_span(SPANS, DURATIONS, metric=iou, resolution=20)
    for rewards in (tag_rewards(iou), tag_rewards(iou, {"normal_iou": "paper"})):
        normal = expected_total(rewards, lambda d: NORMAL_ANSWER)
        anomaly = expected_total(rewards, always_anomaly(best))
        assert normal == pytest.approx(2.0)  # format 1 + accuracy 0.5 + IoU 0.5 * 1.0
        assert anomaly < normal - 0.2


def test_best_constant_span_beats_the_mean_span_and_ignores_normal_rows() -> None:
    best = balanced_normal_iou(SPANS, DURATIONS, resolution=20)
    mean = balanced_normal_iou(SPANS, DURATIONS, span_rel="mean")
    assert best >= mean > 0.0
    relative = [(s / d, e / d) for (s, e), d in zip(ANOMALY_SPANS, ANOMALY_DURATIONS, strict=True)]
    mean_span = (sum(a for a, _ in relative) / 4, sum(b for _, b in relative) / 4)
    assert mean == pytest.approx(constant_span_reward(mean_span, ANOMALY_SPANS, ANOMALY_DURATIONS))
    assert balanced_normal_iou(ANOMALY_SPANS, ANOMALY_DURATIONS, resolution=20) == best  # normal rows skipped
    whole_clip = balanced_normal_iou(SPANS, DURATIONS, span_rel=(0.0, 1.0))
    assert whole_clip == pytest.approx(sum(b - a for a, b in relative) / 4)  # IoU with the whole clip


def test_relative_span_skips_what_it_cannot_read() -> None:
    assert relative_span([10, 30], 40) == (0.25, 0.75)
    assert [relative_span(s, d) for s, d in [([-1, -1], 5), (None, 5), ([1, 2], None), ([1, 2], -3)]] == [None] * 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"spans_s": [[-1, -1]], "durations_s": [10.0]}, "no anomalous clip"),
        ({"spans_s": [[1, 2]], "durations_s": []}, "one duration per span"),
        ({"spans_s": [[1, 2]], "durations_s": [10.0], "metric": "iou"}, "expected one of"),
        ({"spans_s": [[1, 2]], "durations_s": [10.0], "span_rel": "median"}, "'best', 'mean'"),
        ({"spans_s": [[1, 2]], "durations_s": [10.0], "resolution": 0}, "positive integer"),
    ],
)
def test_balanced_normal_iou_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        balanced_normal_iou(**kwargs)


# -- the normal_iou option ---------------------------------------------------------------------------

CASES = [
    (NORMAL_ANSWER, [-1.0, -1.0], 20.0),  # right: normal answered as normal
    (f"{THINK}<answer>Anomaly</answer><glue>[0, 5]</glue>", [-1.0, -1.0], 20.0),  # wrong: span on a normal video
    (NORMAL_ANSWER, [0.0, 5.0], 20.0),  # wrong: [-1, -1] on an anomaly
    (f"{THINK}<answer>Anomaly</answer><glue>[2, 6]</glue>", [4.0, 8.0], 20.0),  # a real overlap
    ("no glue", [-1.0, -1.0], 20.0),  # unparseable
    (NORMAL_ANSWER, None, 20.0),  # no target
]


@pytest.mark.parametrize("reward", [temporal_iou_reward, tiou_v2_reward])
def test_normal_iou_changes_only_the_right_normal_answer(reward) -> None:
    completions, spans, durations = (list(column) for column in zip(*CASES, strict=True))
    paper = reward(completions, span=spans, duration_s=durations)
    assert reward(completions, span=spans, duration_s=durations, normal_iou="paper") == paper
    assert reward(completions, span=spans, duration_s=durations, normal_iou=1.0) == paper
    assert paper[:3] == [1.0, 0.0, 0.0] and paper[4:] == [0.0, None]
    scaled = reward(completions, span=spans, duration_s=durations, normal_iou=0.25)
    assert scaled == [0.25, *paper[1:]]


def test_paper_preset_is_the_default() -> None:
    (plain,) = build_rewards(["temporal_iou"])
    assert plain.fn is temporal_iou_reward and plain.options == {}
    assert reward_options(temporal_iou_reward) == reward_options(tiou_v2_reward) == {"normal_iou": 1.0}
    assert reward_options(get_reward("format")) == {} and reward_options(get_reward("accuracy")) == {}
    cfg = OmegaConf.load(CONFIGS / "rewards" / "tag.yaml")
    assert [r.fn for r in build_rewards(cfg.funcs)] == [get_reward(n) for n in ("format", "accuracy", "temporal_iou")]


def test_bound_options_keep_the_name_and_reach_the_reward() -> None:
    cfg = OmegaConf.create({"funcs": [{"name": "tiou_v2", "weight": 2.0, "options": {"normal_iou": 0.4}}]})
    (reward,) = build_rewards(cfg.funcs)
    assert (reward.name, reward.weight, reward.options) == ("tiou_v2", 2.0, {"normal_iou": 0.4})
    assert reward.fn.__name__ == "tiou_v2_reward" and reward_options(reward.fn) == {"normal_iou": 0.4}
    scores = score_completions([reward], [NORMAL_ANSWER], {"span": [[-1.0, -1.0]], "duration_s": [9.0]})
    assert scores == ([[0.4]], [0.8])


TYPO = r"Reward 'temporal_iou' has no option 'normal_iuo'; valid options: \['normal_iou'\]"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"name": "temporal_iou", "options": {"normal_iuo": 0.4}}, TYPO),  # misspelled key
        ({"name": "format", "options": {"normal_iou": 0.4}}, "has no option 'normal_iou'; valid options: none"),
        ({"name": "tiou_v2", "options": {"normal_iou": 1.5}}, r"'tiou_v2': invalid options .*normal_iou=1.5"),
        ({"name": "temporal_iou", "options": {"normal_iou": -0.1}}, "expected a number in"),
        ({"name": "temporal_iou", "options": {"normal_iou": "balanced"}}, r"or one of \['paper'\]"),
        ({"name": "temporal_iou", "options": {"normal_iou": True}}, "normal_iou=True"),
        ({"name": "temporal_iou", "options": {"normal_iou": math.nan}}, "normal_iou=nan"),
        ({"name": "temporal_iou", "options": [0.4]}, "options must be a mapping"),
        ({"name": "temporal_iou", "opts": {"normal_iou": 0.4}}, "optional 'options', nothing else"),
    ],
)
def test_option_errors_name_the_reward_and_key(spec: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_rewards([spec])


def test_bad_option_value_raises_when_called_directly() -> None:
    with pytest.raises(ValueError, match="normal_iou=2"):
        temporal_iou_reward([NORMAL_ANSWER], span=[[-1.0, -1.0]], normal_iou=2)
    assert bind_options("temporal_iou", temporal_iou_reward, {}) is temporal_iou_reward  # nothing to bind


# -- duration_s in the training columns --------------------------------------------------------------

SAMPLE = VideoSample(video="a.mp4", source=None, row=1, is_normal=False, span_s=(1.0, 2.0), answer="B")


def test_reward_columns_carry_the_duration_for_every_task() -> None:
    for task in ("qa", "tag"):
        columns = reward_columns(SAMPLE, task, duration_s=3)
        assert columns["duration_s"] == 3.0 and isinstance(columns["duration_s"], float)
    assert "duration_s" not in reward_columns(SAMPLE, "tag")


def compose_cfg(output_dir: Path, *overrides: str):
    fast = ["grpo.max_completion_tokens=6", "grpo.num_generations=2", "trainer.log_completions_every=0"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose("train", overrides=["experiment=debug_cpu", f"output_dir={output_dir}", *fast, *overrides])


@pytest.mark.usefixtures("one_torch_thread")
def test_tiou_v2_scores_inside_the_trainer(tmp_path: Path) -> None:
    from vau_r1.apps.train import build_trainer

    cfg = compose_cfg(tmp_path, "rewards.funcs=[format,tiou_v2]", "trainer.max_steps=1", "trainer.save_final=false")
    trainer = build_trainer(cfg)
    trainer.fit()
    mean = trainer.engine.last_metrics["reward/tiou_v2/mean"]
    assert mean is not None and math.isfinite(mean)
    (exp,) = trainer.last_experiences
    durations = [ex.columns["duration_s"] for ex in exp.examples]
    assert durations == [ex.duration_s for ex in exp.examples] and min(durations) > 0
    # a perfect answer for each prompt scores 1 under tiou_v2, given the columns the trainer built
    perfect = [f"<glue>[{ex.columns['span'][0]}, {ex.columns['span'][1]}]</glue>" for ex in exp.examples]
    per_func, _ = score_rollout(trainer.rewards, perfect, exp.examples, 1)
    assert per_func[:, 1].tolist() == [pytest.approx(1.0)] * len(perfect)


def test_user_reward_options_are_its_keyword_only_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "user_option_rewards.py").write_text(
        "def brevity(completions, *, limit=10, **kwargs):\n    return [float(len(c) < limit) for c in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    (reward,) = build_rewards([{"name": "user_option_rewards:brevity", "options": {"limit": 3}}])
    assert reward.fn(["ab", "abcd"]) == [1.0, 0.0] and reward.fn.__name__ == "brevity"
    with pytest.raises(ValueError, match=r"brevity' has no option 'lmit'; valid options: \['limit'\]"):
        build_rewards([{"name": "user_option_rewards:brevity", "options": {"lmit": 3}}])
