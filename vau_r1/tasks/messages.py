"""Chat messages in the Hugging Face / Qwen-VL format for every task and preset.

A message is ``{"role": ..., "content": [part, ...]}`` where each part carries only the keys of its
type: ``{"type": "text", "text": ...}`` or ``{"type": "video", "video": ...}``. Content is always a list
(never a bare string), so a column of messages has one Arrow type in :mod:`datasets`.

Keep extra keys out of the parts: HF ``datasets`` stores parts as Arrow structs, giving every part
every key, and Qwen's chat template tests ``'video' in content``, so a text part with a ``video: None``
key would render as an extra video (``docs/qwen_vl_notes.md``, "Other traps"). Video
decoding options (fps, pixel budget) belong to the video loader, not to the message.

Example:
    >>> from vau_r1.data.schema import VideoSample
    >>> sample = VideoSample(video="msad_Assault_3.mp4", source="msad", row=1)
    >>> [part["type"] for part in build_messages(sample, "tag")[0]["content"]]
    ['text', 'video']
    >>> [part["type"] for part in build_messages(sample, "tag", "paper_eval_think")[0]["content"]]
    ['video', 'text']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vau_r1.data.schema import VideoSample
from vau_r1.tasks.presets import get_preset, render_prompt

Message = dict[str, Any]


def text_part(text: str) -> dict[str, str]:
    """A text content part: ``{"type": "text", "text": text}``."""
    return {"type": "text", "text": text}


def video_part(video: str | os.PathLike[str]) -> dict[str, str]:
    """A video content part: ``{"type": "video", "video": path}`` (a path or a placeholder string)."""
    return {"type": "video", "video": os.fspath(video)}


def build_messages(
    sample: VideoSample,
    task: str,
    preset: str = "default",
    *,
    video: str | os.PathLike[str] | None = None,
    duration_s: float | None = None,
    system_prompt: str | None = None,
    video_first: bool | None = None,
) -> list[Message]:
    """Build the prompt messages of one sample (the first turn for reasoning).

    Args:
        sample: the annotated video.
        task: ``qa``, ``tag``, ``cls`` or ``reasoning``.
        preset: prompt preset name (see :mod:`vau_r1.tasks.presets`).
        video: path or placeholder put in the video part; defaults to ``sample.video`` (the CSV file name).
        duration_s: video length in seconds; the default tag prompt states it ("The video lasts 12.3 seconds.").
        system_prompt: adds a system message. By default there is none, as in the paper: Qwen's chat
            template then inserts its own "You are a helpful assistant.".
        video_first: content order override; by default training presets put the text first and the
            paper's eval presets the video first, as the official code does (§10 item 35).

    Returns:
        ``[system?, user]`` messages; the user content holds one text part and one video part.

    Raises:
        ValueError: unknown task or preset, or the sample lacks the fields the prompt needs.
    """
    spec = get_preset(task, preset)
    parts = [text_part(render_prompt(spec, sample, duration_s)), video_part(sample.video if video is None else video)]
    if spec.video_first if video_first is None else video_first:
        parts.reverse()
    messages: list[Message] = []
    if system_prompt is not None:
        messages.append({"role": "system", "content": [text_part(system_prompt)]})
    messages.append({"role": "user", "content": parts})
    return messages


@dataclass(frozen=True)
class ReasoningTurns:
    """The two-turn reasoning chat (VAU-Eval input, §4.4), with the video attached once.

    The official inference re-attached the video to the second user turn, so the history carried two
    copies of it: twice the visual tokens, and a second copy at new positions, while the first copy is
    still in context (§10 item 31). Here the second turn is text only and refers to the video above.

    Attributes:
        first: messages of the first generation (the "Description" question with the video).
        second_text: user text of the second turn (the "Analysis" question).
    """

    first: list[Message]
    second_text: str

    def history(self, first_reply: str) -> list[Message]:
        """Messages of the second generation: the first turn, the model's reply, the text-only question.

        Args:
            first_reply: the decoded answer to the first turn (the generated description).

        Returns:
            ``[*first, assistant(first_reply), user(second_text)]``; the video appears once.
        """
        return [
            *self.first,
            {"role": "assistant", "content": [text_part(first_reply)]},
            {"role": "user", "content": [text_part(self.second_text)]},
        ]


def build_reasoning_turns(
    sample: VideoSample,
    preset: str = "default",
    *,
    video: str | os.PathLike[str] | None = None,
    system_prompt: str | None = None,
    video_first: bool | None = None,
) -> ReasoningTurns:
    """Build the two-turn reasoning prompt of one sample (description, then analysis).

    Args:
        sample: the annotated video.
        preset: a reasoning preset with a second turn (``default``, ``default_no_think``, ``paper_eval_*``).
        video: path or placeholder of the video; defaults to ``sample.video``.
        system_prompt: adds a system message before the first turn.
        video_first: content order override of the first turn.

    Returns:
        The first-turn messages and the second-turn text; see :meth:`ReasoningTurns.history`.

    Raises:
        ValueError: unknown preset, or a preset with a single turn (``paper_sft``, the description baseline).
    """
    spec = get_preset("reasoning", preset)
    if spec.second_turn is None:
        raise ValueError(
            f"reasoning preset {preset!r} has a single turn; use build_messages(sample, 'reasoning', {preset!r})"
        )
    first = build_messages(
        sample, "reasoning", preset, video=video, system_prompt=system_prompt, video_first=video_first
    )
    return ReasoningTurns(first=first, second_text=spec.second_turn)
