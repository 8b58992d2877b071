"""Accuracy reward: does the single ``<answer>`` block hold the correct answer?

One reward covers every task, routed by the ``task`` column (or inferred from the gold answer):

* ``qa``: :func:`~vau_r1.rewards.parsing.parse_choice` equals the correct letter;
* ``cls``: :func:`~vau_r1.rewards.parsing.parse_label` over the 20 class labels equals the class;
* ``tag``: :func:`~vau_r1.rewards.parsing.parse_anomaly` equals ``Normal``/``Anomaly``;
* ``reasoning``: ``None`` (free text has no exact answer).

This fixes the official rewards (``docs/paper.md`` §10 items 11–14): no first-capital-letter
extraction (``"Answer: B"`` is ``B``, not ``A``), a label comparison for ``Normal``/``Anomaly``,
and the same case/underscore-insensitive label match as the evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence

from vau_r1.data.schema import CLASS_LABELS, canonical_label, label_key
from vau_r1.rewards.columns import column_text, per_sample
from vau_r1.rewards.parsing import completion_text, extract_answer, parse_anomaly, parse_choice, parse_label
from vau_r1.rewards.registry import register

__all__ = ["accuracy_reward", "gold_answer", "infer_task"]

_TAG_ANSWERS = ("Normal", "Anomaly")


def infer_task(answer: str) -> str | None:
    """Guess the task from a gold answer: ``tag`` (Normal/Anomaly), ``cls`` (a class label), ``qa`` (a letter).

    ``Normal`` is both a TAG answer and a class label; both rules score it the same way.

    >>> infer_task("anomaly"), infer_task("Traffic accident"), infer_task("B"), infer_task("maybe")
    ('tag', 'cls', 'qa', None)
    """
    if parse_anomaly(answer) is not None:
        return "tag"
    if canonical_label(answer) is not None:
        return "cls"
    if parse_choice(answer) is not None:
        return "qa"
    return None


def gold_answer(answer: str, task: str | None, options: Sequence[str] | None = None) -> str | None:
    """The canonical gold answer for ``task`` (a letter, a class label, Normal/Anomaly), or ``None``.

    >>> gold_answer("d. Green bin", "qa"), gold_answer("traffic accident", "cls"), gold_answer("-1", "qa")
    ('D', 'Traffic_accident', None)
    """
    if task == "qa":
        return parse_choice(answer, options)
    if task == "cls":
        return canonical_label(answer)
    if task == "tag":
        return parse_anomaly(answer)
    return None


def _predict(text: str, task: str | None, options: Sequence[str] | None) -> str | None:
    if task == "qa":
        return parse_choice(text, options, bare=False)
    if task == "cls":
        return parse_label(text, CLASS_LABELS, bare=False)
    if task == "tag":
        return parse_anomaly(text, bare=False)
    answer = extract_answer(text)  # unknown task: normalised exact match
    return None if answer is None else label_key(answer)


def _option_texts(options: object) -> list[str] | None:
    """The options column of one sample as texts (an option without a text form is ``""``), or ``None``."""
    if not isinstance(options, Sequence) or isinstance(options, (str, bytes)):
        return None
    return [column_text(option) or "" for option in options]


def _accuracy_one(completion: object, answer: object, task: object, options: object) -> float | None:
    if answer is None:
        return None
    answer = (column_text(answer) or "").strip()  # a value without a text form is unreadable: 0.0
    name = (column_text(task) or "").strip().lower() or None
    if name == "reasoning":
        return None
    if not answer:
        return 0.0
    if name not in ("qa", "cls", "tag"):
        name = infer_task(answer)
    opts = _option_texts(options)
    gold = gold_answer(answer, name, opts) if name else label_key(answer)
    if gold is None:
        return 0.0
    return float(_predict(completion_text(completion), name, opts) == gold)


def _is_scalar_options(value: object) -> bool:
    """A list or tuple of option texts (one sample's, to broadcast) rather than a per-sample column."""
    return all(isinstance(v, str) for v in value)  # type: ignore[attr-defined]


@register("accuracy")
def accuracy_reward(
    completions: list, answer: object = None, task: object = None, options: object = None, **kwargs
) -> list[float | None]:
    """1.0 when the single ``<answer>`` block holds the gold ``answer`` column, else 0.0.

    Per sample: ``answer`` is ``None`` → ``None``; ``task == "reasoning"`` → ``None``; an empty or
    unreadable gold answer (no task's form, or no text form at all, such as a 5,000-digit integer) → 0.0
    (never a match). Without a ``task`` the task is inferred from
    the gold answer (:func:`infer_task`); an answer fitting no task is compared as a normalised
    string. Case and ``_`` vs space are ignored. The optional ``options`` column (four option
    texts) lets a QA answer give the full text of an option instead of its letter.

    >>> accuracy_reward(
    ...     [
    ...         "<think>He slips.</think><answer>Answer: B</answer>",  # letter after a prefix
    ...         "<think>x</think><answer>A. x B. y C. z D. w</answer>",  # echoed option list
    ...         "<think>x</think><answer>traffic accident</answer>",  # label, any spelling
    ...         "<think>x</think><answer>Anomaly</answer><glue>[1, 2]</glue>",
    ...         "<think>x</think><answer>...</answer>",
    ...     ],
    ...     answer=["B", "A", "Traffic_accident", "Normal", None],
    ...     task=["qa", "qa", "cls", "tag", "reasoning"],
    ... )
    [1.0, 0.0, 1.0, 0.0, None]
    """
    n = len(completions)
    answers = per_sample(answer, n, "answer")
    tasks = per_sample(task, n, "task")
    options_column = per_sample(options, n, "options", scalar=_is_scalar_options)
    return [_accuracy_one(*row) for row in zip(completions, answers, tasks, options_column, strict=True)]
