"""Reading dataset columns the way the rewards' "never raise" contract needs.

TRL calls a reward as ``fn(completions, **columns)`` and expects one value per completion, never an exception.
A column can hold anything a dataset holds (strings, lists, numpy arrays, NaN, ``None``, an integer too large
for a float or for ``str``), so the rewards read every column value through these helpers: one that cannot be
read is "missing" (the reward gives ``None``) or "unreadable" (the reward documents what it scores), never an
error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

__all__ = ["column_text", "finite_number", "per_sample"]

logger = logging.getLogger(__name__)


def per_sample(value: object, n: int, column: str, scalar: Callable[[object], bool] | None = None) -> list[object]:
    """Align a dataset column with ``n`` completions.

    TRL passes one value per completion, a list (numpy arrays and tensors are read with ``tolist``). Anything
    that is not a list or tuple is one value, repeated ``n`` times (``task="qa"``, ``span=nan``, ``None``);
    ``scalar`` decides whether a list or tuple is itself one value (a single span ``[s, e]``). A list of the
    wrong length is logged as an error and read as ``n`` missing values (``None``): rewards never raise.

    >>> per_sample("qa", 2, "task"), per_sample(["qa", "tag"], 2, "task"), per_sample(float("nan"), 1, "span")
    (['qa', 'qa'], ['qa', 'tag'], [nan])
    """
    if hasattr(value, "tolist"):  # numpy arrays and tensors
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or (scalar is not None and scalar(value)):
        return [value] * n
    if len(value) != n:
        logger.error("Column %r has %d values for %d completions; treating it as missing", column, len(value), n)
        return [None] * n
    return list(value)


def finite_number(value: object) -> float | None:
    """``value`` as a finite float, or ``None``: not a number, NaN, ±inf, or an integer past the float range.

    >>> finite_number("2.5"), finite_number(3), finite_number(float("inf")), finite_number(10**400)
    (2.5, 3.0, None, None)
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond ~1.8e308
        return None
    return number if math.isfinite(number) else None


def column_text(value: object) -> str | None:
    """The text of a text column's value (``answer``, ``task``, an option), or ``None``.

    ``None`` for ``None``, and for a value without a text form: ``str`` refuses an integer of more than
    4,300 digits (Python's integer-to-string limit).

    >>> column_text(" qa "), column_text(3), column_text(None), column_text(10**5000)
    (' qa ', '3', None, None)
    """
    if value is None:
        return None
    try:
        return str(value)
    except ValueError:  # int_max_str_digits
        return None
