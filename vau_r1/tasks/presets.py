"""Prompt presets: which template, placeholder values, content order and output grammar per task.

A preset is looked up as ``PROMPT_PRESETS[task][name]`` (or :func:`get_preset`, which raises a
``ValueError`` listing the valid names). The names:

* ``paper_grpo`` — the official GRPO training prompts (qa, tag, cls; no RFT trainer exists for reasoning);
* ``paper_sft`` / ``paper_sft_think`` — the SFT prompts; ``_think`` is the initial-commit CoT variant
  (only CLS changed its prompt; QA and TAG changed only the target, §4.1–4.3);
* ``paper_eval_think`` / ``paper_eval_no_think`` — the evaluation prompts (video before text);
* ``default`` / ``default_no_think`` — this project's prompts, for training and evaluation alike.
  They ask for exactly what the rewards parse: a letter (qa), a class label (cls), ``Normal``/``Anomaly``
  plus a ``<glue>[s, e]</glue>`` span (tag), fixing the "letter of the option" contradiction (§10 item 21).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from vau_r1.data.schema import CLASS_LABELS, OPTION_LETTERS, TASKS, VideoSample
from vau_r1.tasks import prompts as P

#: Every preset name, in documentation order; not every task has every preset.
PRESET_NAMES: tuple[str, ...] = (
    "paper_grpo", "paper_sft", "paper_sft_think", "paper_eval_think", "paper_eval_no_think",
    "default", "default_no_think",
)  # fmt: skip

#: How the four QA options fill the template: ``list`` = ``str(["A. x", ...])`` (GRPO), ``joined`` =
#: ``"A. x B. y ..."`` (SFT), ``each`` = one placeholder per option text (eval), ``lines`` = one
#: ``"A. x"`` per line (default), ``none`` = the preset has no sample options (tag, cls, reasoning).
OptionStyle = Literal["list", "joined", "each", "lines", "none"]

_PLACEHOLDER = re.compile(r"\[([A-Z_]+)\]")


@dataclass(frozen=True)
class PromptPreset:
    """One prompt preset of one task.

    Attributes:
        task: task name (one of :data:`vau_r1.data.schema.TASKS`).
        name: preset name (one of :data:`PRESET_NAMES`).
        template: prompt text with ``[PLACEHOLDER]`` slots (first user turn for reasoning).
        think: whether the prompt asks for a ``<think>`` block before the answer.
        video_first: content order, ``True`` = [video, text] (paper eval), ``False`` = [text, video] (paper training).
        question: fixed ``[QUESTION]`` text; ``None`` takes ``sample.question`` (qa).
        option_text: fixed ``[OPTION]`` text (tag, cls); ``None`` when the options come from the sample.
        option_style: how sample options are rendered, see :data:`OptionStyle`.
        second_turn: text of the second user turn (reasoning), else ``None``.
        add_vision_id: the paper's eval passes ``add_vision_id=True`` to the chat template (qa, reasoning).
        target_style: ``answer`` = ``<answer>…</answer>`` (+glue) targets; ``paper_sft`` = the SFT scripts'
            targets (tag: ``<glue>[s, e]</glue>.`` with a trailing period; qa CoT: a space after ``</think>``).
    """

    task: str
    name: str
    template: str
    think: bool
    video_first: bool = False
    question: str | None = None
    option_text: str | None = None
    option_style: OptionStyle = "none"
    second_turn: str | None = None
    add_vision_id: bool = False
    target_style: Literal["answer", "paper_sft"] = "answer"


def _presets() -> list[PromptPreset]:
    """All presets; ``video_first=True`` marks the eval ones (the paper's eval content order)."""
    qa, tag, cls, rsn = "qa", "tag", "cls", "reasoning"
    tag_q_think, tag_q = P.TAG_QUESTION_THINK, P.TAG_QUESTION_NO_THINK
    cls_q, cls_opt = P.CLS_QUESTION, P.CLS_FIXED_OPTION
    labels = ", ".join(CLASS_LABELS)
    sft = "paper_sft"
    vid_id: dict[str, Any] = {"option_style": "each", "add_vision_id": True}  # the QA eval options and vision ids
    return [
        PromptPreset(qa, "paper_grpo", P.QA_GRPO, True, option_style="list"),
        PromptPreset(qa, "paper_sft", P.QA_SFT, False, option_style="joined", target_style=sft),
        PromptPreset(qa, "paper_sft_think", P.QA_SFT, True, option_style="joined", target_style=sft),
        PromptPreset(qa, "paper_eval_think", P.QA_EVAL_THINK, True, True, **vid_id),
        PromptPreset(qa, "paper_eval_no_think", P.QA_EVAL_NO_THINK, False, True, **vid_id),
        PromptPreset(qa, "default", P.DEFAULT_QA_THINK, True, option_style="lines"),
        PromptPreset(qa, "default_no_think", P.DEFAULT_QA_NO_THINK, False, option_style="lines"),
        PromptPreset(tag, "paper_grpo", P.TAG_GRPO, True, question=tag_q_think, option_text=P.TAG_OPTION_GRPO),
        PromptPreset(tag, "paper_sft", P.TAG_SFT, False, question=tag_q, target_style=sft),
        # docs/paper.md §4.2 records only the CoT *target* of the initial commit; the prompt is kept [inferred].
        PromptPreset(tag, "paper_sft_think", P.TAG_SFT, True, question=tag_q, target_style=sft),
        PromptPreset(tag, "paper_eval_think", P.TAG_EVAL_THINK, True, True, tag_q_think, P.TAG_OPTION_EVAL),
        PromptPreset(tag, "paper_eval_no_think", P.TAG_EVAL_NO_THINK, False, True, question=tag_q),
        PromptPreset(tag, "default", P.DEFAULT_TAG_THINK, True),
        PromptPreset(tag, "default_no_think", P.DEFAULT_TAG_NO_THINK, False),
        PromptPreset(cls, "paper_grpo", P.CLS_GRPO, True, question=cls_q, option_text=cls_opt),
        PromptPreset(cls, "paper_sft", P.CLS_SFT, False, False, cls_q, cls_opt, target_style=sft),
        PromptPreset(cls, "paper_sft_think", P.CLS_SFT_THINK, True, False, cls_q, cls_opt, target_style=sft),
        PromptPreset(cls, "paper_eval_think", P.CLS_EVAL_THINK, True, True, cls_q, cls_opt),
        PromptPreset(cls, "paper_eval_no_think", P.CLS_EVAL_NO_THINK, False, True, cls_q, cls_opt),
        PromptPreset(cls, "default", P.DEFAULT_CLS_THINK, True, option_text=labels),
        PromptPreset(cls, "default_no_think", P.DEFAULT_CLS_NO_THINK, False, option_text=labels),
        PromptPreset(rsn, "paper_sft", P.REASONING_SFT, False, target_style=sft),
        # Reasoning output is free text, so the "think" eval/default names share one two-turn prompt.
        *(
            PromptPreset(rsn, name, P.REASONING_EVAL_TURN1, False, name.startswith("paper_eval"),
                         second_turn=P.REASONING_EVAL_TURN2, add_vision_id=name.startswith("paper_eval"))
            for name in ("paper_eval_think", "paper_eval_no_think", "default", "default_no_think")
        ),
    ]  # fmt: skip


#: ``PROMPT_PRESETS[task][name]`` → :class:`PromptPreset`.
PROMPT_PRESETS: dict[str, dict[str, PromptPreset]] = {task: {} for task in TASKS}
for _preset in _presets():
    PROMPT_PRESETS[_preset.task][_preset.name] = _preset


def get_preset(task: str, name: str) -> PromptPreset:
    """Look up a preset by task and name.

    Raises:
        ValueError: unknown task or preset; the message lists the valid names.
    """
    if task not in PROMPT_PRESETS:
        raise ValueError(f"Unknown task {task!r}; expected one of {list(TASKS)}")
    presets = PROMPT_PRESETS[task]
    if name not in presets:
        raise ValueError(f"Unknown prompt preset {name!r} for task {task!r}; expected one of {list(presets)}")
    return presets[name]


def duration_sentence(duration_s: float | None) -> str:
    """The ``[DURATION]`` text: ``"The video lasts 12.3 seconds. "``, or ``""`` when unknown.

    >>> duration_sentence(12.34), duration_sentence(None)
    ('The video lasts 12.3 seconds. ', '')
    """
    if duration_s is None:
        return ""
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    return f"The video lasts {duration_s:.1f} seconds. "


def _option_values(preset: PromptPreset, sample: VideoSample) -> dict[str, str]:
    """Placeholder values for the sample's options (qa presets only)."""
    if preset.option_style == "none":
        return {"OPTION": preset.option_text} if preset.option_text is not None else {}
    if sample.question is None or sample.options is None:
        raise ValueError(
            f"{sample.video} (row {sample.row}): task {preset.task!r} needs a question and four options; "
            "filter the samples with the annotations' usable rules first"
        )
    prefixed = [f"{letter}. {text}" for letter, text in zip(OPTION_LETTERS, sample.options, strict=True)]
    if preset.option_style == "list":
        return {"OPTION": str(prefixed)}
    if preset.option_style == "joined":
        return {"OPTION": " ".join(prefixed)}
    if preset.option_style == "lines":
        return {"OPTIONS": "\n".join(prefixed)}
    return {f"OPTION_{letter}": text for letter, text in zip(OPTION_LETTERS, sample.options, strict=True)}


def render_prompt(preset: PromptPreset, sample: VideoSample, duration_s: float | None = None) -> str:
    """Fill a preset's template for one sample, in a single pass (inserted text is never re-scanned).

    Args:
        preset: the preset to render.
        sample: the annotated video; only qa reads its question and options.
        duration_s: video length in seconds, stated by templates with a ``[DURATION]`` slot (default tag);
            other templates ignore it.

    Returns:
        The user text of the (first) turn.

    Raises:
        ValueError: the sample lacks the fields the template needs, or ``duration_s`` is not positive.
    """
    values = _option_values(preset, sample)
    values["QUESTION"] = preset.question if preset.question is not None else (sample.question or "")
    values["DURATION"] = duration_sentence(duration_s)

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:  # a template slot with no value is a bug in this module, not in the data
            raise KeyError(f"preset {preset.task}/{preset.name}: no value for placeholder [{key}]")
        return values[key]

    return _PLACEHOLDER.sub(fill, preset.template)
