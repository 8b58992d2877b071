"""Batched generation over video prompts, shared by ``vau-r1 eval run`` and ``vau-r1 predict``.

:func:`generate_texts` encodes a batch of chats with :func:`vau_r1.model.processing.encode_prompts`
(left padding, ``mm_token_type_ids`` and ``second_per_grid_ts`` included) and calls ``model.generate``.
Decoding is plain greedy by default: ``do_sample=False`` with the checkpoint's repetition penalty and
n-gram ban switched off (Qwen2.5-VL's ``generation_config.json`` sets ``repetition_penalty=1.05``, which
``generate`` would otherwise apply). ``checkpoint_defaults=True`` decodes as the paper's eval scripts did,
with whatever the checkpoint's ``generation_config.json`` says (``docs/paper.md`` §8.1). Sampling is
seeded per batch from the batch's video names, so a resumed run draws the same tokens as an uninterrupted one.

The paper's QA and reasoning eval prompts render the chat template with ``add_vision_id=True``
("Video 1: " before the video, ``docs/paper.md`` §4). :class:`VisionIdTokenizer` passes that flag
through to the tokenizer's ``apply_chat_template``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from vau_r1.model.processing import VideoInputs, encode_prompts

__all__ = ["Generation", "GenerationSettings", "VisionIdTokenizer", "batch_seed", "generate_texts"]


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings (the ``generation`` section of ``vau_r1/configs/eval.yaml``).

    Attributes:
        max_new_tokens: completion cap in tokens (the paper's eval: 1024).
        do_sample: ``False`` for greedy decoding; ``True`` samples with the settings below.
        temperature: softmax temperature when sampling.
        top_p: nucleus mass kept when sampling (1.0 disables).
        top_k: top tokens kept when sampling (0 disables).
        seed: base seed of the per-batch sampling seed (see :func:`batch_seed`).
        max_prompt_tokens: cut longer prompts from the left (text only); ``None`` keeps everything.
        checkpoint_defaults: ignore the settings above except ``max_new_tokens`` and decode with the
            checkpoint's ``generation_config.json`` (the paper's eval scripts).
    """

    max_new_tokens: int = 1024
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 42
    max_prompt_tokens: int | None = None
    checkpoint_defaults: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"generation.max_new_tokens={self.max_new_tokens} must be >= 1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(
                f"generation.temperature={self.temperature} (> 0), top_p={self.top_p} (in (0, 1]) and "
                f"top_k={self.top_k} (>= 0) are out of range"
            )

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``model.generate``; every knob not given falls back to the checkpoint's.

        >>> GenerationSettings(max_new_tokens=8).generate_kwargs()
        {'max_new_tokens': 8, 'do_sample': False, 'num_beams': 1, 'repetition_penalty': 1.0, 'no_repeat_ngram_size': 0}
        """
        if self.checkpoint_defaults:
            return {"max_new_tokens": self.max_new_tokens}
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample, "num_beams": 1,
                                  "repetition_penalty": 1.0, "no_repeat_ngram_size": 0}  # fmt: skip
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, for reports."""
        return asdict(self)


@dataclass(frozen=True)
class Generation:
    """One decoded completion.

    Attributes:
        text: completion decoded without special tokens.
        prompt_tokens: prompt length in tokens (video tokens included, padding excluded).
        completion_tokens: generated tokens up to and including the first EOS.
        truncated: no EOS within ``max_new_tokens``.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool


class VisionIdTokenizer:
    """A tokenizer whose ``apply_chat_template`` always gets ``add_vision_id=True`` ("Video 1: ...").

    Every other attribute is the wrapped tokenizer's.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped template with ``add_vision_id=True``."""
        return self._tokenizer.apply_chat_template(*args, add_vision_id=True, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def batch_seed(seed: int, keys: Sequence[str]) -> int:
    """Sampling seed of one batch: ``seed`` mixed with a CRC of the batch's keys (video names).

    >>> batch_seed(42, ["a.mp4", "b.mp4"]) == batch_seed(42, ["a.mp4", "b.mp4"]) != batch_seed(42, ["a.mp4"])
    True
    """
    return (seed * 1_000_003 + zlib.crc32("\n".join(keys).encode("utf-8"))) % 2**63


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    eos = model.generation_config.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    return ids or [tokenizer.eos_token_id]


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def generate_texts(
    model: Any,
    tokenizer: Any,
    messages_list: Sequence[Sequence[Mapping[str, Any]]],
    videos: Sequence[VideoInputs | Sequence[VideoInputs] | None],
    settings: GenerationSettings,
    *,
    family: str,
    add_vision_id: bool = False,
    keys: Sequence[str] | None = None,
) -> list[Generation]:
    """Generate one completion per chat (a batch of ``B`` left-padded prompts).

    Args:
        model: a Qwen2/2.5-VL ``...ForConditionalGeneration`` (or a PEFT model around one), in eval mode.
        tokenizer: its tokenizer (with the Qwen-VL chat template).
        messages_list: ``B`` chats, each ending with a user turn.
        videos: ``B`` entries, the video inputs of each chat (one per video part).
        settings: decoding settings.
        family: model family (``qwen2_vl`` / ``qwen2_5_vl``), decides the video kwargs.
        add_vision_id: render "Video 1: " before the video (the paper's QA/reasoning eval prompts).
        keys: ``B`` names seeding the sampler (:func:`batch_seed`); irrelevant to greedy decoding.

    Returns:
        ``B`` :class:`Generation` in input order.
    """
    encoder = VisionIdTokenizer(tokenizer) if add_vision_id else tokenizer
    batch = encode_prompts(
        encoder, messages_list, videos, family=family, max_prompt_tokens=settings.max_prompt_tokens
    ).to(_device(model))
    torch.manual_seed(batch_seed(settings.seed, list(keys or [])))  # only sampling uses it
    output = model.generate(**batch.model_kwargs(), **settings.generate_kwargs())
    completions = output[:, batch.prompt_length :].cpu()  # [B, L]
    eos = torch.tensor(_eos_ids(model, tokenizer))
    results = []
    for row, prompt_tokens in zip(completions, batch.attention_mask.sum(dim=1).tolist(), strict=True):
        hits = torch.isin(row, eos).nonzero()
        length = int(hits[0]) + 1 if len(hits) else len(row)
        text = tokenizer.decode(row[:length], skip_special_tokens=True)
        results.append(Generation(text, int(prompt_tokens), length, truncated=not len(hits)))
    return results
