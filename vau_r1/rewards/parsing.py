"""Parsers for model outputs, shared by the GRPO rewards and the offline metrics.

Two families live here:

* **Strict** parsers (the default everywhere) that resist reward hacking: one ``<answer>`` block,
  no nested or repeated tags, one option letter, one label, one well-formed ``[start_s, end_s]``.
* **Lenient** ``*_lenient`` parsers that reproduce the official VAU-R1 evaluation scripts
  (``docs/paper.md`` §4.1–4.3), used only to re-score official outputs ("paper_compat"); they live in
  :mod:`vau_r1.rewards.parsing_compat` and are re-exported here.

Every parser runs in time linear in its input: tags are found with one non-backtracking regex
or ``str.find``, so a 1 MB adversarial completion is parsed in milliseconds.

Output formats (``docs/paper.md`` §4):

* think format: ``<think>…</think> <answer>…</answer>``, plus `` <glue>[s, e]</glue>`` for grounding;
* answer-only format (no-think eval and SFT): ``<answer>…</answer>`` or ``<glue>[s, e]</glue>``
  alone. ``require_think=False`` accepts it; a ``<think>`` block is then optional, never required.

Tag names are matched case-insensitively when counting and checking structure (an ``<ANSWER>``
inside the think block still counts as a second answer); a well-formed completion spells its
tags in lower case.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from vau_r1.data.schema import CLASS_LABELS, OPTION_LETTERS, label_key
from vau_r1.rewards.blocks import (
    MAX_TAGS,
    TAG_NAMES,
    Block,
    Blocks,
    answer_text,
    completion_text,
    extract_answer,
    is_well_formed,
    parse_blocks,
    span_from_text,
)

__all__ = [
    "MAX_TAGS",
    "TAG_NAMES",
    "Block",
    "Blocks",
    "answer_text",
    "completion_text",
    "extract_answer",
    "is_well_formed",
    "parse_anomaly",
    "parse_blocks",
    "parse_choice",
    "parse_choice_lenient",
    "parse_label",
    "parse_label_lenient",
    "parse_span",
    "parse_span_lenient",
    "span_from_text",
]


# --------------------------------------------------------------------------------------------
# Strict value parsers
# --------------------------------------------------------------------------------------------

# "Answer:", "The answer is", "The correct option is", "Final answer:" ... (anchored, no nesting).
_PREFIX_RE = re.compile(
    r"(?:the\s+)?(?:(?:best|correct|final|right)\s+)?(?:answer|option|choice)\b(?:\s+is)?\s*[:：]?\s*", re.IGNORECASE
)
_WRAPPING = " \t\r\n*`\"'“”‘’"
_CHOICE_RE = re.compile(r"([(\[]?)([A-Da-d])([)\].:]?)(.*)", re.DOTALL)
# An option marker inside option text ("A. x B. y"): a capital letter with ".", ")" or ":" after
# it, at the start or after whitespace or "(", and followed by whitespace or the end.
_MARKER_RE = re.compile(r"(?:^|(?<=[\s(]))[A-D][.):](?=\s|$)")
_CLOSERS = {"(": ")", "[": "]"}


def _strip_prefix(answer: str) -> str:
    answer = answer.strip(_WRAPPING)
    match = _PREFIX_RE.match(answer)
    return answer[match.end() :].strip(_WRAPPING) if match else answer


def _norm_text(text: str) -> str:
    return " ".join(text.split()).strip(" .").lower()


def _letters_with_text(options: Sequence[str], text: str) -> list[str]:
    """Letters of the options whose text equals ``text`` (ignoring case, spacing and a final period)."""
    wanted = _norm_text(text)
    pairs = zip(OPTION_LETTERS, options, strict=False)  # extra options beyond D are ignored
    return [letter for letter, option in pairs if _norm_text(str(option)) == wanted]


def _letter_of(answer: str, options: Sequence[str] | None) -> str | None:
    match = _CHOICE_RE.fullmatch(answer)
    if match is None:
        return None
    opener, letter, punct, rest = match.groups()
    letter = letter.upper()
    if (opener and punct != _CLOSERS[opener]) or (not opener and punct == "]"):
        return None
    if not rest.strip(" ."):  # "B", "B.", "(B).", "B)"
        return letter
    # "B. option text": punctuation, then whitespace, then text without a second option marker.
    if not punct or not rest[0].isspace() or _MARKER_RE.search(rest.strip()):
        return None
    if options is not None:  # the text names another option: contradiction
        same = _letters_with_text(options, rest)
        if same and letter not in same:
            return None
    return letter


def parse_choice(text: str, options: Sequence[str] | None = None, *, bare: bool = True) -> str | None:
    """The option letter ``A``–``D`` chosen by a completion, or ``None``.

    The answer (:func:`answer_text`) may be ``B``, ``b``, ``(B)``, ``B.``, ``B)``, ``B. option text``,
    ``Answer: B`` or ``The answer is B``. Rejected: several letters (``A or B``, ``A, C``), an echoed
    option list (``A. x B. y``), an empty answer, and letters inside words (``Answer`` is not ``A``).
    With ``options`` (the four option texts), an answer equal to exactly one option text maps to
    its letter, and ``B. <text of option C>`` is rejected.

    >>> parse_choice("<think>...</think><answer>The answer is (c)</answer>")
    'C'
    >>> parse_choice("<answer>A or B</answer>") is None, parse_choice("<answer>Answer</answer>") is None
    (True, True)
    >>> parse_choice("No sign of anomaly", options=["Fire", "No sign of anomaly", "Fight", "Theft"])
    'B'
    """
    answer = answer_text(text, bare=bare)
    if answer is None:
        return None
    answer = _strip_prefix(answer)
    letter = _letter_of(answer, options)
    if letter is None and options is not None:
        same = _letters_with_text(options, answer)
        letter = same[0] if len(same) == 1 else None
    return letter


@lru_cache(maxsize=64)
def _label_map(labels: tuple[str, ...]) -> dict[str, str]:
    return {label_key(label): label for label in labels}


def parse_label(text: str, labels: Sequence[str] = CLASS_LABELS, *, bare: bool = True) -> str | None:
    """The label (spelled as in ``labels``) that the whole answer names, or ``None``.

    Case-insensitive; spaces and underscores are equivalent (:func:`~vau_r1.data.schema.label_key`);
    surrounding quotes, ``*`` and trailing punctuation are ignored, as is an ``Answer:`` prefix.
    An answer naming several labels, or a label plus other words, gives ``None``.

    >>> parse_label("<answer>traffic accident.</answer>")
    'Traffic_accident'
    >>> parse_label("<answer>Fire, Explosion</answer>") is None
    True
    """
    answer = answer_text(text, bare=bare)
    if answer is None:
        return None
    answer = _strip_prefix(answer).rstrip(".,;:!?" + _WRAPPING)
    return _label_map(tuple(labels)).get(label_key(answer)) if answer else None


def parse_anomaly(text: str, *, bare: bool = True) -> str | None:
    """``"Normal"`` or ``"Anomaly"`` from the answer (:func:`parse_label` over those two), else ``None``.

    >>> parse_anomaly("<think>x</think><answer>anomaly</answer>"), parse_anomaly("<answer>abnormal</answer>")
    ('Anomaly', None)
    """
    return parse_label(text, ("Normal", "Anomaly"), bare=bare)


def parse_span(text: str) -> tuple[float, float] | None:
    """The ``(start_s, end_s)`` of the single ``<glue>[s, e]</glue>`` block, in seconds.

    Requires exactly one glue block (not nested, no tag inside) holding two finite numbers with
    ``0 <= s <= e``, or exactly ``[-1, -1]`` (the normal-video answer). ``None`` otherwise:
    nested brackets, three numbers, NaN/inf, units, several glue blocks.

    >>> parse_span("<answer>Anomaly</answer><glue>[5.2, 10.4]</glue>")
    (5.2, 10.4)
    >>> parse_span("<glue>[[1, 2]]</glue>") is None, parse_span("<glue>[1, 2, 3]</glue>") is None
    (True, True)
    """
    block = parse_blocks(text).single("glue")
    return None if block is None else span_from_text(block.content)


# Re-exported so callers find every parser in one module.
from vau_r1.rewards.parsing_compat import (  # noqa: E402
    parse_choice_lenient,
    parse_label_lenient,
    parse_span_lenient,
)
