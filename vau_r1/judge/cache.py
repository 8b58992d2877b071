"""Append-only JSONL cache of judge results, so that an interrupted run resumes without re-asking.

One line per judge attempt outcome (``status`` ``ok`` or ``failed``), keyed by ``(video, key)`` where
``key`` hashes the four texts, the judge model and the prompt version (:func:`row_key`): a changed
prediction, model or prompt is a new key. A successful line is final; failed lines are counted so that
a later run retries them, at most ``max_row_attempts`` runs in all.

The file is written one flushed line per result under a lock (safe with worker threads). A truncated
last line (a killed run) is ignored with a warning and cut off before the next append; any other
unreadable line is ignored with a warning. The
official script instead appended concatenated JSON objects and re-read them as a list, which fails
(docs/paper.md §10 item 29).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def row_key(texts: tuple[str, str, str, str], judge_model: str, prompt_version: str) -> str:
    """24-hex digest of (gt description, gt analysis, description, analysis, judge model, prompt version).

    Example:
        >>> a = row_key(("d", "a", "p", "q"), "m", "paper-1")
        >>> a == row_key(("d", "a", "p", "q"), "m", "paper-1"), a == row_key(("d", "a", "p", "Q"), "m", "paper-1")
        (True, False)
    """
    payload = json.dumps([*texts, judge_model, prompt_version], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


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
        self._needs_newline = False
        self._truncate_to: int | None = None  # byte length without a torn last line, cut before the next append
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")  # the last item is b"" when the file ends with a newline
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                self._index(json.loads(line.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
                if number < len(lines):
                    logger.warning("%s: ignoring bad line %d (%s); its row is judged again", self.path, number, error)
                    continue
                logger.warning("%s: ignoring truncated last line (%s); its row is judged again", self.path, error)
                self._truncate_to = len(data) - len(line)
        self._needs_newline = self._truncate_to is None and bool(data) and not data.endswith(b"\n")

    def _index(self, record: dict[str, Any]) -> None:
        ident = (record["video"], record["key"])
        if record["status"] == "ok":
            self._ok[ident] = record
        elif record["status"] == "failed":
            self._failures[ident] += 1
            self._last_failure[ident] = record
        else:
            raise KeyError(f"status {record['status']!r} is neither 'ok' nor 'failed'")

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
        """Write ``record`` as one JSON line, flush it, and index it (thread-safe)."""
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._truncate_to is not None:
                os.truncate(self.path, self._truncate_to)
                self._truncate_to = None
            with self.path.open("a", encoding="utf-8") as handle:
                if self._needs_newline:
                    handle.write("\n")
                    self._needs_newline = False
                handle.write(line + "\n")
                handle.flush()
            self._index(record)
