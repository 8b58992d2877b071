"""Parsing of one VAU-Bench CSV row into a :class:`~vau_r1.data.schema.VideoSample` (the cell quirks live here).

* ``-1`` (or an empty cell) in a text field means "not annotated": the field becomes ``None``;
* ``Correct Option`` is a letter, a ``"D. option text"`` prefix, or the full text of an option;
* ``0,0`` times mark a normal video, ``-1,-1`` an anomaly without a temporal annotation;
* ``Anomaly Class`` is spelled with spaces or underscores in any case (see :func:`canonical_label`).
"""

from __future__ import annotations

import logging
import math
import re

from vau_r1.data.schema import CLASS_LABELS, NORMAL_LABEL, OPTION_LETTERS, SOURCES, VideoSample, canonical_label

logger = logging.getLogger(__name__)

#: The 13 published columns, in file order.
COLUMNS: tuple[str, ...] = (
    "Video Name", "Question", "Option 1", "Option 2", "Option 3", "Option 4", "Correct Option",
    "Key Object", "Description", "Reasoning", "Anomaly Class", "Start Time", "End Time",
)  # fmt: skip
_PLACEHOLDERS = frozenset({"-1", "-1.0"})  # text cells meaning "not annotated"
_LETTER_PREFIX = re.compile(r"([A-Da-d])\s*[.):]\s*(.*)", re.DOTALL)
_SPACES = re.compile(r"\s+")



class AnnotationError(ValueError):
    """An annotation file that is not a readable VAU-Bench table (missing columns, duplicate videos, ...)."""


def parse_correct_option(value: str, options: tuple[str, ...] | None = None) -> tuple[str | None, str | None]:
    """Read a ``Correct Option`` cell as a letter ``A``–``D``.

    Accepts a letter, a letter with the option text (``"D. Green trash bin ..."``, 8 rows of
    test_msad) or the full text of exactly one option.

    Returns:
        ``(letter, None)``, or ``(None, problem)`` for a placeholder or an unreadable value.

    >>> options = ("Rain", "A dog barks", "Car", "Bin tips over")
    >>> parse_correct_option("b"), parse_correct_option("D. Bin tips over", options)
    (('B', None), ('D', None))
    >>> parse_correct_option("a dog  barks", options), parse_correct_option("-1")[0]
    (('B', None), None)
    """
    text = value.strip()
    if text == "" or text in _PLACEHOLDERS:
        return None, _absent("Correct Option", text)
    if text.upper() in OPTION_LETTERS:
        return text.upper(), None
    by_text = _option_letter(text, options)
    if by_text is not None:
        return by_text, None
    match = _LETTER_PREFIX.fullmatch(text)
    if match:
        letter, named = match.group(1).upper(), _option_letter(match.group(2), options)
        if named in (None, letter):
            return letter, None
        return None, f"Correct Option {text!r} gives letter {letter} but the text of option {named}"
    return None, f"Correct Option {text!r} is not a letter A-D, a 'D. option text' prefix or the text of an option"


def _option_letter(text: str, options: tuple[str, ...] | None) -> str | None:
    """Letter of the one option whose text equals ``text`` (case and spacing ignored), else ``None``."""
    if not options:
        return None
    key = _fold(text)
    hits = [letter for letter, option in zip(OPTION_LETTERS, options, strict=True) if _fold(option) == key]
    return hits[0] if len(hits) == 1 else None


def _fold(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def _absent(column: str, raw: str) -> str:
    return f"{column} is {'the -1 placeholder' if raw in _PLACEHOLDERS else 'empty'} (not annotated)"


def _cell(value: object) -> str:
    """A cell as stripped text (``""`` for ``None``/NaN), whatever type the frame holds."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _text_field(cells: dict[str, str], column: str) -> tuple[str | None, str | None]:
    """``(text, None)``, or ``(None, note)`` when the cell is empty or the ``-1`` placeholder."""
    raw = cells[column]
    return (None, _absent(column, raw)) if raw == "" or raw in _PLACEHOLDERS else (raw, None)


def _parse_qa(cells: dict[str, str], where: str) -> tuple[str | None, tuple | None, str | None, str | None]:
    """``(question, options, answer, note)``; ``note`` explains the first missing or bad QA field."""
    question, note = _text_field(cells, "Question")
    parsed = [_text_field(cells, f"Option {index}") for index in range(1, 5)]
    texts = tuple(text for text, _ in parsed if text is not None)
    options = texts if len(texts) == 4 else None
    answer, answer_note = parse_correct_option(cells["Correct Option"], options)
    if answer_note and "not annotated" not in answer_note:
        answer_note = f"{where}: {answer_note}"
    note = note or next((option_note for _, option_note in parsed if option_note), None) or answer_note
    return question, options, answer, note


def _parse_class(raw: str, where: str) -> tuple[str | None, str | None]:
    """``(canonical label, None)`` or ``(None, note)``."""
    if raw == "" or raw in _PLACEHOLDERS:
        return None, _absent("Anomaly Class", raw)
    label = canonical_label(raw)
    if label is None:
        return None, f"{where}: unknown Anomaly Class {raw!r}; not one of the {len(CLASS_LABELS)} VAU-Bench labels"
    return label, None


def _seconds(raw: str, column: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{where}: unparseable {column} {raw!r} (expected seconds, e.g. 12.5)")
    return value


def _parse_span(start_raw: str, end_raw: str, where: str) -> tuple[tuple[float, float] | None, bool, str | None]:
    """``(span_s, zero_times, note)`` from the time cells; ``zero_times`` marks the ``0,0`` normal sentinel."""
    if start_raw == "" or end_raw == "":
        return None, False, "Start Time / End Time empty (not annotated)"
    try:
        start_s, end_s = _seconds(start_raw, "Start Time", where), _seconds(end_raw, "End Time", where)
    except ValueError as err:
        logger.warning("%s; the row is kept, without an interval", err)
        return None, False, str(err)
    if start_s == 0 and end_s == 0:
        return None, True, "0,0 times mark a normal video (no anomaly interval)"
    if start_s == -1 and end_s == -1:
        return None, False, "-1,-1 times: anomaly without a temporal annotation"
    if 0 <= start_s < end_s:
        return (start_s, end_s), False, None
    note = f"{where}: invalid interval Start Time {start_raw!r}, End Time {end_raw!r} (need 0 <= start < end)"
    logger.warning("%s; the row is kept, without an interval", note)
    return None, False, note


def _row_source(video: str, source: str | None, where: str) -> str | None:
    """Source from the name prefix, else the given ``source``; a contradiction is an error."""
    prefix = next((name for name in SOURCES if video.startswith(f"{name}_")), None)
    if prefix is not None and source is not None and prefix != source:
        raise AnnotationError(
            f"{where}: video {video!r} has the prefix '{prefix}_' but source={source!r} was given; "
            "drop the source (prefixed train/val names carry it) or pass the matching one"
        )
    return prefix or source


def parse_row(raw_cells: dict[str, object], row: int, source: str | None, origin: str) -> tuple[VideoSample, dict]:
    """One CSV row → ``(sample, notes)``; notes explain fields that became ``None``, by task group."""
    cells = {column: _cell(value) for column, value in raw_cells.items()}
    where = f"{origin} row {row}"
    if not cells["Video Name"]:
        raise AnnotationError(f"{where}: empty Video Name; every row must name its video file")
    question, options, answer, qa_note = _parse_qa(cells, where)
    label, cls_note = _parse_class(cells["Anomaly Class"], where)
    span_s, zero_times, span_note = _parse_span(cells["Start Time"], cells["End Time"], where)
    if zero_times and label not in (None, NORMAL_LABEL):
        span_note = f"0,0 times on a row of class {label} (no anomaly interval)"
    description, description_note = _text_field(cells, "Description")
    reasoning, reasoning_note = _text_field(cells, "Reasoning")
    sample = VideoSample(
        video=cells["Video Name"],
        source=_row_source(cells["Video Name"], source, where),  # type: ignore[arg-type]
        row=row,
        question=question,
        options=options,
        answer=answer,
        anomaly_class=label,
        is_normal=(label == NORMAL_LABEL) if label is not None else (True if zero_times else None),
        span_s=span_s,
        key_object=_text_field(cells, "Key Object")[0],
        description=description,
        reasoning=reasoning,
    )
    notes = {"qa": qa_note, "cls": cls_note, "span": span_note, "reasoning": description_note or reasoning_note}
    return sample, {group: note for group, note in notes.items() if note}
