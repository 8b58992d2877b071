"""Prompt encoding for Qwen-VL video chats, without torchvision: the only module that knows the video kwargs.

:func:`encode_prompts` renders each conversation with the tokenizer's chat template, expands every
``<|video_pad|>`` into ``grid_t * grid_h * grid_w // merge_size**2`` tokens (what transformers'
``Qwen2_5_VLProcessor`` does), left-pads the batch and returns a :class:`PromptBatch` whose
:meth:`PromptBatch.model_kwargs` go straight into ``model(...)`` or ``model.generate(...)``.

The video tensors come from :func:`vau_r1.data.vision.video_inputs` (any object with the attributes
of :class:`VideoInputs`). Two silent failures are handled here (``docs/qwen_vl_notes.md``):
``mm_token_type_ids`` is always returned (without it the model quietly falls back to 1-D positions),
and ``second_per_grid_ts`` is part of the kwargs of every family that takes it (Qwen2.5-VL).

Families whose time encoding is ``timestamp_text`` (Qwen3-VL, Qwen3.5) get their processor's layout instead
(``Qwen3VLProcessor.replace_video_token`` in transformers 5.23): the template's ``<|video_pad|>`` becomes, per
temporal patch, ``<{t:.1f} seconds><|vision_start|>`` + ``h * w // merge_size**2`` pads + ``<|vision_end|>``,
inside the template's own ``<|vision_start|>`` … ``<|vision_end|>``. ``t`` is the mean presentation time of the
patch's first and last frame (:func:`vau_r1.model.timestamps.patch_timestamps_s`), from the clip's own frame times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol, runtime_checkable

import torch

from vau_r1.model.families import get_family
from vau_r1.model.timestamps import timestamp_text
from vau_r1.model.tokenizer import IMAGE_PAD_TOKEN, VIDEO_PAD_TOKEN, VISION_START_TOKEN

logger = logging.getLogger(__name__)

#: ``mm_token_type_ids`` values, as in transformers' processors.
TEXT_TYPE, IMAGE_TYPE, VIDEO_TYPE = 0, 1, 2


@runtime_checkable
class VideoInputs(Protocol):
    """What the model needs of one preprocessed video.

    Attributes:
        pixel_values_videos: ``[N, C * temporal_patch * patch * patch]`` flattened patches, ``N = t * h * w``.
        video_grid_thw: ``[1, 3]`` (or ``[3]``) long, the patch grid ``(t, h, w)``.
        second_per_grid_ts: seconds covered by one temporal grid step (``temporal_patch / sample_fps``).

    Qwen3-VL / Qwen3.5 prompts also read ``timestamps_s`` (each sampled frame's time) and
    ``temporal_patch_size`` when present (:class:`vau_r1.data.vision.VideoInputs` has both).
    """

    pixel_values_videos: torch.Tensor
    video_grid_thw: torch.Tensor
    second_per_grid_ts: float


@dataclass
class PromptBatch:
    """A left-padded batch of encoded video prompts.

    Attributes:
        input_ids: ``[B, P]`` long, left-padded with the tokenizer's pad id.
        attention_mask: ``[B, P]`` long, 0 on padding.
        mm_token_type_ids: ``[B, P]`` long, 2 at video pads, 1 at image pads, 0 elsewhere.
        pixel_values_videos: ``[sum N_v, D]`` all videos' patches in batch order, or ``None``.
        video_grid_thw: ``[B_videos, 3]`` long, or ``None``.
        second_per_grid_ts: ``[B_videos]`` float32 seconds per temporal grid step, or ``None``.
        family: model family the batch is for; decides which video kwargs :meth:`model_kwargs` passes.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    pixel_values_videos: torch.Tensor | None
    video_grid_thw: torch.Tensor | None
    second_per_grid_ts: torch.Tensor | None
    family: str = "qwen2_5_vl"

    @property
    def prompt_length(self) -> int:
        """``P``, the padded prompt length."""
        return self.input_ids.shape[1]

    def video_kwargs(self) -> dict[str, torch.Tensor]:
        """The video tensors the family's ``forward`` accepts (empty for a text-only batch)."""
        if self.video_grid_thw is None:
            return {}
        return {name: getattr(self, name) for name in get_family(self.family).video_kwargs}

    def model_kwargs(self) -> dict[str, torch.Tensor]:
        """Everything a forward pass or ``generate`` over the prompt needs."""
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "mm_token_type_ids": self.mm_token_type_ids,
            **self.video_kwargs(),
        }

    def to(self, device: torch.device | str) -> PromptBatch:
        """A copy with every tensor on ``device`` (dtypes unchanged)."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: v.to(device) for k, v in moved.items() if isinstance(v, torch.Tensor)})


def mm_token_type_ids(input_ids: torch.Tensor, *, video_token_id: int, image_token_id: int) -> torch.Tensor:
    """Modality of each token: 2 for video pads, 1 for image pads, 0 for text (same shape as ``input_ids``).

    Use it to extend the types over prompt + completion tokens for a scoring pass.

    >>> mm_token_type_ids(torch.tensor([[5, 9, 9, 7]]), video_token_id=9, image_token_id=8).tolist()
    [[0, 2, 2, 0]]
    """
    types = torch.zeros_like(input_ids)
    types[input_ids == image_token_id] = IMAGE_TYPE
    types[input_ids == video_token_id] = VIDEO_TYPE
    return types


def _clean_part(part: Any, sample: int) -> Any:
    """Rebuild a content part from its ``type`` only (HF datasets give every part every key, some None)."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part["text"]}
    if kind == "video":
        return {"type": "video"}
    raise ValueError(
        f"sample {sample}: content part of type {kind!r} is not supported; VAU-R1 prompts hold 'text' and "
        "'video' parts only"
    )


def _clean_messages(messages: Sequence[Mapping[str, Any]], sample: int) -> list[dict[str, Any]]:
    cleaned = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            content = [_clean_part(part, sample) for part in content]
        cleaned.append({"role": message["role"], "content": content})
    return cleaned


def _as_video_list(entry: VideoInputs | Sequence[VideoInputs] | None) -> list[VideoInputs]:
    if entry is None:
        return []
    if isinstance(entry, VideoInputs):
        return [entry]
    return list(entry)


def _num_video_tokens(video: VideoInputs, merge_size: int, sample: int) -> int:
    t, h, w = (int(x) for x in video.video_grid_thw.reshape(-1).tolist())
    if video.pixel_values_videos.shape[0] != t * h * w:
        raise ValueError(
            f"sample {sample}: pixel_values_videos has {video.pixel_values_videos.shape[0]} rows but video_grid_thw "
            f"({t}, {h}, {w}) needs {t * h * w}"
        )
    if h % merge_size or w % merge_size:
        raise ValueError(f"sample {sample}: grid h={h}, w={w} must be multiples of merge_size={merge_size}")
    return t * h * w // merge_size**2


def _expand_video_pads(ids: list[int], counts: list[int], video_token_id: int, sample: int) -> list[int]:
    """Replace the i-th ``<|video_pad|>`` of ``ids`` by ``counts[i]`` copies."""
    pads = [i for i, token in enumerate(ids) if token == video_token_id]
    if len(pads) != len(counts):
        raise ValueError(
            f"sample {sample}: the rendered prompt has {len(pads)} video placeholder(s) but {len(counts)} video(s) "
            "were given; pass one video per {'type': 'video'} content part"
        )
    expanded: list[int] = []
    last = 0
    for position, count in zip(pads, counts, strict=True):
        expanded += ids[last:position] + [video_token_id] * count
        last = position + 1
    return expanded + ids[last:]


def _truncate_left(
    ids: list[int], max_tokens: int, video_token_id: int, start_token_id: int, sample: int
) -> list[int]:
    """Keep the last ``max_tokens`` tokens; refuse to cut any video token or the vision start before it."""
    if len(ids) <= max_tokens:
        return ids
    cut = len(ids) - max_tokens
    first_video = ids.index(video_token_id) if video_token_id in ids else None
    if first_video is not None and start_token_id in ids[:first_video]:
        # The <|vision_start|> that opens the first video (and, for Qwen3-VL, its first timestamp) must survive.
        first_video = ids.index(start_token_id) + 1
    if first_video is not None and cut >= first_video:
        raise ValueError(
            f"sample {sample}: the prompt has {len(ids)} tokens ({ids.count(video_token_id)} of them video) and "
            f"max_prompt_tokens={max_tokens}; truncating would cut into the video. Raise max_prompt_tokens to at "
            f"least {len(ids)} or lower the video token budget (fps, max_frames, max_pixels/total_pixels)."
        )
    logger.warning("sample %d: prompt truncated from %d to %d tokens (text only)", sample, len(ids), max_tokens)
    return ids[cut:]


def _pad(rows: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(length - len(row), length) if side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


def encode_prompts(
    tokenizer: Any,
    messages_list: Sequence[Sequence[Mapping[str, Any]]],
    videos: Sequence[VideoInputs | Sequence[VideoInputs] | None],
    *,
    padding_side: str = "left",
    max_prompt_tokens: int | None = None,
    add_generation_prompt: bool = True,
    family: str = "qwen2_5_vl",
) -> PromptBatch:
    """Render, expand, tokenize and pad a batch of video chats.

    Args:
        tokenizer: a Qwen2 tokenizer with the Qwen-VL chat template (``load_model_and_processor`` returns one).
        messages_list: ``B`` conversations; content parts are ``{"type": "text", "text": ...}`` or
            ``{"type": "video", ...}`` (extra keys such as the video path are ignored).
        videos: ``B`` entries, each the video of that conversation, a list of its videos in order, or ``None``.
        padding_side: ``"left"`` (generation) or ``"right"``.
        max_prompt_tokens: keep at most this many tokens per prompt, cutting from the left; cutting into a
            video raises instead.
        add_generation_prompt: end with ``<|im_start|>assistant\\n``.
        family: model family (:func:`vau_r1.model.families.family_of`), decides the video kwargs.

    Returns:
        The :class:`PromptBatch` (tensors on CPU).

    Raises:
        ValueError: placeholder/video count mismatch, inconsistent video tensors, or a truncation that
            would cut a video; the message names the sample index and the fix.
    """
    if len(messages_list) != len(videos):
        raise ValueError(f"{len(messages_list)} conversations but {len(videos)} video entries; pass one per sample")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side={padding_side!r}; expected 'left' or 'right'")
    model_family = get_family(family)
    merge_size = model_family.spatial_merge_size
    video_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD_TOKEN)
    start_id = tokenizer.convert_tokens_to_ids(VISION_START_TOKEN)
    rows: list[list[int]] = []
    flat_videos: list[VideoInputs] = []
    for sample, (messages, entry) in enumerate(zip(messages_list, videos, strict=True)):
        text = tokenizer.apply_chat_template(
            _clean_messages(messages, sample), tokenize=False, add_generation_prompt=add_generation_prompt
        )
        sample_videos = _as_video_list(entry)
        counts = [_num_video_tokens(v, merge_size, sample) for v in sample_videos]
        if model_family.timestamp_text:
            text, counts = timestamp_text(text, sample_videos, merge_size, sample)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = _expand_video_pads(ids, counts, video_id, sample)
        if max_prompt_tokens is not None:
            ids = _truncate_left(ids, max_prompt_tokens, video_id, start_id, sample)
        rows.append(ids)
        flat_videos += sample_videos
    input_ids, attention_mask = _pad(rows, tokenizer.pad_token_id, padding_side)
    types = mm_token_type_ids(
        input_ids, video_token_id=video_id, image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_PAD_TOKEN)
    )
    types[attention_mask == 0] = TEXT_TYPE
    return PromptBatch(input_ids, attention_mask, types, *_stack_videos(flat_videos), family=family)


def _stack_videos(videos: list[VideoInputs]) -> tuple[torch.Tensor | None, ...]:
    if not videos:
        return None, None, None
    pixels = torch.cat([v.pixel_values_videos for v in videos])
    grids = torch.cat([v.video_grid_thw.reshape(1, 3).long() for v in videos])
    seconds = torch.tensor([float(v.second_per_grid_ts) for v in videos], dtype=torch.float32)
    return pixels, grids, seconds
