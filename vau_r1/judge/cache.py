"""Append-only JSONL cache of judge results, so that an interrupted run resumes without re-asking.

One line per judge attempt outcome (``status`` ``ok`` or ``failed``), keyed by ``(video, key)`` where
``key`` hashes the four texts, the judge model and the prompt version (:func:`row_key`): a changed
prediction, model or prompt is a new key. A successful line is final; failed lines are counted so that
a later run retries them, at most ``max_row_attempts`` runs in all.

The file is written one flushed line per result under a lock (safe with worker threads) and read with
:func:`vau_r1.data.jsonl.read_jsonl`: a truncated last line (a killed run) is ignored with a warning and
cut off before the next append; any other unusable line (not UTF-8, not JSON, not a cache record) is
ignored with a warning naming its line, and its row is judged again. The official script instead
appended concatenated JSON objects and re-read them as a list, which fails (docs/paper.md §10 item 29).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from vau_r1.data.jsonl import append_jsonl, read_jsonl
from vau_r1.judge.parse import SCORE_COLUMNS


def row_key(texts: tuple[str, str, str, str], judge_model: str, prompt_version: str) -> str:
    """24-hex digest of (gt description, gt analysis, description, analysis, judge model, prompt version).

    Example:
        >>> a = row_key(("d", "a", "p", "q"), "m", "paper-1")
        >>> a == row_key(("d", "a", "p", "q"), "m", "paper-1"), a == row_key(("d", "a", "p", "Q"), "m", "paper-1")
        (True, False)
    """
    payload = json.dumps([*texts, judge_model, prompt_version], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


#: Keys every cache line has, with their type (other lines are skipped and their rows judged again).
CACHE_KEYS = {"video": str, "key": str, "status": str}


def check_line(record: dict[str, Any]) -> str | None:
    """Why a cache line is unusable (``None``: it is fine): an unknown status, or an ``ok`` line without scores."""
    if record["status"] not in ("ok", "failed"):
        return f"status {record['status']!r} is neither 'ok' nor 'failed'"
    scores = record.get("scores")
    if record["status"] == "ok" and not (
        isinstance(scores, dict) and all(type(scores.get(column)) is int for column in SCORE_COLUMNS.values())
    ):
        return "an 'ok' line without its five integer scores"
    return None


class JudgeCache:
    """Results already obtained, read from ``path`` (created on first append if absent).

    Args:
        path: JSONL file; each line is a dict with at least ``video``, ``key`` and ``status``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ok: dict[tuple[str, str], dict[str, Any]] = {}
        self._last_failure: dict[tuple[str, str], dict[str, Any]] = {}
        self._failures: Counter[tuple[str, str]] = Counter()
        if self.path.exists():
            read = read_jsonl(self.path, CACHE_KEYS, check_line, on_skip="its row is judged again")
            for line in read.lines:
                self._index(line.record)

    def _index(self, record: dict[str, Any]) -> None:
        ident = (record["video"], record["key"])
        if record["status"] == "ok":
            self._ok[ident] = record
        else:
            self._failures[ident] += 1
            self._last_failure[ident] = record

    def __len__(self) -> int:
        """Number of successfully judged ``(video, key)`` pairs."""
        return len(self._ok)

    def get(self, video: str, key: str) -> dict[str, Any] | None:
        """The successful record for ``(video, key)``, or ``None``."""
        with self._lock:
            return self._ok.get((video, key))

    def failures(self, video: str, key: str) -> tuple[int, dict[str, Any] | None]:
        """How many failed records ``(video, key)`` has, and the latest of them."""
        with self._lock:
            return self._failures[(video, key)], self._last_failure.get((video, key))

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one flushed JSON line (after cutting off a torn last line) and index it; thread-safe."""
        with self._lock:
            append_jsonl(self.path, [record], CACHE_KEYS, check_line)
            self._index(record)
