"""SFT target texts and the reward columns of a sample.

Targets follow the output grammar the rewards parse (``docs/paper.md`` §5, §7):

* qa: ``<answer>B</answer>``;
* tag: ``<answer>Anomaly</answer><glue>[1.2, 3.4]</glue>``, or for a normal video
  ``<answer>Normal</answer><glue>[-1.0, -1.0]</glue>``;
  spans are rounded to 0.1 s like the paper (``[round(start, 1), round(end, 1)]``);
* cls: ``<answer>Fighting</answer>``;
* reasoning: the description text.

With ``think=True`` the sample's ``reasoning`` goes first as ``<think>…</think>``. Presets with
``target_style="paper_sft"`` reproduce the SFT scripts: tag ``<glue>[s, e]</glue>.`` (trailing period,
no ``<answer>``; the CoT variant adds ``<answer>``), and a space after ``</think>`` in the qa CoT target.

Example:
    >>> from vau_r1.data.schema import VideoSample
    >>> s = VideoSample(video="a.mp4", source=None, row=1, is_normal=False, span_s=(1.23, 3.38))
    >>> target_text(s, "tag")
    '<answer>Anomaly</answer><glue>[1.2, 3.4]</glue>'
    >>> target_text(s, "tag", "paper_sft")
    '<glue>[1.2, 3.4]</glue>.'
    >>> reward_columns(s, "tag")
    {'task': 'tag', 'answer': 'Anomaly', 'span': [1.23, 3.38]}
    >>> reward_columns(s, "tag", duration_s=12)  # training columns carry the decoded video's length
    {'task': 'tag', 'answer': 'Anomaly', 'span': [1.23, 3.38], 'duration_s': 12.0}
"""

from __future__ import annotations

from typing import Any

from vau_r1.data.schema import NORMAL_LABEL, OPTION_LETTERS, VideoSample, canonical_label
from vau_r1.tasks.presets import get_preset

#: TAG answer of an anomalous video (``Normal`` is :data:`vau_r1.data.schema.NORMAL_LABEL`).
ANOMALY_LABEL = "Anomaly"


def _missing(sample: VideoSample, task: str, need: str) -> ValueError:
    """The error for a sample that lacks what a task needs; names the video, row, task and the fix."""
    return ValueError(
        f"{sample.video} (row {sample.row}): task {task!r} needs {need}; "
        "filter the samples with the annotations' usable rules first"
    )


def _letter(sample: VideoSample, task: str) -> str:
    if sample.answer not in OPTION_LETTERS:
        raise _missing(sample, task, f"an answer letter in {list(OPTION_LETTERS)}, got {sample.answer!r}")
    return sample.answer


def _class_label(sample: VideoSample, task: str) -> str:
    label = canonical_label(sample.anomaly_class) if sample.anomaly_class is not None else None
    if label is None:
        raise _missing(sample, task, f"a known anomaly class, got {sample.anomaly_class!r}")
    return label


def _tag_answer(sample: VideoSample, task: str) -> tuple[str, tuple[float, float]]:
    """``("Normal" | "Anomaly", (start_s, end_s))``; a valid span without a class counts as an anomaly."""
    span = sample.tag_target
    if span is None:
        raise _missing(sample, task, "a grounding target (a normal video or an annotated anomaly span)")
    return (NORMAL_LABEL if sample.is_normal else ANOMALY_LABEL), span


def format_span(span_s: tuple[float, float]) -> str:
    """Render a span like the paper's targets: ``[round(start, 1), round(end, 1)]`` as Python prints it.

    >>> format_span((1.25, 10.0)), format_span((-1.0, -1.0))
    ('[1.2, 10.0]', '[-1.0, -1.0]')
    """
    start_s, end_s = (round(float(t), 1) for t in span_s)
    return f"[{start_s}, {end_s}]"


def _answer_text(sample: VideoSample, task: str, paper_sft: bool, think: bool) -> str:
    """The target after the optional ``<think>`` block."""
    if task == "qa":
        return f"<answer>{_letter(sample, task)}</answer>"
    if task == "cls":
        return f"<answer>{_class_label(sample, task)}</answer>"
    if task == "tag":
        label, span = _tag_answer(sample, task)
        glue = f"<glue>{format_span(span)}</glue>"
        if paper_sft:  # sft_grounding.py: glue only, with a trailing period; its CoT variant adds <answer>
            return f"<answer>{label}</answer>{glue}." if think else f"{glue}."
        return f"<answer>{label}</answer>{glue}"
    if not sample.description:
        raise _missing(sample, task, "a description")
    return sample.description


def target_text(sample: VideoSample, task: str, preset: str = "default", think: bool = False) -> str:
    """The SFT target (assistant text) of one sample.

    Args:
        sample: the annotated video.
        task: ``qa``, ``tag``, ``cls`` or ``reasoning``.
        preset: prompt preset; ``paper_sft`` / ``paper_sft_think`` select the SFT scripts' target grammar.
        think: put ``<think>{sample.reasoning}</think>`` before the answer (pair it with a think prompt).

    Returns:
        The target text, e.g. ``<answer>B</answer>`` or
        ``<think>…</think><answer>Normal</answer><glue>[-1.0, -1.0]</glue>``.

    Raises:
        ValueError: unknown task or preset, or the sample lacks the fields the target needs.
    """
    paper_sft = get_preset(task, preset).target_style == "paper_sft"
    answer = _answer_text(sample, task, paper_sft, think)
    if not think:
        return answer
    if not sample.reasoning:
        raise _missing(sample, task, "a reasoning text for the <think> target")
    separator = " " if paper_sft and task == "qa" else ""  # initial commit: "<think>…</think> <answer>…"
    return f"<think>{sample.reasoning}</think>{separator}{answer}"


def reward_columns(sample: VideoSample, task: str, duration_s: float | None = None) -> dict[str, Any]:
    """The dataset columns the rewards read, the same keys for every task.

    Args:
        sample: the annotated video.
        task: ``qa``, ``tag``, ``cls`` or ``reasoning``.
        duration_s: the video's length in seconds (the decoded clip's), read by ``tiou_v2``; ``None``: no
            ``duration_s`` column.

    Returns:
        ``{"task": task, "answer": ..., "span": ...}`` where ``answer`` is the option letter (qa), the
        canonical class label (cls), ``"Normal"``/``"Anomaly"`` (tag) or ``None`` (reasoning, judged
        offline against the sample's description and reasoning), and ``span`` is ``[start_s, end_s]``
        (tag, unrounded seconds; ``[-1.0, -1.0]`` for a normal video) or ``None``; plus
        ``"duration_s": float(duration_s)`` when ``duration_s`` is given (every task, so batches line up).

    Raises:
        ValueError: unknown task, or the sample lacks the task's answer.
    """
    get_preset(task, "default")  # validates the task name
    answer: str | None = None
    span: list[float] | None = None
    if task == "qa":
        answer = _letter(sample, task)
    elif task == "cls":
        answer = _class_label(sample, task)
    elif task == "tag":
        answer, (start_s, end_s) = _tag_answer(sample, task)
        span = [float(start_s), float(end_s)]
    columns: dict[str, Any] = {"task": task, "answer": answer, "span": span}
    if duration_s is not None:
        columns["duration_s"] = float(duration_s)
    return columns
