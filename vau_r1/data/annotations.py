"""VAU-Bench annotation CSVs → typed :class:`~vau_r1.data.schema.VideoSample` records.

This is the only module that knows the CSV column names and sentinel values
(``docs/paper.md`` §2.2–2.5):

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
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Literal

import pandas as pd

from vau_r1.data.rows import COLUMNS, AnnotationError, parse_correct_option, parse_row
from vau_r1.data.schema import SOURCES, TASKS, VideoSample

__all__ = [
    "COLUMNS",
    "PURPOSES",
    "AnnotationError",
    "AnnotationTable",
    "SkippedRow",
    "annotations_from_frame",
    "load_annotations",
    "load_sample_annotations",
    "parse_correct_option",
    "skip_reason",
]

logger = logging.getLogger(__name__)

#: What a row is used for: ``tag`` rows differ (normal videos train on ``[-1, -1]``, evaluation needs a span).
Purpose = Literal["eval", "train"]
PURPOSES: tuple[str, ...] = ("eval", "train")
_SAMPLE = ("assets", "sample_annotations.csv")


@dataclass(frozen=True)
class SkippedRow:
    """A row left out of one task, and why. ``row`` is the 1-based data-row number (header = row 0)."""

    row: int
    video: str
    task: str
    reason: str


def skip_reason(sample: VideoSample, task: str, purpose: Purpose = "eval") -> str | None:
    """Why ``sample`` cannot be used for ``task``, or ``None`` when it can.

    The rules reproduce the paper's evaluation denominators (docs/paper.md §2.5):

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
        sample, row_notes = parse_row(dict(zip(COLUMNS, cells, strict=True)), row, source, origin)
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
