"""VAU-Bench annotation CSVs → typed :class:`~vau_r1.data.schema.VideoSample` records.

This is the only module that knows the CSV column names and sentinel values
(``../shared/docs/paper_spec.md`` §2.2–2.5):

* ``-1`` (or an empty cell) in a text field means "not annotated": the field becomes ``None``;
* ``Correct Option`` is a letter, a ``"D. option text"`` prefix, or the full text of an option;
* ``0,0`` times mark a normal video, ``-1,-1`` an anomaly without a temporal annotation;
* ``Anomaly Class`` is spelled with spaces or underscores in any case (see :func:`canonical_label`).

Every row becomes a sample, in file order; a row that lacks what a task needs is kept and
reported by :meth:`AnnotationTable.skipped`. Hub splits (``7xiang/VAU-Bench``) go through the same
row parser as local files.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Literal

import pandas as pd

from vau_r1.data.schema import CLASS_LABELS, NORMAL_LABEL, OPTION_LETTERS, SOURCES, TASKS, VideoSample, canonical_label

__all__ = [
    "COLUMNS",
    "HUB_REPO_ID",
    "PURPOSES",
    "SPLITS",
    "AnnotationError",
    "AnnotationTable",
    "SkippedRow",
    "annotations_from_frame",
    "hub_data_file",
    "load_annotations",
    "load_sample_annotations",
    "load_split",
    "load_vau_bench",
    "parse_correct_option",
    "skip_reason",
]

logger = logging.getLogger(__name__)

#: The 13 published columns, in file order.
COLUMNS: tuple[str, ...] = (
    "Video Name", "Question", "Option 1", "Option 2", "Option 3", "Option 4", "Correct Option",
    "Key Object", "Description", "Reasoning", "Anomaly Class", "Start Time", "End Time",
)  # fmt: skip
#: What a row is used for: ``tag`` rows differ (normal videos train on ``[-1, -1]``, evaluation needs a span).
Purpose = Literal["eval", "train"]
PURPOSES: tuple[str, ...] = ("eval", "train")
#: Hub dataset of the published annotations.
HUB_REPO_ID = "7xiang/VAU-Bench"
#: Hub splits → source of their videos. Test files have unprefixed names, so their source comes
#: from the split; train/val names carry a ``msad_``/``ucf_``/``ecva_`` prefix (``None`` here).
SPLITS: dict[str, str | None] = {
    "train": None,
    "val": None,
    "test_msad": "msad",
    "test_ucf_crime": "ucf",
    "test_ecva": "ecva",
}
#: ``datasets`` CSV-builder options that keep every cell a string, as the local loader does.
HUB_CSV_KWARGS: dict[str, object] = {"keep_default_na": False, "converters": dict.fromkeys(COLUMNS, str)}
_SAMPLE = ("assets", "sample_annotations.csv")
_PLACEHOLDERS = frozenset({"-1", "-1.0"})  # text cells meaning "not annotated"
_LETTER_PREFIX = re.compile(r"([A-Da-d])\s*[.):]\s*(.*)", re.DOTALL)
_SPACES = re.compile(r"\s+")


class AnnotationError(ValueError):
    """An annotation file that is not a readable VAU-Bench table (missing columns, duplicate videos, ...)."""


@dataclass(frozen=True)
class SkippedRow:
    """A row left out of one task, and why. ``row`` is the 1-based data-row number (header = row 0)."""

    row: int
    video: str
    task: str
    reason: str


def skip_reason(sample: VideoSample, task: str, purpose: Purpose = "eval") -> str | None:
    """Why ``sample`` cannot be used for ``task``, or ``None`` when it can.

    The rules reproduce the paper's evaluation denominators (paper_spec §2.5):

    * ``qa``: question, four options and the answer letter are present;
    * ``tag`` for ``eval``: a valid interval ``span_s`` (normal ``0,0`` and ``-1,-1`` rows are out);
    * ``tag`` for ``train``: a target :attr:`VideoSample.tag_target` (normal videos target ``[-1, -1]``);
    * ``cls``: a known class label; ``reasoning``: description and reasoning are present.

    Raises:
        ValueError: unknown ``task`` or ``purpose``.

    >>> normal = VideoSample("Normal_1.mp4", None, 1, is_normal=True)
    >>> skip_reason(normal, "tag"), skip_reason(normal, "tag", "train")
    ('normal video: no anomaly interval to ground', None)
    """
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; expected one of {list(TASKS)}")
    if purpose not in PURPOSES:
        raise ValueError(f"Unknown purpose {purpose!r}; expected one of {list(PURPOSES)}")
    if task == "tag":
        if purpose == "train":
            return None if sample.tag_target is not None else "anomaly without a temporal annotation"
        if sample.span_s is not None:
            return None
        return "normal video: no anomaly interval to ground" if sample.is_normal else "no valid anomaly interval"
    if task == "cls":
        return None if sample.anomaly_class is not None else "no anomaly class"
    if task == "qa":
        fields = {"question": sample.question, "options": sample.options, "answer letter": sample.answer}
    else:
        fields = {"description": sample.description, "reasoning": sample.reasoning}
    missing = [name for name, value in fields.items() if value is None]
    return f"no {' / '.join(missing)}" if missing else None


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


def _parse_row(raw_cells: dict[str, object], row: int, source: str | None, origin: str) -> tuple[VideoSample, dict]:
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


@dataclass
class AnnotationTable:
    """All rows of one annotation file, typed, plus the per-row notes explaining missing fields.

    Attributes:
        path: file the rows came from (a local path, or an ``hf://`` address for Hub splits).
        samples: one :class:`VideoSample` per data row, in file order (unusable rows included).
        notes: ``{row: {group: message}}`` for fields that parsed to ``None``; groups are
            ``qa``, ``span``, ``cls`` and ``reasoning``. Used to give precise skip reasons.
    """

    path: str
    samples: list[VideoSample]
    notes: dict[int, dict[str, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def reason(self, sample: VideoSample, task: str, purpose: Purpose = "eval") -> str | None:
        """Why ``sample`` is unusable for ``task`` (the parse note when there is one), or ``None``."""
        generic = skip_reason(sample, task, purpose)
        if generic is None:
            return None
        group = "span" if task == "tag" else task
        return self.notes.get(sample.row, {}).get(group, generic)

    def usable(self, task: str, purpose: Purpose = "eval") -> list[VideoSample]:
        """Samples usable for ``task`` (``purpose`` matters for ``tag`` only: see :func:`skip_reason`)."""
        return [sample for sample in self.samples if skip_reason(sample, task, purpose) is None]

    def skipped(self, task: str, purpose: Purpose = "eval") -> list[SkippedRow]:
        """Rows left out of ``task``, in file order, each with its reason."""
        rows = []
        for sample in self.samples:
            reason = self.reason(sample, task, purpose)
            if reason is not None:
                rows.append(SkippedRow(sample.row, sample.video, task, reason))
        return rows

    def source_counts(self) -> dict[str, int]:
        """Rows per source; rows whose source is unknown count under ``"unknown"``."""
        counts = Counter(sample.source or "unknown" for sample in self.samples)
        return {name: counts[name] for name in (*SOURCES, "unknown") if counts[name]}


def annotations_from_frame(frame: pd.DataFrame, source: str | None = None, origin: str = "<frame>") -> AnnotationTable:
    """Parse a VAU-Bench table already in memory (a local CSV or a Hub split).

    Args:
        frame: the 13 VAU-Bench columns (any order, extra columns ignored), ideally read as strings.
        source: dataset of unprefixed video names (``msad``/``ucf``/``ecva``), or ``None``.
        origin: file name or address used in messages and as :attr:`AnnotationTable.path`.

    Returns:
        The table with every row, in order.

    Raises:
        AnnotationError: missing columns, an empty or duplicated ``Video Name``, or a name prefix
            that contradicts ``source``.
        ValueError: ``source`` is not one of :data:`~vau_r1.data.schema.SOURCES`.
    """
    if source is not None and source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; expected one of {list(SOURCES)} or None")
    by_name = {str(column).strip(): column for column in frame.columns}
    missing = [column for column in COLUMNS if column not in by_name]
    if missing:
        raise AnnotationError(
            f"{origin}: missing column(s) {missing}. A VAU-Bench annotation CSV has the header:\n{','.join(COLUMNS)}"
        )
    samples: list[VideoSample] = []
    notes: dict[int, dict[str, str]] = {}
    first_row: dict[str, int] = {}
    values = frame[[by_name[column] for column in COLUMNS]].itertuples(index=False, name=None)
    for row, cells in enumerate(values, start=1):
        sample, row_notes = _parse_row(dict(zip(COLUMNS, cells, strict=True)), row, source, origin)
        if sample.video in first_row:
            raise AnnotationError(
                f"{origin}: duplicate Video Name {sample.video!r} in rows {first_row[sample.video]} and {row} "
                "(rows are numbered from 1 after the header); each video must appear once"
            )
        first_row[sample.video] = row
        samples.append(sample)
        if row_notes:
            notes[row] = row_notes
    return AnnotationTable(path=origin, samples=samples, notes=notes)


def load_annotations(path: str | Path, source: str | None = None) -> AnnotationTable:
    """Read a VAU-Bench annotation CSV; every cell is read as a string, nothing is coerced.

    Args:
        path: CSV with the 13 published columns (``test_msad.csv``, ``val.csv``, ...).
        source: dataset of the videos when names carry no prefix (test files); must agree with
            any ``msad_``/``ucf_``/``ecva_`` prefix.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        AnnotationError: unreadable CSV, missing columns, duplicate videos or a source conflict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Annotation file {path} not found; pass a VAU-Bench CSV such as test_msad.csv")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: not a readable CSV ({err}); expected the header\n{','.join(COLUMNS)}") from err
    return annotations_from_frame(frame, source=source, origin=str(path))


def load_sample_annotations() -> AnnotationTable:
    """The 13-row sample shipped with the package (``vau_r1/assets/sample_annotations.csv``).

    It covers every quirk of the published CSVs (see ``vau_r1/assets/README.md``).
    """
    with as_file(files("vau_r1").joinpath(*_SAMPLE)) as path:
        return load_annotations(path)


def hub_data_file(split: str) -> str:
    """Path of a split's CSV inside the Hub dataset repository.

    >>> hub_data_file("test_ucf_crime")
    'annotations/test_ucf_crime.csv'
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown VAU-Bench split {split!r}; expected one of {list(SPLITS)}")
    return f"annotations/{split}.csv"


def load_vau_bench(
    split: str, repo_id: str = HUB_REPO_ID, revision: str | None = None, cache_dir: str | Path | None = None
) -> AnnotationTable:
    """Load one split from the Hub (or from a local copy of the dataset repository).

    Args:
        split: one of :data:`SPLITS`; test splits set the source of their unprefixed names.
        repo_id: Hub dataset id, or a local folder laid out like it (``annotations/<split>.csv``).
        revision: git revision (branch, tag or commit) of the dataset repository.
        cache_dir: ``datasets`` cache folder (default: the ``HF_DATASETS_CACHE`` setting).
    """
    data_file = hub_data_file(split)
    from datasets import load_dataset  # imported here: ``datasets`` is slow to import

    dataset = load_dataset(
        repo_id,
        data_files={split: data_file},
        split=split,
        revision=revision,
        cache_dir=None if cache_dir is None else str(cache_dir),
        **HUB_CSV_KWARGS,
    )
    if Path(repo_id).is_dir():
        origin = str(Path(repo_id) / data_file)
    else:
        origin = f"hf://datasets/{repo_id}{'@' + revision if revision else ''}/{data_file}"
    return annotations_from_frame(dataset.to_pandas(), source=SPLITS[split], origin=origin)


def load_split(path_or_split: str | Path, source: str | None = None) -> AnnotationTable:
    """Load a local CSV when ``path_or_split`` is an existing file, else the Hub split of that name.

    Raises:
        FileNotFoundError: neither an existing file nor a split name (the message lists the splits).
        ValueError: ``source`` given for a Hub split whose source differs (train/val have none).
    """
    if Path(path_or_split).is_file():
        return load_annotations(path_or_split, source=source)
    split = str(path_or_split)
    if split not in SPLITS:
        raise FileNotFoundError(
            f"{split!r} is neither an existing annotation file nor a VAU-Bench split ({', '.join(SPLITS)})"
        )
    if source is not None and source != SPLITS[split]:
        raise ValueError(f"Split {split!r} sets the source itself ({SPLITS[split]}); drop source={source!r}")
    return load_vau_bench(split)
