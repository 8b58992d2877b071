"""Reward functions: table-driven cases (one comment each), official bugs not repeated, 1 MB adversarial inputs."""

from __future__ import annotations

import doctest
import re
import time
from collections.abc import Callable

import numpy as np
import pytest

from vau_r1.rewards import (
    accuracy,
    accuracy_reward,
    balance,
    columns,
    format_reward,
    no_think_format_reward,
    temporal_iou_reward,
    tiou_v2_reward,
)
from vau_r1.rewards import format as format_module
from vau_r1.rewards import temporal_iou as temporal_iou_module
from vau_r1.rewards.parsing import parse_choice_lenient, parse_label_lenient, parse_span_lenient
from vau_r1.rewards.temporal_iou import temporal_iou

THINK = "<think>The man trips on the curb and falls.</think>\n"


@pytest.mark.parametrize("module", [format_module, accuracy, temporal_iou_module, balance, columns])
def test_module_doctests(module: object) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# -- format ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "task", "expected"),
    [
        (THINK + "<answer>B</answer>", "qa", 1.0),  # canonical QA output
        (THINK + "<answer>Fire</answer>", None, 1.0),  # no task column: think + answer
        (THINK + "<answer>Anomaly</answer> <glue>[1.0, 2.5]</glue>", "tag", 1.0),  # canonical TAG output
        (THINK + "<answer>Normal</answer><glue>[-1.0, -1.0]</glue>", "tag", 1.0),  # normal video
        (THINK + "<answer>Anomaly</answer>", "tag", 0.0),  # TAG without glue
        (THINK + "<answer>Anomaly</answer><glue>[2, 1]</glue>", "tag", 0.0),  # reversed span
        (THINK + "<answer>Anomaly</answer><glue>[1, 2]</glue><glue>[3, 4]</glue>", "tag", 0.0),  # two glue blocks
        (THINK + "<answer>B</answer><glue>[1, 2]</glue>", "qa", 0.0),  # glue where none is asked for
        (THINK + "<answer>B</answer><answer>C</answer>", "qa", 0.0),  # more than one answer block
        ("<think>so <answer>A</answer></think><answer>B</answer>", "qa", 0.0),  # answer hidden in think
        (THINK + "<answer></answer>", "qa", 0.0),  # empty answer (Visual-RFT#176 hack)
        ("<answer>B</answer>" + THINK, "qa", 0.0),  # out-of-order tags
        ("<think><think>x</think></think><answer>B</answer>", "qa", 0.0),  # nested think
        (THINK + "<answer>B</answer> Hope this helps!", "qa", 0.0),  # trailing chatter
        (THINK + "<answer>B</answer>\n", "qa", 1.0),  # trailing newline / EOS whitespace is fine
        ("<answer>B</answer>", "qa", 0.0),  # no think block
        ("", "qa", 0.0),  # empty completion
        ([{"role": "assistant", "content": THINK + "<answer>B</answer>"}], "qa", 1.0),  # conversational
        (THINK + "<answer>B</answer>", "QA", 1.0),  # task name in another case
    ],
)
def test_format_reward(completion: object, task: str | None, expected: float) -> None:
    assert format_reward([completion], task=[task]) == [expected]


@pytest.mark.parametrize(
    ("completion", "task", "expected"),
    [
        ("<answer>B</answer>", "qa", 1.0),  # no-think QA/CLS format
        ("<glue>[0.0, 3.8]</glue>", "tag", 1.0),  # no-think TAG format (official SFT/eval)
        ("<answer>Anomaly</answer><glue>[0.0, 3.8]</glue>", "tag", 1.0),  # answer before glue is allowed
        (THINK + "<answer>B</answer>", "qa", 1.0),  # a think block is tolerated
        ("B", "qa", 0.0),  # bare answer
        ("<glue>[0.0, 3.8]</glue>.", "tag", 0.0),  # official SFT target ends with "." (not our format)
        ("<answer>B</answer><answer>B</answer>", "qa", 0.0),  # repeated answer
    ],
)
def test_no_think_format_reward(completion: str, task: str, expected: float) -> None:
    assert no_think_format_reward([completion], task=task) == [expected]


# -- accuracy --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer_block", "gold", "task", "expected"),
    [
        ("B", "B", "qa", 1.0),  # correct letter
        ("C", "B", "qa", 0.0),  # wrong letter
        ("(b)", "B", "qa", 1.0),  # lower case, parenthesised
        ("Answer: B", "B", "qa", 1.0),  # official reward extracts "A" from "Answer" (§10 item 12)
        ("The answer is B.", "B", "qa", 1.0),  # prefix
        ("B. He slips on the ice", "B", "qa", 1.0),  # letter with option text
        ("A or B", "B", "qa", 0.0),  # several letters
        ("A, B, C, D", "B", "qa", 0.0),  # every letter
        ("A. x B. y C. z D. w", "A", "qa", 0.0),  # options echoed from the prompt
        ("", "B", "qa", 0.0),  # empty answer
        ("B", "d. Green trash bin tipping over", "qa", 0.0),  # full-text gold normalised to D
        ("D", "d. Green trash bin tipping over", "qa", 1.0),  # full-text gold normalised to D
        ("traffic accident", "Traffic_accident", "cls", 1.0),  # official CLS reward: 0 (§10 item 14)
        ("Traffic_accident", "Traffic accident", "cls", 1.0),  # gold spelled with a space
        ("FIRE", "Fire", "cls", 1.0),  # case
        ("Fire, Explosion", "Fire", "cls", 0.0),  # several labels
        ("It is Fire", "Fire", "cls", 0.0),  # label inside a sentence
        ("Normal", "Normal", "cls", 1.0),  # normal class
        ("Anomaly", "Anomaly", "tag", 1.0),  # TAG answer
        ("normal", "Normal", "tag", 1.0),  # lower case
        ("Abnormal", "Anomaly", "tag", 0.0),  # official: first capital "A" matches "Anomaly" (§10 item 13)
        ("I don't know", "Normal", "tag", 0.0),  # official: no capital A-G on both sides → match (§10 item 13)
        ("Anomaly", "Normal", "tag", 0.0),  # wrong
        ("B", "B", None, 1.0),  # task inferred from a letter
        ("Fire", "Fire", None, 1.0),  # task inferred from a class label
        ("Anomaly", "Anomaly", None, 1.0),  # task inferred from Normal/Anomaly
        ("a cat", "A cat", None, 1.0),  # no task fits: normalised exact match
        ("a dog", "A cat", None, 0.0),  # no task fits: normalised exact match
        ("B", "-1", "qa", 0.0),  # unreadable gold: never a match
        ("B", "", "qa", 0.0),  # empty gold answer
        ("B", "B", "unknown-task", 1.0),  # unknown task name: inferred from the gold answer
    ],
)
def test_accuracy_reward(answer_block: str, gold: str, task: str | None, expected: float) -> None:
    completion = f"{THINK}<answer>{answer_block}</answer>"
    assert accuracy_reward([completion], answer=[gold], task=[task]) == [expected]


@pytest.mark.parametrize(
    ("completion", "answer", "task", "expected"),
    [
        ("B", "B", "qa", 0.0),  # bare letter: the reward requires an <answer> block
        (THINK + "<answer>B</answer><answer>B</answer>", "B", "qa", 0.0),  # repeated answer blocks
        ("<think>B</think>", "B", "qa", 0.0),  # answer only in the think block
        (THINK + "<answer>B</answer>", None, "qa", None),  # no gold answer: not applicable
        (THINK + "<answer>...</answer>", "A long analysis", "reasoning", None),  # reasoning: not applicable
        ([{"role": "assistant", "content": [{"type": "text", "text": "<answer>C</answer>"}]}], "C", "qa", 1.0),
    ],
)
def test_accuracy_reward_structure(completion: object, answer: object, task: str, expected: float | None) -> None:
    assert accuracy_reward([completion], answer=[answer], task=[task]) == [expected]


def test_accuracy_reward_uses_options_column() -> None:
    options = [["A man falls", "No sign of anomaly", "A car crash", "A fire"]]
    completion = THINK + "<answer>No sign of anomaly</answer>"
    assert accuracy_reward([completion], answer=["B"], task=["qa"], options=options) == [1.0]
    assert accuracy_reward([completion], answer=["B"], task=["qa"]) == [0.0]  # without options: not a letter


def test_columns_scalar_list_and_wrong_length() -> None:
    completions = [THINK + "<answer>B</answer>", THINK + "<answer>C</answer>"]
    assert accuracy_reward(completions, answer="B", task="qa") == [1.0, 0.0]  # scalars are broadcast
    assert accuracy_reward(completions, answer=("B", "C"), task=["qa", "qa"]) == [1.0, 1.0]  # tuples work
    assert accuracy_reward(completions, answer=np.array(["B", "C"])) == [1.0, 1.0]  # numpy columns work
    assert accuracy_reward(completions, answer=["B"], task="qa") == [None, None]  # misaligned column: no target
    assert accuracy_reward([], answer=[], task=[]) == []  # empty batch


# Port of the official QA/TAG answer extraction (grpo_qa.py:109-152) to show the bugs we fix.
def official_extract(text: str) -> str:
    text = text.strip()
    for prefix in ["The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option is", "The correct option is", "Best answer:" "Best option:"]:  # fmt: skip
        text = text.replace(prefix, "")
    if len(text.split()) > 10 and not re.search("[ABCDEFG]", text):
        return ""
    match = re.search("[ABCDEFG]", text)
    return match[0] if match else ""


@pytest.mark.parametrize(
    ("answer_block", "gold", "task", "official", "ours"),
    [
        ("Best answer: C", "C", "qa", 0.0, 1.0),  # item 11: missing comma leaves "Best answer:" → "B"
        ("Answer: B", "B", "qa", 0.0, 1.0),  # item 12: first capital letter is the "A" of "Answer"
        ("it looks fine", "Normal", "tag", 1.0, 0.0),  # item 13: no capital A-G on either side
        ("Abnormal", "Anomaly", "tag", 1.0, 0.0),  # item 13: "Abnormal" and "Anomaly" both extract "A"
    ],
)
def test_official_reward_bugs_not_repeated(answer_block: str, gold: str, task: str, official: float, ours: float):
    assert float(official_extract(answer_block) == official_extract(gold)) == official
    assert accuracy_reward([f"{THINK}<answer>{answer_block}</answer>"], answer=[gold], task=[task]) == [ours]


def test_official_cls_reward_bug_not_repeated() -> None:
    # Item 14: the official CLS reward compares answer.strip().lower() exactly, so spellings differ.
    answer_block, gold = "traffic accident", "Traffic_accident"
    assert answer_block.strip().lower() != gold.strip().lower()
    assert accuracy_reward([f"{THINK}<answer>{answer_block}</answer>"], answer=[gold], task=["cls"]) == [1.0]


# -- temporal IoU ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ((2.0, 6.0), (2.0, 6.0), 1.0),  # identical
        ((0.0, 2.0), (3.0, 5.0), 0.0),  # disjoint
        ((0.0, 3.0), (3.0, 5.0), 0.0),  # touching
        ((1.0, 9.0), (3.0, 5.0), 0.25),  # nested
        ((2.0, 6.0), (4.0, 8.0), 1 / 3),  # partial overlap
        ((6.0, 2.0), (2.0, 6.0), 0.0),  # reversed prediction has length 0
        ((-1.0, -1.0), (-1.0, -1.0), 1.0),  # both normal
        ((-1.0, -1.0), (0.0, 5.0), 0.0),  # predicted normal, GT anomaly
        ((0.0, 5.0), (-1.0, -1.0), 0.0),  # predicted anomaly, GT normal
        ((4.0, 4.0), (4.0, 4.0), 1.0),  # zero-length identical spans (union 0)
        ((0.0, 0.0), (4.0, 4.0), 0.0),  # zero-length different spans (union 0)
        ((4.0, 4.0), (0.0, 8.0), 0.0),  # zero-length prediction inside a real span
    ],
)
def test_temporal_iou(pred: tuple[float, float], gt: tuple[float, float], expected: float) -> None:
    assert temporal_iou(pred, gt) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("glue", "span", "expected"),
    [
        ("[2, 6]", [4.0, 8.0], 1 / 3),  # partial overlap
        ("[4.0, 8.0]", (4.0, 8.0), 1.0),  # exact (tuple target)
        ("[-1.0, -1.0]", [-1.0, -1.0], 1.0),  # normal video answered as normal
        ("[-1, -1]", [0.0, 5.0], 0.0),  # anomaly answered as normal
        ("[0, 5]", [-1, -1], 0.0),  # normal video answered with a span
        ("[2, 6]", None, None),  # no target: not applicable
        ("[2, 6]", [float("nan"), 1.0], None),  # unreadable target: not applicable
        ("[6, 2]", [2.0, 6.0], 0.0),  # reversed prediction is unparseable
        ("[0, 0]", [0.0, 0.0], 1.0),  # zero-length identical spans (documented; GT should use [-1, -1])
        ("[1, 2, 3]", [1.0, 2.0], 0.0),  # malformed prediction
    ],
)
def test_temporal_iou_reward(glue: str, span: object, expected: float | None) -> None:
    completion = f"{THINK}<answer>Anomaly</answer><glue>{glue}</glue>"
    result = temporal_iou_reward([completion], span=[span])
    assert result == [pytest.approx(expected)] if expected is not None else result == [None]


def test_temporal_iou_reward_structure() -> None:
    completions = [
        "<glue>[1, 2]</glue><glue>[1, 2]</glue>",  # several glue blocks
        "<answer>Anomaly <glue>[1, 2]</glue></answer>",  # glue nested in the answer
        "The anomaly is at [1, 2]",  # bare span, no glue
        "<glue>[1, 2]</glue>",  # answer-only format is scored too
    ]
    assert temporal_iou_reward(completions, span=[1.0, 2.0]) == [0.0, 0.0, 0.0, 1.0]  # scalar span broadcast


@pytest.mark.parametrize(
    ("glue", "span", "duration_s", "expected"),
    [
        ("[2, 6]", [4.0, 8.0], 20.0, (1 / 3) * 0.9 * 0.9),  # IoU times both distance factors
        ("[4, 8]", [4.0, 8.0], 20.0, 1.0),  # exact
        ("[-1, -1]", [-1.0, -1.0], 20.0, 1.0),  # normal semantics
        ("[2, 6]", [4.0, 8.0], None, None),  # no duration: not applicable
        ("[2, 6]", [4.0, 8.0], 0.0, None),  # zero duration: not applicable
        ("[2, 6]", None, 20.0, None),  # no target
        ("oops", [4.0, 8.0], 20.0, 0.0),  # unparseable
        ("[0, 100]", [4.0, 200.0], 10.0, 0.0),  # factors clipped at 0
    ],
)
def test_tiou_v2_reward(glue: str, span: object, duration_s: object, expected: float | None) -> None:
    result = tiou_v2_reward([f"<glue>{glue}</glue>"], span=[span], duration_s=[duration_s])
    assert result == [pytest.approx(expected)] if expected is not None else result == [None]


# -- absurd columns (the fault campaign's findings): no raise, no wrong score --------------------------

HUGE_INT = 10**400  # past the float maximum: float() raises OverflowError


@pytest.mark.parametrize(
    ("reward", "columns"),
    [
        (temporal_iou_reward, {"span": [[0, HUGE_INT]] * 2}),  # an int past the float range in a span
        (tiou_v2_reward, {"span": [[0, 5]] * 2, "duration_s": [HUGE_INT] * 2}),  # ... or in a duration
        (tiou_v2_reward, {"span": [[HUGE_INT, 5]], "duration_s": HUGE_INT}),  # ... scalar duration too
        (temporal_iou_reward, {"span": float("nan")}),  # a scalar NaN span (was a TypeError)
        (tiou_v2_reward, {"span": float("nan"), "duration_s": 10.0}),
        (temporal_iou_reward, {"span": 3}),  # any scalar that is not a span
        (temporal_iou_reward, {"span": "[0, 5]"}),  # a string is one value, not a column of characters
    ],
)
def test_unreadable_span_or_duration_means_no_target(reward: Callable, columns: dict) -> None:
    assert reward(["<glue>[0, 5]</glue>", "<glue>[-1, -1]</glue>"], **columns) == [None, None]


def test_identical_spans_near_the_float_maximum_score_one() -> None:
    assert temporal_iou((0.0, 1.7e308), (0.0, 1.7e308)) == 1.0  # was 0.0: the sum of the lengths overflowed
    assert temporal_iou((0.0, 1.5e308), (0.0, 1e308)) == pytest.approx(2 / 3)
    assert temporal_iou((-1.7e308, 1.7e308), (0.0, 1.7e308)) == pytest.approx(0.5)  # a 3.4e308-long span
    assert temporal_iou_reward(["<glue>[0, 1.7e308]</glue>"], span=[[0.0, 1.7e308]]) == [1.0]
    assert tiou_v2_reward(["<glue>[0, 1.7e308]</glue>"], span=[[0.0, 1.7e308]], duration_s=[1.7e308]) == [1.0]


def test_text_columns_without_a_text_form() -> None:
    # str() refuses ints of more than 4,300 digits (ValueError): an unreadable gold answer scores 0.0,
    # an unreadable task is inferred from the answer, an unreadable option matches nothing.
    huge = 10**5000
    good = THINK + "<answer>Fire</answer>"
    assert accuracy_reward([good], answer=[huge]) == [0.0]
    assert accuracy_reward([good], answer=["Fire"], task=[huge]) == [1.0]
    assert accuracy_reward([good], answer=["A"], task=["qa"], options=[["Fire", huge, "x", "y"]]) == [1.0]
    assert accuracy_reward([good], answer=["Fire"], options=float("nan")) == [1.0]  # a scalar NaN options column
    assert format_reward([good], task=huge) == [1.0] and no_think_format_reward([good], task=[huge]) == [1.0]
    assert balance.relative_span([1, 2], HUGE_INT) is None and balance.relative_span([1e300, 2e300], 1e-10) is None


# -- adversarial 1 MB completions ------------------------------------------------------------------

ONE_MB = 1_000_000
ADVERSARIAL = {
    "answer_tags": "<answer>" * (ONE_MB // 8),
    "open_brackets": "[" * ONE_MB,
    "long_think": "<think>" + "a" * ONE_MB,
    "many_glue_blocks": "<glue>[1, 2]</glue>" * (ONE_MB // 19),
    "spaces_after_angle": "<A" + " " * ONE_MB,
    "nested_tags": "<think>" * (ONE_MB // 14) + "</answer>" * (ONE_MB // 18),
    "glue_per_line": "<glue>\n" * (ONE_MB // 7) + "</glue>",
    "huge_answer": "<think>x</think><answer>B." + " x" * (ONE_MB // 2) + "</answer>",
    "huge_number": "<think>x</think><answer>Anomaly</answer><glue>[" + "1" * ONE_MB + ", 2]</glue>",
    "label_words": "<think>x</think><answer>" + "fire " * (ONE_MB // 5) + "</answer>",
}
REWARDS = {
    "format": lambda c: format_reward(c, task=["tag"]),
    "format_no_think": lambda c: no_think_format_reward(c, task=["tag"]),
    "accuracy_qa": lambda c: accuracy_reward(c, answer=["B"], task=["qa"]),
    "accuracy_cls": lambda c: accuracy_reward(c, answer=["Fire"], task=["cls"]),
    "accuracy_tag": lambda c: accuracy_reward(c, answer=["Anomaly"], task=["tag"]),
    "temporal_iou": lambda c: temporal_iou_reward(c, span=[[1.0, 2.0]]),
    "tiou_v2": lambda c: tiou_v2_reward(c, span=[[1.0, 2.0]], duration_s=[10.0]),
}


@pytest.mark.parametrize("reward_name", sorted(REWARDS))
def test_adversarial_megabyte_completions_are_fast(reward_name: str) -> None:
    """Every reward scores each ~1 MB adversarial completion in under a second (it takes < 0.1 s here)."""
    reward = REWARDS[reward_name]
    for case, completion in ADVERSARIAL.items():
        start = time.perf_counter()
        values = reward([completion])
        elapsed_s = time.perf_counter() - start
        assert elapsed_s < 1.0, f"{reward_name} took {elapsed_s:.2f} s on {case}"
        assert len(values) == 1 and (values[0] is None or 0.0 <= values[0] <= 1.0)


@pytest.mark.parametrize("parser", [parse_choice_lenient, parse_span_lenient, parse_label_lenient])
def test_adversarial_megabyte_inputs_lenient_parsers(parser: Callable[[str], object]) -> None:
    """The official-compatible parsers (used when re-scoring official outputs) are linear too."""
    extra = {"angle_letters": "<a" * (ONE_MB // 2), "clock_times": "[" + "1:" * (ONE_MB // 2)}
    for case, text in {**ADVERSARIAL, **extra}.items():
        start = time.perf_counter()
        parser(text)
        elapsed_s = time.perf_counter() - start
        assert elapsed_s < 1.0, f"{parser.__name__} took {elapsed_s:.2f} s on {case}"
