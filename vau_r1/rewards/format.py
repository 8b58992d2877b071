"""Format rewards: 1.0 for a completion that follows the output format exactly, else 0.0.

The structure check is :func:`~vau_r1.rewards.parsing.is_well_formed`: one block of each kind,
in order (think, answer, glue), lower-case tags, nothing nested, nothing outside the blocks but
whitespace, no blank think/answer, and a valid ``[s, e]`` in the glue. This closes the hacks of a
regex check: repeated ``<answer>`` blocks, answers hidden inside ``<think>``, empty answers.
"""

from __future__ import annotations

from vau_r1.rewards.columns import column_text, per_sample
from vau_r1.rewards.parsing import completion_text, is_well_formed
from vau_r1.rewards.registry import register

__all__ = ["format_reward", "no_think_format_reward"]


def _task_name(task: object) -> str | None:
    text = column_text(task)  # None for None and for a value without a text form
    return None if text is None else text.strip().lower()


@register("format")
def format_reward(completions: list, task: object = None, **kwargs) -> list[float | None]:
    """1.0 iff the completion is ``<think>…</think> <answer>…</answer>``, plus `` <glue>[s, e]</glue>`` for ``tag``.

    For ``task == "tag"`` exactly one valid glue block must follow the answer; for any other task
    (or none) a glue block is not allowed. See the module docstring for the full rule.

    >>> format_reward(
    ...     [
    ...         "<think>A man falls.</think>\\n<answer>B</answer>",  # well-formed
    ...         "<think>x</think><answer>B</answer><answer>C</answer>",  # two answers
    ...         "<think>x</think><answer>Anomaly</answer><glue>[1.0, 4.5]</glue>",  # tag format
    ...     ],
    ...     task=["qa", "qa", "tag"],
    ... )
    [1.0, 0.0, 1.0]
    """
    tasks = per_sample(task, len(completions), "task")
    return [
        float(is_well_formed(completion_text(c), glue="require" if _task_name(t) == "tag" else "forbid"))
        for c, t in zip(completions, tasks, strict=True)
    ]


@register("format_no_think")
def no_think_format_reward(completions: list, task: object = None, **kwargs) -> list[float | None]:
    """1.0 iff the completion follows the answer-only format (no-think SFT/eval prompts).

    ``tag``: ``<glue>[s, e]</glue>``, optionally preceded by ``<answer>…</answer>``; other tasks:
    ``<answer>…</answer>`` alone. A leading ``<think>`` block is tolerated, not required.

    >>> no_think_format_reward(["<answer>B</answer>", "<glue>[-1, -1]</glue>", "B"], task=["qa", "tag", "qa"])
    [1.0, 1.0, 0.0]
    """
    tasks = per_sample(task, len(completions), "task")
    scores: list[float | None] = []
    for completion, name in zip(completions, tasks, strict=True):
        tag = _task_name(name) == "tag"
        well_formed = is_well_formed(
            completion_text(completion),
            require_think=False,
            answer="optional" if tag else "require",
            glue="require" if tag else "forbid",
        )
        scores.append(float(well_formed))
    return scores
