"""SFT sequences: a video prompt followed by its target, with the loss on the assistant's answer only.

One row of a batch (the layout of the GRPO scoring pass, so SFT trains exactly what GRPO later samples)::

    pad … pad  <|im_start|>system …<|im_start|>user … <|vision_start|><|video_pad|>×N<|vision_end|> …
               <|im_start|>assistant\\n  target tokens  <|im_end|>  pad … pad
    └─────────────── left-padded prompt (labels -100) ───────────┘ └─── loss ───┘ └ -100 ┘

* The prompt is rendered with ``add_generation_prompt=True`` (it ends with ``<|im_start|>assistant\\n``) and the
  target is tokenized on its own and closed by ``<|im_end|>``: the tokens the model must generate after the
  prompt. The official SFT rendered the whole chat with ``add_generation_prompt=True``, which appended an extra
  ``<|im_start|>assistant\\n`` after the answer, and trained on the prompt too (``docs/paper.md`` §7, §10 item 22).
* Labels are the target ids where :attr:`SFTBatch.loss_mask` is 1 and ``-100`` everywhere else: padding, the
  system text, the template, the user text and the video placeholders never carry loss.

Targets come from :func:`vau_r1.tasks.target_text`: with think targets ``<think>{reasoning}</think>`` comes first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from vau_r1.data.schema import VideoSample
from vau_r1.model.processing import VideoInputs, encode_prompts
from vau_r1.model.tokenizer import EOS_TOKEN
from vau_r1.policy.scorer import sequence_inputs
from vau_r1.tasks import get_preset, target_text

logger = logging.getLogger(__name__)

#: Label of positions without loss (PyTorch's ``cross_entropy`` default ``ignore_index``).
IGNORE_INDEX = -100


@dataclass(frozen=True)
class SFTTargets:
    """Which target each ``(sample, task)`` gets.

    Args:
        preset: preset whose target grammar is used, normally the prompt preset (``paper_sft`` /
            ``paper_sft_think`` reproduce the official scripts' targets).
        think: ``True``/``False`` forces think targets on or off; ``None`` follows ``preset`` (think targets
            for presets whose prompt asks for a ``<think>`` block).
    """

    preset: str
    think: bool | None = None

    def think_for(self, task: str) -> bool:
        """Whether ``task``'s targets start with ``<think>{reasoning}</think>``."""
        return get_preset(task, self.preset).think if self.think is None else self.think

    def text(self, sample: VideoSample, task: str) -> str:
        """The assistant text to learn, e.g. ``<answer>B</answer>`` or ``<think>…</think><answer>B</answer>``."""
        return target_text(sample, task, self.preset, think=self.think_for(task))

    def usable(self, sample: VideoSample, task: str) -> bool:
        """Whether the sample has what its target needs (a reasoning text for think targets)."""
        return not self.think_for(task) or bool(sample.reasoning)

    def filter(self, pairs: Sequence[tuple[VideoSample, str]]) -> list[tuple[VideoSample, str]]:
        """Keep the ``(sample, task)`` pairs whose target can be built; log how many were dropped.

        Raises:
            ValueError: none is left.
        """
        kept = [(s, t) for s, t in pairs if self.usable(s, t)]
        if len(kept) < len(pairs):
            logger.info("%d of %d rows have no reasoning text for a <think> target; dropped", len(pairs) - len(kept),
                        len(pairs))  # fmt: skip
        if not kept:
            raise ValueError("no row has a reasoning text for the <think> targets; set sft.think=false")
        return kept


@dataclass
class SFTBatch:
    """A batch of ``B`` prompts and their targets, in the GRPO scoring layout (``G = 1``).

    Attributes:
        prompt: the prompts' model inputs (``input_ids``/``attention_mask``/``mm_token_type_ids`` ``[B, P]``
            left-padded, video tensors), as :meth:`vau_r1.model.processing.PromptBatch.model_kwargs` gives them.
        target_ids: ``[B, L]`` target tokens closed by ``<|im_end|>``, right-padded with the pad id.
        loss_mask: ``[B, L]`` 1 on target tokens (the closing ``<|im_end|>`` included), 0 on padding.
        truncated: ``[B]`` bool, targets cut by ``max_seq_tokens``.
    """

    prompt: dict[str, torch.Tensor]
    target_ids: torch.Tensor
    loss_mask: torch.Tensor
    truncated: torch.Tensor

    @property
    def num_tokens(self) -> int:
        """Tokens carrying loss."""
        return int(self.loss_mask.sum())

    def to(self, device: torch.device | str) -> SFTBatch:
        """A copy with every tensor on ``device``."""
        return SFTBatch({k: v.to(device) for k, v in self.prompt.items()}, self.target_ids.to(device),
                        self.loss_mask.to(device), self.truncated.to(device))  # fmt: skip

    def sequences(self) -> dict[str, torch.Tensor]:
        """Full-sequence inputs with HF-style labels (``model(**out)`` computes the same loss as the trainer).

        Returns:
            ``input_ids``, ``attention_mask``, ``mm_token_type_ids``, ``labels`` ``[B, P+L]`` (``-100`` outside the
            targets) and the prompts' video tensors.
        """
        out = sequence_inputs(self.prompt, self.target_ids, self.loss_mask)
        prompt_labels = torch.full_like(self.prompt["input_ids"], IGNORE_INDEX)
        target_labels = self.target_ids.masked_fill(self.loss_mask == 0, IGNORE_INDEX)
        out["labels"] = torch.cat([prompt_labels, target_labels], dim=1)
        out["pixel_values_videos"] = self.prompt["pixel_values_videos"]
        return out


def target_token_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of an assistant target: ``text`` tokenized alone, then ``<|im_end|>`` (no trailing newline)."""
    return [*tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.convert_tokens_to_ids(EOS_TOKEN)]


def build_sft_batch(
    tokenizer: Any,
    messages_list: Sequence[Sequence[Mapping[str, Any]]],
    videos: Sequence[VideoInputs | None],
    targets: Sequence[str],
    *,
    family: str = "qwen2_5_vl",
    max_seq_tokens: int | None = None,
) -> SFTBatch:
    """Encode ``B`` prompts and their target texts into an :class:`SFTBatch` (tensors on CPU).

    Args:
        tokenizer: Qwen tokenizer with the chat template.
        messages_list: the ``B`` prompt conversations (no assistant turn).
        videos: the ``B`` videos' model inputs.
        targets: the ``B`` assistant texts.
        family: model family, decides the video kwargs.
        max_seq_tokens: cap on prompt + target tokens; a longer target loses its tail (and its ``<|im_end|>``).

    Raises:
        ValueError: a prompt alone reaches ``max_seq_tokens`` (the message names the sample and the fix).
    """
    if len(targets) != len(messages_list):
        raise ValueError(f"{len(messages_list)} prompts but {len(targets)} targets; pass one target per prompt")
    batch = encode_prompts(tokenizer, messages_list, videos, padding_side="left", family=family)
    prompt_lengths = batch.attention_mask.sum(dim=1).tolist()
    rows, truncated = [], []
    for sample, (text, prompt_length) in enumerate(zip(targets, prompt_lengths, strict=True)):
        ids = target_token_ids(tokenizer, text)
        room = len(ids) if max_seq_tokens is None else max_seq_tokens - prompt_length
        if room < 1:
            raise ValueError(
                f"sample {sample}: the prompt has {prompt_length} tokens, leaving no room for the target under "
                f"sft.max_seq_tokens={max_seq_tokens}; raise it or lower the video token budget"
            )
        truncated.append(len(ids) > room)
        rows.append(ids[:room])
    if any(truncated):
        logger.warning("%d of %d targets cut to sft.max_seq_tokens=%s", sum(truncated), len(rows), max_seq_tokens)
    length = max(len(r) for r in rows)
    target_ids = torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long)
    loss_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, ids in enumerate(rows):
        target_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        loss_mask[i, : len(ids)] = 1
    return SFTBatch(batch.model_kwargs(), target_ids, loss_mask, torch.tensor(truncated))
