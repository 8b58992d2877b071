"""Supervised fine-tuning settings (the ``sft`` section, ``vau_r1/configs/sft/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from vau_r1.sections import check


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning targets (``vau_r1/configs/sft/*.yaml``; each field is documented there).

    Attributes:
        think: ``True`` puts ``<think>{reasoning}</think>`` before the answer, ``False`` trains on the answer
            only, ``None`` follows the target preset (think targets for prompts that ask for a ``<think>`` block).
        target_preset: preset whose target grammar is used (:func:`vau_r1.tasks.target_text`); ``None``
            uses ``data.prompt_preset``.
        max_seq_tokens: cap on prompt + target tokens, cutting the target's tail; ``None`` for no cap.
    """

    think: bool | None = None
    target_preset: str | None = None
    max_seq_tokens: int | None = None

    def __post_init__(self) -> None:
        check(
            self.max_seq_tokens is None or self.max_seq_tokens >= 2,
            f"sft.max_seq_tokens={self.max_seq_tokens} must be null (no cap) or >= 2",
        )
