"""Lenient parsers that reproduce the official VAU-R1 evaluation scripts (``docs/paper.md`` §4.1–4.3).

Used only to re-score official outputs ("paper_compat"); training rewards and default metrics use the
strict parsers of :mod:`vau_r1.rewards.parsing`. Like those, they run in time linear in their input.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

from vau_r1.data.schema import CLASS_LABELS, label_key

__all__ = ["parse_choice_lenient", "parse_label_lenient", "parse_span_lenient"]

_ANSWER_LETTER_RE = re.compile(r"<answer>\s*([A-D])\s*</answer>", re.IGNORECASE)
# Official: r"<\s*([A-D])\s*/?\s*>". Rewritten as "\s*(?:/\s*)?" (same language) so that a long
# run of spaces cannot make the two adjacent "\s*" backtrack quadratically.
_ANGLE_LETTER_RE = re.compile(r"<\s*([A-D])\s*(?:/\s*)?>", re.IGNORECASE)
_STANDALONE_RE = re.compile(r"(?<![A-Za-z0-9])([A-D])(?![A-Za-z0-9])", re.IGNORECASE)
_THINK_CLOSE_RE = re.compile(r"</think>", re.IGNORECASE)


def parse_choice_lenient(text: str) -> str | None:
    """The official QA answer cleaner (``clean_model_answer``, ``docs/paper.md`` §4.1).

    First match wins: ``<answer> X </answer>``; ``<X>`` or ``<X/>``; the last standalone letter
    after the last ``</think>`` (only when there is one); the last standalone letter anywhere.
    Case-insensitive, so the article "a" counts as ``A`` (official behaviour). ``None`` where the
    official script returns ``""``.

    >>> parse_choice_lenient("I pick b"), parse_choice_lenient("<think>A?</think> so c")
    ('B', 'C')
    """
    for pattern in (_ANSWER_LETTER_RE, _ANGLE_LETTER_RE):
        match = pattern.search(text)
        if match:
            return match.group(1).upper()
    last_close = deque(_THINK_CLOSE_RE.finditer(text), maxlen=1)
    if last_close:
        tail = _STANDALONE_RE.findall(text[last_close[0].end() :])
        if tail:
            return tail[-1].upper()
    found = _STANDALONE_RE.findall(text)
    return found[-1].upper() if found else None


def _first_pair_on_a_line(text: str, opener: str, closer: str) -> str | None:
    """``re.search(opener + "(.*?)" + closer, text)`` without DOTALL, in linear time."""
    for line in text.split("\n"):
        start = line.find(opener)
        if start >= 0:
            end = line.find(closer, start + len(opener))
            if end >= 0:
                return line[start + len(opener) : end]
    return None


def _time_to_seconds(value: str) -> float:
    """Official ``time_to_seconds``: ``H:M:S(.f)`` or ``M:S(.f)`` via ``strptime``; raises ValueError."""
    fields = len(value.split(":"))  # counted before the truncation below, as officially
    pieces = value.split(".")
    if len(pieces) > 2:
        value = ".".join(pieces[:2])
    fraction = ".%f" if len(value.split(".")) == 2 else ""
    fmt = {3: "%H:%M:%S", 2: "%M:%S"}.get(fields, "%S") + fraction
    parsed = datetime.strptime(value, fmt)
    return parsed.hour * 3600 + parsed.minute * 60 + parsed.second + parsed.microsecond / 1_000_000


_NOT_TIME_CHAR_RE = re.compile(r"[^0-9:.,-]")


def parse_span_lenient(text: str) -> tuple[float, float] | None:
    """The official TAG parser (``evaluation_tag.py`` ``parse_html``, ``docs/paper.md`` §4.2).

    Takes the first ``<glue>…</glue>`` on one line, else the first ``[…]`` on one line; drops every
    character but ``0-9:.,-``; needs exactly two comma-separated parts; parses ``H:M:S``/``M:S``
    when both parts contain ``:``, else floats. Returns the raw pair (possibly reversed or negative).
    ``None`` where the official script falls back to ``(0, 0)`` or would crash on a bad number;
    the metrics give such rows IoU 0, as the official ``start == end`` rule does.

    >>> parse_span_lenient("The anomaly is at [00:01:05, 1:10.5] seconds")
    (65.0, 70.5)
    >>> parse_span_lenient("<glue>from 2 s to 4 s</glue>") is None
    True
    """
    content = _first_pair_on_a_line(text, "<glue>", "</glue>")
    if content is None:
        content = _first_pair_on_a_line(text, "[", "]")
    if content is None:
        return None
    parts = _NOT_TIME_CHAR_RE.sub("", content).split(",")
    if len(parts) != 2:
        return None
    start, end = parts
    try:
        if ":" in start and ":" in end:
            return _time_to_seconds(start), _time_to_seconds(end)
        return float(start), float(end)
    except ValueError:
        return None


@lru_cache(maxsize=16)
def _label_pattern(labels: tuple[str, ...]) -> re.Pattern:
    # Official: words of a label joined by "[_\s]*", word-bounded, case-insensitive.
    parts = ["(?:" + r"[_\s]*".join(map(re.escape, re.split(r"[_\s]+", label))) + ")" for label in labels]
    # The lookahead on the possible first letters only skips hopeless positions faster.
    first = re.escape("".join(sorted({c for label in labels for c in (label[:1].lower(), label[:1].upper())})))
    return re.compile(rf"\b(?=[{first}])(" + "|".join(parts) + r")\b", re.IGNORECASE)


_HTML_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>")


def _first_answer_element_text(text: str) -> str:
    """Approximates BeautifulSoup(html.parser) ``soup.find("answer").text`` on model output."""
    start = text.find("<answer>")
    end = text.find("</answer>", start + 8)
    inner = text[start + 8 :] if end < 0 else text[start + 8 : end]
    return _HTML_TAG_RE.sub("", inner)


def parse_label_lenient(text: str, labels: Sequence[str] = CLASS_LABELS) -> str | None:
    """The official CLS parser (``evaluation_cls.py``, ``docs/paper.md`` §4.3): the first label mentioned.

    If the text contains ``<answer>``, only the first answer element is searched (tags inside it are
    dropped, as BeautifulSoup's ``.text`` does; an unclosed element runs to the end). Labels match
    case-insensitively at word boundaries with any run of spaces/underscores between their words.

    >>> parse_label_lenient("It looks like a traffic  accident, maybe a Fire.")
    'Traffic_accident'
    >>> parse_label_lenient("<think>Fire?</think><answer>Normal</answer>")
    'Normal'
    """
    if "<answer>" in text:
        text = _first_answer_element_text(text)
    labels = tuple(labels)
    canonical = {label_key(label): label for label in labels}
    for match in _label_pattern(labels).finditer(text):
        # A glued hit ("trafficaccident") does not normalise back to a label and is skipped, as officially.
        label = canonical.get(label_key(match.group(1)))
        if label is not None:
            return label
    return None
