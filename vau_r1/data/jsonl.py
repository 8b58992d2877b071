"""JSON Lines that survive a killed writer: read every usable line, append after a clean line break.

The evaluation records (``parts/rank<r>.jsonl``, ``predictions.jsonl``) and the judge cache are resumed
from, so a run killed mid-write must never wedge the next one. :func:`read_jsonl` reads the file as bytes
and decodes each line on its own: a line that is not UTF-8 (a write torn inside a multi-byte character),
not JSON, nested too deeply, not an object, or lacking a required key is skipped with a warning naming the
file and line (``strict=True`` raises :class:`JsonlError` instead, for files a user hands in).
:func:`append_jsonl` first cuts off a torn last line (:func:`repair_tail`), so the new record never gets
glued to the broken bytes, then writes one flushed line per record.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["JsonlError", "JsonlLine", "JsonlRead", "append_jsonl", "dumps_line", "read_jsonl", "repair_tail"]

logger = logging.getLogger(__name__)

#: ``check(record) -> reason`` the record is unusable, or ``None`` when it is fine.
Check = Callable[[dict[str, Any]], str | None]
#: Required key → the type (or types) its value must have.
Required = Mapping[str, type | tuple[type, ...]]
#: No required key.
NO_KEYS: Required = MappingProxyType({})
_TAIL_CHUNK = 1 << 16  # bytes read per step when looking back for the last line break


class JsonlError(ValueError):
    """A line of a JSONL file read with ``strict=True`` is unusable; the message names file, line and fix."""


@dataclass(frozen=True)
class JsonlLine:
    """One usable line: its 1-based number and its object."""

    number: int
    record: dict[str, Any]


@dataclass
class JsonlRead:
    """What :func:`read_jsonl` found.

    Attributes:
        path: the file.
        lines: the usable lines, in file order.
        skipped: ``(line number, reason)`` of every unusable line.
        torn_tail: the last line has no line break and is unusable (a write cut off by a kill).
    """

    path: Path
    lines: list[JsonlLine] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    torn_tail: bool = False


def _parse_line(raw: bytes, required: Required, check: Check | None) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, None)`` for a usable line, else ``(None, reason)``; ``raw`` is one line without its break."""
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 ({error.reason} at byte {error.start})"
    try:
        record = json.loads(text)
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as error:  # json.JSONDecodeError, or an integer with too many digits
        return None, f"not valid JSON ({error})"
    if not isinstance(record, dict):
        return None, f"a JSON {type(record).__name__}, not an object"
    for key, kind in required.items():
        if key not in record:
            return None, f"no key {key!r}"
        if not isinstance(record[key], kind):
            return None, f"{key}={str(record[key])[:40]!r} has the wrong type"
    reason = check(record) if check is not None else None
    return (None, reason) if reason else (record, None)


def read_jsonl(path: str | Path, required: Required = NO_KEYS, check: Check | None = None, *, strict: bool = False,
               on_skip: str = "ignored", expected: str = "one JSON object per line") -> JsonlRead:  # fmt: skip
    """Read every usable line of ``path``; blank lines are passed over.

    Args:
        path: the JSONL file.
        required: keys each line must have, with the type of their value.
        check: more validation of a decoded object (returns the reason it is unusable, or ``None``).
        strict: raise :class:`JsonlError` at the first unusable line instead of skipping it.
        on_skip: what happens to a skipped line's row, for the warning (``"its video is predicted again"``).
        expected: the format, for the strict error's fix.

    Raises:
        FileNotFoundError: no such file.
        JsonlError: ``strict`` and a line is unusable.
    """
    path = Path(path)
    chunks = path.read_bytes().split(b"\n")  # the last chunk is b"" when the file ends with a line break
    result = JsonlRead(path)
    for number, raw in enumerate(chunks, start=1):
        if not raw.strip():
            continue
        record, reason = _parse_line(raw, required, check)
        if record is not None:
            result.lines.append(JsonlLine(number, record))
            continue
        torn = number == len(chunks)
        if torn:
            reason = f"truncated last line (an interrupted write?): {reason}"
            result.torn_tail = True
        if strict:
            raise JsonlError(f"{path}:{number}: {reason}; expected {expected}")
        logger.warning("%s:%d: %s; line skipped, %s", path, number, reason, on_skip)
        result.skipped.append((number, reason))
    return result


def _last_line_start(handle: Any, size: int) -> int:
    """Byte offset just after the last line break of an open binary file (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        handle.seek(start)
        index = handle.read(end - start).rfind(b"\n")
        if index >= 0:
            return start + index + 1
        end = start
    return 0


def repair_tail(path: str | Path, required: Required = NO_KEYS, check: Check | None = None) -> str | None:
    """Make ``path`` end with a line break, ready for an append; returns what was done, or ``None``.

    An unterminated last line that is a usable record only gets its line break; any other one (a torn
    write) is cut off, with a warning, so that the next record starts on a fresh line.
    """
    path = Path(path)
    if not path.is_file():
        return None
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None
        start = _last_line_start(handle, size)
        handle.seek(start)
        record, reason = _parse_line(handle.read(size - start), required, check)
        if record is not None:
            handle.seek(size)
            handle.write(b"\n")
            return "added the missing line break after the last record"
        handle.truncate(start)
    done = f"cut off a torn last line of {size - start} bytes ({reason})"
    logger.warning("%s: %s before appending", path, done)
    return done


def dumps_line(record: Mapping[str, Any]) -> bytes:
    """One UTF-8 JSON line (non-ASCII kept readable; a lone surrogate is written as its ``\\u`` escape)."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")


def append_jsonl(path: str | Path, records: Iterable[Mapping[str, Any]], required: Required = NO_KEYS,
                 check: Check | None = None) -> int:  # fmt: skip
    """Append ``records`` to ``path`` (created with its folder if absent), one flushed line each.

    A torn last line is cut off first (:func:`repair_tail`, judged with ``required`` and ``check``).
    Returns the number of records written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_tail(path, required, check)
    count = 0
    with path.open("ab") as handle:
        for record in records:
            handle.write(dumps_line(record))
            handle.flush()
            count += 1
    return count
