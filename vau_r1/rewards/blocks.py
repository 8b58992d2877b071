"""Tag structure of a completion: ``<think>``, ``<answer>`` and ``<glue>`` blocks, found in linear time.

A well-formed completion is one ``<think>`` block, one ``<answer>`` block and, for grounding, one
``<glue>`` block, in that order, with only whitespace between them and no tag nested in another.
Tag names are matched case-insensitively when counting (an ``<ANSWER>`` inside the think block still
counts as a second answer); a well-formed completion spells its tags in lower case.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from vau_r1.data.schema import NORMAL_SPAN

__all__ = ["MAX_TAGS", "TAG_NAMES", "Block", "Blocks", "answer_text", "completion_text", "extract_answer",
           "is_well_formed", "parse_blocks", "span_from_text"]

TAG_NAMES: tuple[str, ...] = ("think", "answer", "glue")
Presence = Literal["require", "optional", "forbid"]

_TAG_RE = re.compile(r"<(/?)(think|answer|glue)>", re.IGNORECASE)
#: A well-formed completion has at most 6 tags; past this many the text is malformed and the scan
#: stops, which bounds the Python-level work on adversarial tag soup.
MAX_TAGS = 64


def completion_text(completion: object) -> str:
    """The text of one completion as TRL passes it; anything unexpected gives ``""``.

    Accepts a plain string, or a conversational completion ``[{"role": "assistant", "content": c}]``
    where ``c`` is a string or a list of ``{"type": "text", "text": ...}`` parts (joined).

    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "<answer>B</answer>"}]}])
    '<answer>B</answer>'
    >>> completion_text(None)
    ''
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            return "".join(p for p in parts if isinstance(p, str))
    return ""


# --------------------------------------------------------------------------------------------
# Tag structure
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One top-level ``<name>content</name>`` block; ``start``/``end`` index the tags in the text."""

    name: str
    content: str
    start: int
    end: int
    has_inner_tags: bool


@dataclass(frozen=True)
class Blocks:
    """The tag structure of a completion (see :func:`parse_blocks`).

    Attributes:
        blocks: closed top-level blocks, in order of appearance.
        opened: number of opening tags per name, at any depth.
        closed: number of closing tags per name, at any depth.
        nested: a tag was opened inside another block.
        unbalanced: a closing tag without its opening tag, a wrong closing order, or an unclosed block.
        stray_text: non-whitespace text (or a stray tag) outside the top-level blocks.
        lower_case: every tag is spelled in lower case.
        too_many_tags: more than :data:`MAX_TAGS` tags; the scan stopped and ``blocks`` is empty.
    """

    blocks: tuple[Block, ...]
    opened: Counter
    closed: Counter
    nested: bool
    unbalanced: bool
    stray_text: bool
    lower_case: bool
    too_many_tags: bool = False

    def single(self, name: str) -> Block | None:
        """The block ``name`` when the text has exactly one such tag pair, at top level, with no tag inside."""
        if self.opened[name] != 1 or self.closed[name] != 1:
            return None
        found = [block for block in self.blocks if block.name == name]
        if len(found) != 1 or found[0].has_inner_tags:
            return None
        return found[0]


def parse_blocks(text: str) -> Blocks:
    """Scan the ``<think>``/``<answer>``/``<glue>`` tags of ``text`` once, with a stack.

    Text with more than :data:`MAX_TAGS` tags is reported as malformed (``too_many_tags``) without
    further analysis: no block can be extracted from it.

    >>> b = parse_blocks("<think>a</think> <answer>B</answer>")
    >>> [blk.name for blk in b.blocks], b.nested, b.unbalanced, b.stray_text
    (['think', 'answer'], False, False, False)
    >>> parse_blocks("<think><answer>A</answer></think><answer>B</answer>").nested
    True
    """
    stack: list[list] = []  # frames: [name, tag_start, content_start, has_inner_tags]
    in_stack: Counter = Counter()
    opened: Counter = Counter()
    closed: Counter = Counter()
    blocks: list[Block] = []
    nested = unbalanced = stray = False
    lower_case = True
    last_end = 0
    for count, match in enumerate(_TAG_RE.finditer(text)):
        if count == MAX_TAGS:
            return Blocks((), opened, closed, nested, True, True, lower_case, too_many_tags=True)
        is_close, name = match.group(1) == "/", match.group(2).lower()
        lower_case = lower_case and match.group(2) == name
        if not is_close:
            opened[name] += 1
            if stack:
                stack[-1][3] = nested = True
            elif text[last_end : match.start()].strip():
                stray = True
            stack.append([name, match.start(), match.end(), False])
            in_stack[name] += 1
            continue
        closed[name] += 1
        if not in_stack[name]:  # closing tag with no matching opening tag
            unbalanced = True
            if stack:
                stack[-1][3] = True
            else:
                stray = True
            continue
        if stack[-1][0] != name:  # wrong closing order: drop the unclosed inner blocks
            unbalanced = True
            while stack[-1][0] != name:
                in_stack[stack.pop()[0]] -= 1
            stack[-1][3] = True
        frame = stack.pop()
        in_stack[name] -= 1
        if not stack:
            content = text[frame[2] : match.start()]
            blocks.append(Block(name, content, frame[1], match.end(), frame[3]))
            last_end = match.end()
    if stack:
        unbalanced = stray = True
    elif text[last_end:].strip():
        stray = True
    return Blocks(tuple(blocks), opened, closed, nested, unbalanced, stray, lower_case)


def is_well_formed(
    text: str | Blocks, *, require_think: bool = True, answer: Presence = "require", glue: Presence = "forbid"
) -> bool:
    """Whether ``text`` follows the output format exactly.

    Well-formed means: optional whitespace, then ``<think>…</think>`` (required when
    ``require_think``, else optional), whitespace, ``<answer>…</answer>`` (per ``answer``), whitespace,
    ``<glue>[s, e]</glue>`` (per ``glue``), optional whitespace, and nothing else. Each block appears
    at most once, in that order, tags are lower case and never nested, think and answer are not
    blank, and the glue holds a valid span (:func:`parse_span`).

    >>> is_well_formed("<think>look</think>\\n<answer>B</answer>")
    True
    >>> is_well_formed("<answer>B</answer><think>look</think>")  # out of order
    False
    >>> is_well_formed("<glue>[1.5, 3]</glue>", require_think=False, answer="optional", glue="require")
    True
    """
    blocks = text if isinstance(text, Blocks) else parse_blocks(text)
    if blocks.nested or blocks.unbalanced or blocks.stray_text or not blocks.lower_case:
        return False
    wanted = (("think", "require" if require_think else "optional"), ("answer", answer), ("glue", glue))
    position = 0
    for name, presence in wanted:
        present = position < len(blocks.blocks) and blocks.blocks[position].name == name
        if (presence == "require" and not present) or (presence == "forbid" and present):
            return False
        if present:
            content = blocks.blocks[position].content
            valid = span_from_text(content) is not None if name == "glue" else bool(content.strip())
            if not valid:
                return False
            position += 1
    return position == len(blocks.blocks)


def extract_answer(text: str) -> str | None:
    """The stripped content of the single ``<answer>`` block.

    ``None`` when the block is missing, empty, repeated (anywhere, even inside ``<think>``),
    nested in another block, or contains a tag.

    >>> extract_answer("<think>hmm</think><answer> B </answer>")
    'B'
    >>> extract_answer("<answer>A</answer><answer>B</answer>") is None
    True
    """
    block = parse_blocks(text).single("answer")
    if block is None:
        return None
    return block.content.strip() or None


def answer_text(text: str, bare: bool = True) -> str | None:
    """The answer of a completion: :func:`extract_answer`, or the whole text when it has no tag.

    With ``bare=True`` a completion without any think/answer/glue tag (the no-think eval prompt asks
    for a bare letter) is its own answer; the rewards use ``bare=False`` and require ``<answer>``.

    >>> answer_text("  B "), answer_text("B", bare=False)
    ('B', None)
    """
    if bare and _TAG_RE.search(text) is None:
        return text.strip() or None
    return extract_answer(text)


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SPAN_RE = re.compile(rf"\s*\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]\s*")


def span_from_text(content: str) -> tuple[float, float] | None:
    """Parse ``[start_s, end_s]`` (the content of a glue block) under the strict rules of :func:`parse_span`.

    >>> span_from_text(" [5.2, 10.4] "), span_from_text("[-1.0, -1.0]"), span_from_text("[3, 1]")
    ((5.2, 10.4), (-1.0, -1.0), None)
    """
    match = _SPAN_RE.fullmatch(content)
    if match is None:
        return None
    start_s, end_s = float(match.group(1)), float(match.group(2))
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        return None
    if (start_s, end_s) == NORMAL_SPAN:
        return NORMAL_SPAN
    if start_s < 0 or start_s > end_s:
        return None
    return start_s, end_s
