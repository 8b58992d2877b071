"""Judge reply parsing (strict, recomputed total) and the judge prompt text (paper preset verbatim)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vau_r1.judge import SCORE_KEYS, JudgeParseError, build_messages, get_preset, parse_judge_reply
from vau_r1.judge.prompt import PAPER_USER_TEMPLATE, PRESETS, SYSTEM_MESSAGE

PAPER_DOC = Path(__file__).resolve().parents[1] / "docs" / "paper.md"


def reply(cls=8, km=7, flu=9, inf=6, fac=7, total=37, **extra) -> str:
    obj = {"classification_score": cls, "key_matching_score": km, "fluency_score": flu,
           "informativeness_score": inf, "factual_score": fac, "total_score": total, **extra}  # fmt: skip
    return json.dumps(obj)


ACCEPTED = [
    # (reply text, expected five scores, expected judge_total)
    (f"Here you go:\n```json\n{reply()}\n```\nThanks.", (8, 7, 9, 6, 7), 37),  # the paper's format
    (reply(), (8, 7, 9, 6, 7), 37),  # bare object
    (f"Scores: {reply()} -- done", (8, 7, 9, 6, 7), 37),  # bare object inside prose
    (f"```JSON {reply()}```", (8, 7, 9, 6, 7), 37),  # upper-case fence, no newlines (the paper's regex missed it)
    (f"```json\n{reply()}", (8, 7, 9, 6, 7), 37),  # unclosed fence
    (reply(cls="8", km=7.0, flu=" 9 ", total="37"), (8, 7, 9, 6, 7), 37),  # integral strings / floats
    (reply(total=None), (8, 7, 9, 6, 7), None),  # total null: nothing to compare
    (json.dumps({k: 0 for k in SCORE_KEYS}), (0, 0, 0, 0, 0), None),  # no total, no comments; zeros allowed
    (reply(cls=10, km=10, flu=10, inf=10, fac=10, total=50), (10,) * 5, 50),  # upper bound
    ('{"note": {"x": 1}} ' + reply(), (8, 7, 9, 6, 7), 37),  # a first object without scores is passed over
    ("```json\n{broken\n```\n" + reply(), (8, 7, 9, 6, 7), 37),  # broken fenced block, valid object after it
    ("[" + reply() + "]", (8, 7, 9, 6, 7), 37),  # wrapped in a list: still found by the scan from each '{'
]


@pytest.mark.parametrize(("text", "expected", "judge_total"), ACCEPTED)
def test_accepted_replies(text: str, expected: tuple[int, ...], judge_total: int | None) -> None:
    scores = parse_judge_reply(text)
    assert tuple(scores.scores[k] for k in SCORE_KEYS) == expected
    assert scores.total == sum(expected) and scores.judge_total == judge_total and not scores.total_mismatch


def test_wrong_judge_total_is_recomputed_and_flagged() -> None:
    scores = parse_judge_reply(f"```json\n{reply(total=45)}\n```")
    assert (scores.total, scores.judge_total, scores.total_mismatch) == (37, 45, True)


def test_comments_are_kept() -> None:
    scores = parse_judge_reply(reply(comments={"fluency": "clear", "factual": 3}))
    assert scores.comments == {"fluency": "clear", "factual": "3"}


REJECTED = [
    # (reply text, substring of the reason)
    ("", "empty reply"),
    ("   \n", "empty reply"),
    ("I cannot score this.", "no JSON object"),
    ('```json\n{"classification_score": 8, "key_matching_score": 7,}\n```', "invalid JSON"),  # trailing comma
    (reply().replace('"fluency_score": 9, ', ""), "missing field 'fluency_score'"),
    (reply(cls=11), "classification_score=11 is outside 0-10"),
    (reply(fac=-1), "factual_score=-1 is outside 0-10"),
    (reply(km=7.5), "key_matching_score=7.5 is not an integer"),
    (reply(inf="high"), "informativeness_score='high' is not an integer"),
    (reply(flu=True), "fluency_score=True is not an integer"),
    (reply(cls=None), "classification_score=None is not an integer"),
    ('{"comments": {"classification": "ok"}}', "no JSON object with score keys"),
    ('{"classification_score": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}", "RecursionError"),  # nested deep
    ('{"classification_score": ' + "[" * 5000 + "]" * 5000 + "}", "RecursionError"),
    ('{"classification_score": ' + "9" * 5000 + "}", "4300 digits"),  # json refuses the integer
    (reply(cls="9" * 400), "is not an integer"),  # a numeric string too long to be a score (was OverflowError)
    (reply(cls="1" + "0" * 30 + ".0"), "is not an integer"),
]


@pytest.mark.parametrize(("text", "reason"), REJECTED)
def test_rejected_replies_say_why(text: str, reason: str) -> None:
    with pytest.raises(JudgeParseError) as caught:
        parse_judge_reply(text)
    assert reason in str(caught.value) and len(str(caught.value)) < 400  # the reason stays short


def test_hostile_input_is_fast() -> None:
    # Many unclosed braces and a huge reply: bounded work, a clear error, well under a second.
    started = time.perf_counter()
    with pytest.raises(JudgeParseError):
        parse_judge_reply("{" * 50_000 + '"a": 1')
    with pytest.raises(JudgeParseError, match="exceeds"):
        parse_judge_reply("x" * 300_000)
    assert time.perf_counter() - started < 1.0


@given(st.lists(st.integers(0, 10), min_size=5, max_size=5), st.integers(0, 60), st.text(max_size=40))
def test_round_trip(values: list[int], judge_total: int, prose: str) -> None:
    obj = dict(zip(SCORE_KEYS, values, strict=True)) | {"total_score": judge_total}
    scores = parse_judge_reply(f"{prose.replace('{', '(')}\n```json\n{json.dumps(obj, indent=4)}\n```")
    assert [scores.scores[k] for k in SCORE_KEYS] == values
    assert scores.total == sum(values) and scores.total_mismatch == (judge_total != sum(values))


# --- prompt -------------------------------------------------------------------------------------------


def test_paper_prompt_shape() -> None:
    # The official f-string starts with a newline, indents by 8 spaces and ends with "\n" + 8 spaces.
    text = PAPER_USER_TEMPLATE
    assert text.startswith("\n        Below is a ground-truth description and analysis,")
    assert text.endswith("\n        }}\n        ")
    assert "        1. Classification Correctness (10 pts)  \n" in text  # two trailing spaces kept
    assert "        5. Factual Consistency (10 pts)\n" in text
    assert SYSTEM_MESSAGE == "You are an expert evaluator for video anomaly detection outputs."


def test_paper_prompt_matches_the_paper_doc_verbatim() -> None:
    # docs/paper.md §8.5: the fenced block after "* **User prompt**", ⎵ = trailing space; it leaves out the
    # f-string's opening "\n" and closing "\n" + 8 spaces
    lines = PAPER_DOC.read_text(encoding="utf-8").replace("⎵", " ").split("\n")
    marker = next(i for i, line in enumerate(lines) if line.startswith("* **User prompt**"))
    start = next(i for i in range(marker, len(lines)) if lines[i] == "```") + 1
    body = lines[start : lines.index("```", start)]
    doc_prompt = "\n" + "\n".join(body) + "\n        "
    fields = {k: "{" + k + "}" for k in ("gt_description", "gt_analysis", "description", "analysis")}
    assert PAPER_USER_TEMPLATE.format(**fields) == doc_prompt


def test_build_messages_inserts_texts_verbatim() -> None:
    system, user = build_messages("GT {desc}", "GT analysis", "pred }{", "pred analysis")
    assert system == {"role": "system", "content": SYSTEM_MESSAGE}
    assert "        - Description: GT {desc}\n        - Analysis: GT analysis\n" in user["content"]
    assert "        - Description: pred }{\n        - Analysis: pred analysis\n" in user["content"]
    assert '"total_score": int (0-50),' in user["content"] and "{{" not in user["content"]


def test_presets_have_distinct_versions_and_clean_is_dedented() -> None:
    assert PRESETS["paper"].version != PRESETS["clean"].version
    assert PRESETS["paper"].version.startswith("paper-")
    clean = PRESETS["clean"].user_template
    assert clean.startswith("Below is") and all(line == line.rstrip() for line in clean.splitlines())
    with pytest.raises(ValueError, match=r"expected one of \['clean', 'paper'\]"):
        get_preset("fancy")
