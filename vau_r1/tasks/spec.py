"""Task specifications: default preset, default rewards, grounding output and answer parsers per task.

Parsers are named by import path and imported on first use, so this module stays importable (and
cheap) without :mod:`vau_r1.rewards`.

Example:
    >>> spec = get_task("tag")
    >>> spec.reward_names, spec.grounding
    (('format', 'accuracy', 'temporal_iou'), True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from vau_r1.data.schema import CLASS_LABELS, TASKS

_PARSING = "vau_r1.rewards.parsing"


@cache
def _import(path: str) -> Callable[..., Any]:
    """Import ``"package.module.function"`` and return the function."""
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ImportError(f"cannot import answer parser {path!r}: {error}") from error


@dataclass(frozen=True)
class TaskSpec:
    """What the library needs to know about one task.

    Attributes:
        name: task name (one of :data:`vau_r1.data.schema.TASKS`).
        default_preset: prompt preset used when none is given.
        reward_names: GRPO rewards used by default (registry names); empty for reasoning, which has no
            RFT trainer and is scored offline by the VAU-Eval judge.
        grounding: whether the output carries a ``<glue>[start_s, end_s]</glue>`` span.
        parsers: import paths of the answer parsers, applied in order to the model output.
        labels: label set passed as the second argument of a single parser (cls), else ``None``.
    """

    name: str
    default_preset: str
    reward_names: tuple[str, ...]
    grounding: bool
    parsers: tuple[str, ...]
    labels: tuple[str, ...] | None = None

    def parse(self, text: str) -> Any:
        """Parse a model output into this task's answer (parsers are imported on first use).

        Args:
            text: decoded completion.

        Returns:
            qa: option letter or ``None``; cls: canonical label or ``None``; tag: ``(label, span)`` from
            ``parse_anomaly`` and ``parse_span``; reasoning: the stripped text.

        Raises:
            ImportError: a parser module is missing.
        """
        if not self.parsers:
            return text.strip()
        functions = [_import(path) for path in self.parsers]
        if self.labels is not None:
            return functions[0](text, self.labels)
        results = tuple(function(text) for function in functions)
        return results[0] if len(results) == 1 else results


#: ``TASK_SPECS[name]`` → :class:`TaskSpec`, one per task of :data:`vau_r1.data.schema.TASKS`.
TASK_SPECS: dict[str, TaskSpec] = {
    "qa": TaskSpec("qa", "default", ("format", "accuracy"), False, (f"{_PARSING}.parse_choice",)),
    "tag": TaskSpec(
        "tag", "default", ("format", "accuracy", "temporal_iou"), True,
        (f"{_PARSING}.parse_anomaly", f"{_PARSING}.parse_span"),
    ),
    "cls": TaskSpec("cls", "default", ("format", "accuracy"), False, (f"{_PARSING}.parse_label",), CLASS_LABELS),
    "reasoning": TaskSpec("reasoning", "default", (), False, ()),
}  # fmt: skip
assert tuple(TASK_SPECS) == TASKS


def get_task(name: str) -> TaskSpec:
    """Look up a task by name.

    Raises:
        ValueError: unknown task; the message lists the valid names.
    """
    if name not in TASK_SPECS:
        raise ValueError(f"Unknown task {name!r}; expected one of {list(TASK_SPECS)}")
    return TASK_SPECS[name]
