"""Evaluation metrics on hand-built samples: denominators, missing rows, name matching, parsers."""

from __future__ import annotations

import pytest

from vau_r1.data.schema import VideoSample
from vau_r1.eval.metrics import (
    EvalResult,
    cls_metrics,
    match_predictions,
    qa_accuracy,
    tag_decision_accuracy,
    tag_metrics,
)

OPTIONS = ("A man falls", "No sign of anomaly", "A car crash", "A fire")


def qa(video: str, answer: str | None) -> VideoSample:
    return VideoSample(video=video, source="msad", row=1, question="What happens?", options=OPTIONS, answer=answer)


def tag(video: str, span_s: tuple[float, float] | None) -> VideoSample:
    return VideoSample(video=video, source="msad", row=1, span_s=span_s, is_normal=span_s is None)


def cls(video: str, label: str | None) -> VideoSample:
    return VideoSample(video=video, source="msad", row=1, anomaly_class=label, is_normal=label == "Normal")


# -- QA ----------------------------------------------------------------------------------------------


def test_qa_accuracy_counts_missing_as_wrong() -> None:
    samples = [qa("v1.mp4", "A"), qa("v2.mp4", "B"), qa("v3.mp4", "C"), qa("v4.mp4", "D"), qa("v5.mp4", None)]
    predictions = {
        "v1.mp4": "<think>x</think><answer>A</answer>",  # right
        "v2.mp4": "No sign of anomaly",  # right: full option text (bare no-think answer)
        "v3.mp4": "<answer>A or C</answer>",  # wrong: two letters
        # v4 has no prediction: wrong and listed; v5 has no gold answer: not scored
    }
    result = qa_accuracy(samples, predictions)
    assert result.n == 4 and result.missing == ("v4.mp4",)
    assert result.metrics["accuracy"] == pytest.approx(50.0)
    only = qa_accuracy(samples, predictions, only_predicted=True)
    assert only.n == 3 and only.metrics["accuracy"] == pytest.approx(200 / 3)


def test_qa_lenient_parser_follows_the_official_cleaner() -> None:
    samples = [qa("v1.mp4", "A"), qa("v2.mp4", "B")]
    predictions = {"v1.mp4": "It is a dog", "v2.mp4": "Answer: B"}  # official: "a" → A; "Answer: B" → B
    assert qa_accuracy(samples, predictions, parser="lenient").metrics["accuracy"] == 100.0
    assert qa_accuracy(samples, predictions, parser="strict").metrics["accuracy"] == 50.0


def test_qa_empty_and_bad_parser() -> None:
    assert qa_accuracy([], {}).metrics == {"accuracy": None}  # no sample: no number
    with pytest.raises(ValueError, match="Unknown parser 'loose'"):
        qa_accuracy([qa("v1.mp4", "A")], {}, parser="loose")  # type: ignore[arg-type]


# -- name matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample_name", "prediction_name", "matched"),
    [
        ("Assault_2.mp4", "Assault_2.mp4", True),  # identical
        ("Assault_2.mp4", "Assault_2", True),  # official InternVL outputs drop .mp4
        ("Assault_2.mp4", " Assault_2.mp4 ", True),  # stray whitespace
        ("msad_Assault_2.mp4", "Assault_2.mp4", True),  # prediction without the dataset prefix
        ("Assault_2.mp4", "msad_Assault_2", True),  # prediction with a prefix the test CSV lacks
        ("Assault_2.mp4", "assault_2.mp4", False),  # names are case-sensitive
        ("Assault_2.mp4", "Assault_20.mp4", False),  # another video
    ],
)
def test_match_predictions(sample_name: str, prediction_name: str, matched: bool) -> None:
    found, unmatched = match_predictions([qa(sample_name, "A")], {prediction_name: "A"})
    assert (sample_name in found) is matched
    assert unmatched == (0 if matched else 1)


def test_match_predictions_prefers_exact_and_refuses_ambiguity() -> None:
    samples = [qa("msad_17.mp4", "A"), qa("18.mp4", "A")]
    predictions = {"msad_17.mp4": "A", "ecva_17.mp4": "B", "msad_18.mp4": "C", "ucf_18.mp4": "D"}
    found, unmatched = match_predictions(samples, predictions)
    assert found == {"msad_17.mp4": "A"}  # exact match wins; 18 matches two prefixed names: none used
    assert unmatched == 3


# -- TAG ---------------------------------------------------------------------------------------------


def test_tag_metrics_by_hand() -> None:
    samples = [
        tag("a.mp4", (0.0, 10.0)),
        tag("b.mp4", (4.0, 8.0)),
        tag("c.mp4", (10.0, 20.0)),
        tag("d.mp4", (0.0, 5.0)),
        tag("normal.mp4", None),  # no span (normal video): not scored
    ]
    predictions = {
        "a.mp4": "<glue>[0, 10]</glue>",  # IoU 1
        "b.mp4": "<answer>Anomaly</answer><glue>[2, 6]</glue>",  # IoU 1/3
        "c.mp4": (12.0, 20.0),  # parsed value: IoU 0.8
        "d.mp4": "<glue>[-1, -1]</glue>",  # normal answer on an anomaly: IoU 0
        "normal.mp4": "<glue>[-1, -1]</glue>",
    }
    result = tag_metrics(samples, predictions)
    assert result.n == 4 and result.missing == ()
    assert result.metrics["miou"] == pytest.approx(100 * (1 + 1 / 3 + 0.8) / 4)
    assert result.metrics["r@0.3"] == pytest.approx(75.0)
    assert result.metrics["r@0.5"] == pytest.approx(50.0)
    assert result.metrics["r@0.7"] == pytest.approx(50.0)
    assert result.unmatched == 1  # the normal video's prediction matches no scored sample


def test_tag_per_sample_scores_average_to_the_metrics() -> None:
    samples = [tag("a.mp4", (0.0, 10.0)), tag("b.mp4", (4.0, 8.0)), tag("c.mp4", (0.0, 2.0)), tag("n.mp4", None)]
    predictions = {"a.mp4": "<glue>[0, 10]</glue>", "b.mp4": "<glue>[2, 6]</glue>"}  # c.mp4 missing
    result = tag_metrics(samples, predictions)
    assert list(result.per_sample) == ["a.mp4", "b.mp4", "c.mp4"]  # the denominator's rows, in order
    assert result.per_sample["b.mp4"] == {"miou": pytest.approx(1 / 3), "r@0.3": 1.0, "r@0.5": 0.0, "r@0.7": 0.0}
    assert result.per_sample["c.mp4"] == {"miou": 0.0, "r@0.3": 0.0, "r@0.5": 0.0, "r@0.7": 0.0}
    for key, value in result.metrics.items():
        assert value == pytest.approx(100 * sum(s[key] for s in result.per_sample.values()) / result.n)
    only = tag_metrics(samples, predictions, only_predicted=True)
    assert list(only.per_sample) == ["a.mp4", "b.mp4"] and "per_sample" not in only.to_dict()


def test_tag_decision_accuracy_scores_normal_videos_too() -> None:
    samples = [tag("a.mp4", (0.0, 10.0)), tag("b.mp4", (4.0, 8.0)), tag("n1.mp4", None), tag("n2.mp4", None)]
    samples.append(VideoSample(video="u.mp4", source="msad", row=1, is_normal=False))  # anomaly without span
    predictions = {
        "a.mp4": "<answer>Anomaly</answer><glue>[0, 10]</glue>",  # right
        "b.mp4": "<answer>Normal</answer><glue>[-1, -1]</glue>",  # wrong
        "n1.mp4": "<think>calm</think><answer>normal</answer><glue>[-1, -1]</glue>",  # right
        "n2.mp4": "<glue>[-1, -1]</glue>",  # no Normal/Anomaly answer: wrong
    }
    result = tag_decision_accuracy(samples, predictions)
    assert result.n == 4 and result.metrics == {"decision_accuracy": 50.0}
    always_normal = tag_decision_accuracy(samples, dict.fromkeys(predictions, "<answer>Normal</answer>"))
    assert always_normal.metrics["decision_accuracy"] == 50.0  # the normal share, where mIoU reads 0
    assert tag_metrics(samples, predictions).n == 2  # mIoU keeps the paper's denominator


def test_tag_lenient_vs_strict() -> None:
    samples = [tag("a.mp4", (60.0, 70.0))]
    predictions = {"a.mp4": "The anomaly happens at [1:00, 1:10]."}  # clock times, no glue block
    assert tag_metrics(samples, predictions, parser="lenient").metrics["miou"] == pytest.approx(100.0)
    assert tag_metrics(samples, predictions, parser="strict").metrics["miou"] == 0.0


# -- CLS ---------------------------------------------------------------------------------------------


def test_cls_metrics_by_hand() -> None:
    samples = [cls("a.mp4", "Fire"), cls("b.mp4", "Fire"), cls("c.mp4", "Normal"), cls("d.mp4", "Robbery")]
    samples.append(cls("e.mp4", "Normal"))
    samples.append(cls("unknown.mp4", None))  # no class: not scored
    predictions = {
        "a.mp4": "<answer>fire</answer>",  # binary right, multi right
        "b.mp4": "<answer>Explosion</answer>",  # binary right (an anomaly), multi wrong
        "c.mp4": "Normal",  # both right (bare label)
        "d.mp4": "<answer>I am not sure</answer>",  # unparseable: both wrong
        # e.mp4 missing: both wrong
    }
    result = cls_metrics(samples, predictions)
    assert result.n == 5 and result.missing == ("e.mp4",)
    assert result.metrics == {"binary_accuracy": pytest.approx(60.0), "multi_accuracy": pytest.approx(40.0)}


def test_cls_lenient_takes_first_label() -> None:
    samples = [cls("a.mp4", "Fire")]
    predictions = {"a.mp4": "<answer>Fire, then an Explosion</answer>"}
    assert cls_metrics(samples, predictions, parser="lenient").metrics["multi_accuracy"] == 100.0
    assert cls_metrics(samples, predictions, parser="strict").metrics["multi_accuracy"] == 0.0


# -- result object ------------------------------------------------------------------------------------


def test_eval_result_dict_and_summary() -> None:
    result = EvalResult("qa", {"accuracy": 200 / 3}, 3, ("v4.mp4",), 0, "strict")
    assert result.to_dict() == {
        "task": "qa",
        "parser": "strict",
        "n": 3,
        "missing": 1,
        "accuracy": 200 / 3,  # unrounded
        "missing_videos": ["v4.mp4"],
        "unmatched": 0,
    }
    assert "66.67%" in result.summary() and "missing=1" in result.summary()
