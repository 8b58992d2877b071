"""Task definitions: prompt presets, chat messages, SFT targets, reward columns and answer parsers.

* :mod:`vau_r1.tasks.prompts` — the prompt texts, verbatim (one constant per preset);
* :mod:`vau_r1.tasks.presets` — ``PROMPT_PRESETS[task][name]`` and placeholder filling;
* :mod:`vau_r1.tasks.messages` — :func:`build_messages`, :func:`build_reasoning_turns`;
* :mod:`vau_r1.tasks.targets` — :func:`target_text`, :func:`reward_columns`;
* :mod:`vau_r1.tasks.spec` — :class:`TaskSpec`, ``TASK_SPECS``, :func:`get_task`.
"""

from __future__ import annotations

from vau_r1.tasks.messages import ReasoningTurns, build_messages, build_reasoning_turns, text_part, video_part
from vau_r1.tasks.presets import PRESET_NAMES, PROMPT_PRESETS, PromptPreset, get_preset, render_prompt
from vau_r1.tasks.spec import TASK_SPECS, TaskSpec, get_task
from vau_r1.tasks.targets import ANOMALY_LABEL, format_span, reward_columns, target_text

__all__ = [
    "ANOMALY_LABEL",
    "PRESET_NAMES",
    "PROMPT_PRESETS",
    "TASK_SPECS",
    "PromptPreset",
    "ReasoningTurns",
    "TaskSpec",
    "build_messages",
    "build_reasoning_turns",
    "format_span",
    "get_preset",
    "get_task",
    "render_prompt",
    "reward_columns",
    "target_text",
    "text_part",
    "video_part",
]
