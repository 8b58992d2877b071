"""QA accuracy under both denominators: the paper's (all usable rows) and the upstream fix's (valid predictions).

The paper divides by every usable row, so a missing or unparseable prediction counts wrong (``docs/paper.md``
§2.5, §8.2). Commit 3356ef3 of the public VAU-R1 repository (2025-08-22) fixed the official QA evaluation to
count only rows with a valid prediction. A reproduction compared with numbers computed either way needs both,
so ``vau-r1 eval score`` and ``vau-r1 eval run`` report both, each with its ``n``:

* ``all_rows``: correct / usable rows (the paper's; the ``accuracy`` metric unless ``only_predicted``);
* ``valid_predictions``: correct / rows whose prediction parses to an option letter (with the run's parser).

The blocks are ``{"accuracy": percent or None, "correct": rows right, "n": rows, "label": text}``; a correct
answer is always a valid one, so both share the numerator ``correct``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DENOMINATOR_LABELS", "denominator_csv", "denominator_lines", "pool_denominators", "qa_denominators"]

#: Denominator key → what it counts (printed in the reports).
DENOMINATOR_LABELS: dict[str, str] = {
    "all_rows": "all usable rows; a missing or unparseable prediction counts wrong (the paper's, docs/paper.md §2.5)",
    "valid_predictions": "rows with a valid prediction (an option letter parsed); the upstream fix 3356ef3, "
    "2025-08-22",
}


def _block(key: str, correct: int, n: int) -> dict[str, Any]:
    return {
        "accuracy": 100.0 * correct / n if n else None,
        "correct": correct,
        "n": n,
        "label": DENOMINATOR_LABELS[key],
    }


def qa_denominators(answers: Sequence[str], choices: Sequence[str | None]) -> dict[str, dict[str, Any]]:
    """Both QA denominators from the gold letters and the parsed letters of every usable row.

    Args:
        answers: the gold letter of each usable row (upper case).
        choices: the parsed letter of each row's prediction, ``None`` when it is missing or unparseable.

    >>> d = qa_denominators(["A", "B", "C", "D"], ["A", None, "B", "D"])
    >>> (d["all_rows"]["accuracy"], d["all_rows"]["n"], round(d["valid_predictions"]["accuracy"], 2))
    (50.0, 4, 66.67)
    """
    correct = sum(choice == answer for answer, choice in zip(answers, choices, strict=True))
    valid = sum(choice is not None for choice in choices)
    return {"all_rows": _block("all_rows", correct, len(answers)),
            "valid_predictions": _block("valid_predictions", correct, valid)}  # fmt: skip


def pool_denominators(parts: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The denominators of disjoint splits pooled (exact: the ``n``-weighted mean); ``{}`` if a part has none."""
    if not parts or any(not part for part in parts):
        return {}
    pooled = {}
    for key in DENOMINATOR_LABELS:
        n = sum(int(part[key]["n"]) for part in parts)
        pooled[key] = _block(key, sum(int(part[key]["correct"]) for part in parts), n)
    return pooled


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def denominator_lines(denominators: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Markdown: a small table of both accuracies with their ``n`` and what each counts (``[]`` without any)."""
    if not denominators:
        return []
    lines = ["", "## QA accuracy under both denominators", "", "| Denominator | Acc | n | Rows counted |",
             "|---|---|---|---|"]  # fmt: skip
    for key, block in denominators.items():
        lines.append(f"| {key} | {_fmt(block.get('accuracy'))} | {block.get('n')} | {block.get('label', '')} |")
    return lines


def denominator_csv(denominators: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[Any]]:
    """CSV columns ``accuracy_<key>`` and ``n_<key>`` for each denominator (none without any)."""
    header: list[str] = []
    row: list[Any] = []
    for key, block in denominators.items():
        header += [f"accuracy_{key}", f"n_{key}"]
        row += [block.get("accuracy"), block.get("n")]
    return header, row
