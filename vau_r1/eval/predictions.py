"""Prediction files: the library's JSONL format and the official VAU-R1 output CSVs.

**JSONL** (``*.jsonl``; written by :func:`write_predictions`), one JSON object per line::

    {"video": "Assault_2.mp4", "text": "<think>…</think><answer>B</answer>", "parsed": "B", "task": "qa"}

* ``video`` (required): the file name as in the annotation CSV (prefix and extension optional);
* ``text``: the raw model output. Scoring always re-parses it, so scores never depend on the
  parser that wrote the file;
* ``parsed`` (optional): the value the producer parsed (a letter, a label, ``[start_s, end_s]``);
  used only when ``text`` is absent or ``null``;
* ``task`` (optional): when present, records of other tasks are ignored, so one file may hold
  predictions for several tasks. Any other key is kept by writers and ignored here.

**Official CSV** (``results/<task>/<model>/output_*.csv``): a ``Video Name`` column plus
``QA answer`` (qa), ``Temporal Grounding`` (tag) or ``CLS answer`` (cls) holding raw or cleaned
model text.

A video listed twice keeps its first prediction (as the official scripts do), with a warning.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vau_r1.data.jsonl import dumps_line, read_jsonl, repair_tail

__all__ = ["OFFICIAL_COLUMNS", "Predictions", "read_predictions", "write_predictions"]

logger = logging.getLogger(__name__)

#: Column of the official output CSV holding each task's prediction.
OFFICIAL_COLUMNS: dict[str, str] = {"qa": "QA answer", "tag": "Temporal Grounding", "cls": "CLS answer"}
NAME_COLUMN = "Video Name"
#: The fix named by an error about a JSONL line.
JSONL_EXPECTED = "one JSON object per line with a string 'video' and a 'text' or 'parsed'"


@dataclass(frozen=True)
class Predictions:
    """Predictions read from one file.

    Attributes:
        path: the file.
        kind: ``jsonl`` (this library's format) or ``official_csv``.
        values: video name → raw model text, or a parsed value when the file has no text.
    """

    path: Path
    kind: Literal["jsonl", "official_csv"]
    values: dict[str, object]


def _keep_first(values: dict[str, object], video: str, value: object, where: str) -> None:
    if video in values:
        logger.warning("%s: video %r listed again; keeping its first prediction", where, video)
        return
    values[video] = value


def _has_value(record: dict[str, object]) -> str | None:
    if "text" not in record and "parsed" not in record:
        return f"record for {record['video']!r} has neither 'text' nor 'parsed'"
    return None


def _read_jsonl(path: Path, task: str) -> dict[str, object]:
    values: dict[str, object] = {}
    read = read_jsonl(path, {"video": str}, _has_value, strict=True, expected=JSONL_EXPECTED)
    for line in read.lines:
        record = line.record
        if record.get("task") not in (None, task):
            continue
        text = record.get("text")
        where = f"{path}:{line.number}"
        _keep_first(values, record["video"], text if isinstance(text, str) else record.get("parsed"), where)
    return values


def _read_official_csv(path: Path, task: str) -> dict[str, object]:
    column = OFFICIAL_COLUMNS[task]
    values: dict[str, object] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        lacking = [name for name in (NAME_COLUMN, column) if name not in header]
        if lacking:
            raise ValueError(
                f"{path}: no column {' or '.join(map(repr, lacking))} (found {header}); an official {task} output "
                f"CSV has the header '{NAME_COLUMN},{column}'. For this library's format use a .jsonl file"
            )
        reader.fieldnames = header
        for row_no, row in enumerate(reader, start=1):
            _keep_first(values, (row[NAME_COLUMN] or "").strip(), row[column] or "", f"{path} row {row_no}")
    return values


def _kind(path: Path) -> Literal["jsonl", "official_csv"]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "official_csv"
    with path.open(encoding="utf-8-sig") as handle:
        head = handle.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "official_csv"


def read_predictions(path: str | Path, task: str) -> Predictions:
    """Read a JSONL or official CSV prediction file for ``task`` (``qa``, ``tag`` or ``cls``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unknown task, a JSONL line that is not UTF-8, not JSON or not a record (the message
            names the file and line), or a CSV without the task's column.
    """
    if task not in OFFICIAL_COLUMNS:
        raise ValueError(f"Cannot score task {task!r}; expected one of {sorted(OFFICIAL_COLUMNS)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Prediction file {path} not found")
    kind = _kind(path)
    values = _read_jsonl(path, task) if kind == "jsonl" else _read_official_csv(path, task)
    return Predictions(path, kind, values)


def write_predictions(path: str | Path, records: Iterable[Mapping[str, object]], append: bool = False) -> int:
    """Write prediction records (each with ``video`` and ``text``) as JSONL; returns the number written.

    With ``append``, a torn last line of the file (a killed write) is cut off first.

    Raises:
        ValueError: a record without a string ``video``.
    """
    path = Path(path)
    if append:
        repair_tail(path, {"video": str})
    count = 0
    with path.open("ab" if append else "wb") as handle:
        for record in records:
            if not isinstance(record.get("video"), str):
                raise ValueError(f"Prediction record {dict(record)!r} needs a string 'video'")
            handle.write(dumps_line(dict(record)))
            count += 1
    return count
