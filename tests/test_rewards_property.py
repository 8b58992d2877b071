"""Property tests: rewards never raise and stay in [0, 1] or None, whatever the text and columns."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from vau_r1.data.schema import CLASS_LABELS
from vau_r1.rewards import REWARDS, build_rewards, score_completions
from vau_r1.rewards.parsing import parse_blocks, parse_span
from vau_r1.rewards.temporal_iou import temporal_iou

# Tag soup: the tags (any case, open and close), letters, labels, numbers, brackets and separators.
TOKENS = [
    *("<think>", "</think>", "<answer>", "</answer>", "<glue>", "</glue>", "<ANSWER>", "</Think>"),
    *("A", "B", "C", "D", "a", "b", "Answer:", "The answer is", "Normal", "Anomaly", "Fire", "traffic accident"),
    *("[", "]", "(", ")", ",", ".", ":", "-", "-1", "0", "1.5", "10", "1e999", "nan", "inf"),
    *(" ", "\n", "\t", "<", ">", "/", "x", "é", "\x00"),
]
TAG_SOUP = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=200), TAG_SOUP)
COMPLETION = st.one_of(
    ANY_TEXT,
    ANY_TEXT.map(lambda t: [{"role": "assistant", "content": t}]),  # conversational
    ANY_TEXT.map(lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}]),
    st.none(),  # not a completion at all
    st.integers(),
)
TASK = st.one_of(st.none(), st.sampled_from(["qa", "tag", "cls", "reasoning", "QA", "other", ""]), st.integers())
ANSWER = st.one_of(st.none(), st.sampled_from(["A", "b", "Normal", "Anomaly", *CLASS_LABELS, "-1", ""]), ANY_TEXT)
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.just(-1.0))
SPAN = st.one_of(st.none(), st.tuples(NUMBER, NUMBER).map(list), st.lists(NUMBER, max_size=3), st.text(max_size=5))
DURATION = st.one_of(st.none(), NUMBER, st.text(max_size=3))


def _valid(value: object) -> bool:
    return value is None or (isinstance(value, float) and 0.0 <= value <= 1.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(COMPLETION, TASK, ANSWER, SPAN, DURATION), min_size=1, max_size=4),
)
def test_every_reward_is_total_and_bounded(rows: list[tuple]) -> None:
    completions, tasks, answers, spans, durations = (list(column) for column in zip(*rows, strict=True))
    columns = {"task": tasks, "answer": answers, "span": spans, "duration_s": durations}
    for name, reward in REWARDS.items():
        values = reward(completions, **columns)
        assert len(values) == len(completions), name
        assert all(_valid(value) for value in values), (name, values)


@settings(max_examples=200, deadline=None)
@given(TAG_SOUP)
def test_scalar_columns_and_tag_soup(text: str) -> None:
    for reward in REWARDS.values():
        values = reward([text], task="tag", answer="Anomaly", span=[1.0, 2.0], duration_s=10.0)
        assert len(values) == 1 and _valid(values[0])


@settings(max_examples=200, deadline=None)
@given(TAG_SOUP)
def test_parse_blocks_counts_are_consistent(text: str) -> None:
    blocks = parse_blocks(text)
    for block in blocks.blocks:  # every reported block is a real slice of the text
        assert text[block.start : block.end].lower().startswith(f"<{block.name}>")
        assert block.content in text
    span = parse_span(text)
    assert span is None or span == (-1.0, -1.0) or 0.0 <= span[0] <= span[1]


SPAN_VALUE = st.floats(-5, 50, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.tuples(SPAN_VALUE, SPAN_VALUE), st.tuples(SPAN_VALUE, SPAN_VALUE))
def test_temporal_iou_bounded_and_symmetric(pred: tuple[float, float], gt: tuple[float, float]) -> None:
    iou = temporal_iou(pred, gt)
    assert 0.0 <= iou <= 1.0
    assert math.isclose(iou, temporal_iou(gt, pred))


ANY_FINITE = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False)


@settings(max_examples=300, deadline=None)
@given(st.tuples(ANY_FINITE, ANY_FINITE).map(sorted).map(tuple), st.tuples(ANY_FINITE, ANY_FINITE))
@example((0.0, 1.7e308), (0.0, 1e308))  # identical spans longer than ~9e307 once scored 0 (length sum overflowed)
@example((-1.7e308, 1.7e308), (1.0, 2.0))
def test_temporal_iou_identical_is_one_and_bounded_at_any_magnitude(pred: tuple, gt: tuple) -> None:
    # up to the float maximum (1.8e308): no length or sum of lengths may overflow to inf (IoU 0 or NaN)
    assert temporal_iou(pred, pred) == 1.0
    iou = temporal_iou(pred, gt)
    assert 0.0 <= iou <= 1.0 and iou == temporal_iou(gt, pred)


@settings(max_examples=300, deadline=None)
@given(st.tuples(SPAN_VALUE, SPAN_VALUE), st.tuples(SPAN_VALUE, SPAN_VALUE), st.integers(900, 1018))
def test_temporal_iou_is_scale_free_up_to_the_float_maximum(pred: tuple, gt: tuple, exponent: int) -> None:
    scale = 2.0**exponent  # spans of up to 50 * 2**1018 ~ 1.4e308 seconds
    scaled = temporal_iou(tuple(v * scale for v in pred), tuple(v * scale for v in gt))
    assert math.isclose(scaled, temporal_iou(pred, gt), rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=300, deadline=None)
@given(st.tuples(SPAN_VALUE, SPAN_VALUE), st.floats(0, 40), st.floats(0.1, 20))
def test_temporal_iou_matches_official_evaluator_on_real_spans(pred: tuple, gt_start: float, gt_len: float) -> None:
    # evaluation_tag.py: 0 if pred_start == pred_end, else inter / (hull of both spans).
    gt = (gt_start, gt_start + gt_len)
    (ps, pe), (gs, ge) = pred, gt
    inter = max(0.0, min(ge, pe) - max(gs, ps))
    union = max(ge, pe) - min(gs, ps)
    official = 0.0 if ps == pe else (inter / union if union > 0 else 0.0)
    assert math.isclose(temporal_iou(pred, gt), official, abs_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(COMPLETION, TASK, ANSWER, SPAN), min_size=1, max_size=4))
def test_score_completions_total_ignores_none(rows: list[tuple]) -> None:
    completions, tasks, answers, spans = (list(column) for column in zip(*rows, strict=True))
    rewards = build_rewards([("format", 1.0), ("accuracy", 2.0), ("temporal_iou", 0.5)])
    per_func, total = score_completions(rewards, completions, {"task": tasks, "answer": answers, "span": spans})
    for row, row_total in zip(per_func, total, strict=True):
        applicable = [w * v for w, v in zip((1.0, 2.0, 0.5), row, strict=True) if v is not None]
        assert (row_total is None) == (not applicable)
        assert row_total is None or math.isclose(row_total, sum(applicable))


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.just((-1.0, -1.0)), st.tuples(st.floats(-5, 50), st.floats(-5, 50))),
    st.one_of(st.just((-1.0, -1.0)), st.tuples(st.floats(0, 50), st.floats(0, 50))),
    st.floats(0.0, 1.0),
)
def test_normal_iou_changes_only_two_normal_spans(pred: tuple, gt: tuple, normal_iou: float) -> None:
    both_normal = pred == gt == (-1.0, -1.0)
    expected = normal_iou if both_normal else temporal_iou(pred, gt)
    assert temporal_iou(pred, gt, normal_iou) == expected
