"""Strict parsing of the judge's reply into five 0–10 scores.

The official script took the first ```` ```json ```` block with a regex and trusted the judge's own
``total_score``; a reply without a fence became ``None`` and crashed the run (docs/paper.md §10 item 29).
Here a fenced block is preferred, a bare object is accepted, the total is recomputed and any problem
raises :class:`JudgeParseError` whose message says what was wrong. Objects are located with
:meth:`json.JSONDecoder.raw_decode` from each ``{`` in turn (no backtracking regex); a hostile reply (JSON
nested thousands deep, numbers of thousands of digits, megabytes of text) is a parse error, never a crash.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: The five score keys the prompt asks for, in rubric order.
SCORE_KEYS: tuple[str, ...] = (
    "classification_score",
    "key_matching_score",
    "fluency_score",
    "informativeness_score",
    "factual_score",
)
#: Paper table column of each score key (Table A: CLS, KM, FLU, INF, FAC; Total is their sum).
SCORE_COLUMNS: dict[str, str] = dict(zip(SCORE_KEYS, ("CLS", "KM", "FLU", "INF", "FAC"), strict=True))
MAX_SCORE = 10
_MAX_CANDIDATES = 256  # '{' positions tried before giving up (bounds the work on a hostile reply)
_MAX_DIGITS = 20  # a numeric string longer than this is not read as a score (int() of it is costly or refused)
MAX_REPLY_CHARS = 200_000  # longer replies are rejected unread (a judge reply is a few thousand characters)
_INTEGRAL = re.compile(r"[+-]?\d+(?:\.0*)?")
_FENCE = "```json"
_DECODER = json.JSONDecoder()


class JudgeParseError(ValueError):
    """The judge's reply has no usable score object; ``str(error)`` is the reason."""


@dataclass(frozen=True)
class JudgeScores:
    """The five recomputed scores of one judged row.

    Attributes:
        scores: score key (:data:`SCORE_KEYS`) → integer 0–10.
        judge_total: the judge's own ``total_score`` (diagnostics only), ``None`` if absent/unreadable.
        comments: the judge's comments, by aspect (may be empty).
    """

    scores: dict[str, int]
    judge_total: int | None = None
    comments: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Sum of the five scores (0–50); the judge's total is never used."""
        return sum(self.scores[key] for key in SCORE_KEYS)

    @property
    def total_mismatch(self) -> bool:
        """``True`` when the judge reported a total that differs from the recomputed one."""
        return self.judge_total is not None and self.judge_total != self.total


def _as_int(value: Any) -> int | None:
    """An int, an integral float or an integral numeric string as ``int``; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _INTEGRAL.fullmatch(value.strip()):
        digits = value.strip().partition(".")[0]
        return int(digits) if len(digits) <= _MAX_DIGITS else None  # "1e400"-sized strings are no score
    return None


def _fenced_body(text: str) -> str | None:
    """Text after the first ```` ```json ```` fence (up to its closing fence), or ``None``."""
    start = text.lower().find(_FENCE)
    if start < 0:
        return None
    body_start = start + len(_FENCE)
    end = text.find("```", body_start)
    return text[body_start:] if end < 0 else text[body_start:end]


def find_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` that carries a score key; a ```` ```json ```` block is tried first.

    Raises:
        JudgeParseError: no such object (the reason quotes the first JSON error met).

    Example:
        >>> find_json_object('Sure! {"fluency_score": 9} bye')
        {'fluency_score': 9}
    """
    fenced = _fenced_body(text)
    first_error = None
    for source in (fenced, text) if fenced is not None else (text,):
        pos = source.find("{")
        for _ in range(_MAX_CANDIDATES):
            if pos < 0:
                break
            try:
                obj, end = _DECODER.raw_decode(source, pos)
            except json.JSONDecodeError as error:
                first_error = first_error or f"invalid JSON ({error.msg} at char {error.pos})"
                pos = source.find("{", pos + 1)
                continue
            except (RecursionError, ValueError) as error:  # nested too deeply; an integer of > 4300 digits
                first_error = first_error or f"unreadable JSON ({type(error).__name__}: {str(error)[:80]})"
                pos = source.find("{", pos + 1)
                continue
            if isinstance(obj, dict) and any(key in obj for key in (*SCORE_KEYS, "total_score")):
                return obj
            pos = source.find("{", end)
    raise JudgeParseError(f"no JSON object with score keys found: {first_error or 'no JSON object in reply'}")


def parse_judge_reply(text: str) -> JudgeScores:
    """Parse the judge's reply into :class:`JudgeScores`, recomputing the total.

    Scores may be ints, integral floats (``8.0``) or integral strings (``"8"``); each must lie in 0–10.

    Raises:
        JudgeParseError: empty reply, no score object, a missing or non-integer score, or one out of range.

    Example:
        >>> reply = '```json\\n{"classification_score": 8, "key_matching_score": "7", "fluency_score": 9.0,'
        >>> reply += ' "informativeness_score": 6, "factual_score": 7, "total_score": 40}\\n```'
        >>> scores = parse_judge_reply(reply)
        >>> scores.total, scores.judge_total, scores.total_mismatch
        (37, 40, True)
    """
    if not isinstance(text, str) or not text.strip():
        raise JudgeParseError("empty reply")
    if len(text) > MAX_REPLY_CHARS:
        raise JudgeParseError(f"reply of {len(text)} characters exceeds {MAX_REPLY_CHARS}")
    obj = find_json_object(text)
    scores: dict[str, int] = {}
    for key in SCORE_KEYS:
        if key not in obj:
            raise JudgeParseError(f"missing field {key!r}")
        value = _as_int(obj[key])
        if value is None:
            raise JudgeParseError(f"{key}={obj[key]!r:.60} is not an integer")
        if not 0 <= value <= MAX_SCORE:
            raise JudgeParseError(f"{key}={value} is outside 0-{MAX_SCORE}")
        scores[key] = value
    comments = obj.get("comments")
    comments = {str(k): str(v) for k, v in comments.items()} if isinstance(comments, dict) else {}
    return JudgeScores(scores=scores, judge_total=_as_int(obj.get("total_score")), comments=comments)
