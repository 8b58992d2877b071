"""The original Qwen2-VL / Qwen2.5-VL multimodal rotary (mRoPE) position rule, as a drop-in ``get_rope_index``.

Qwen's own code (and transformers <= 5.2, vLLM) places the text that follows an image or video right after
the largest position the vision block used: with a video of ``t`` temporal steps spaced ``interval`` apart,
that is ``start + (t - 1) * interval + 1`` when time dominates. transformers 5.23 instead restarts text at
``start + max(h, w) / merge`` (its ``current_pos += max(grid_thw[1], grid_thw[2]) // spatial_merge_size``),
so text after a long video overlaps the video's temporal positions, unlike what the checkpoints were
trained with. Its ``rope_deltas`` still use the largest position, so although ``generate`` (which counts on
from the last prompt position) agrees with a full forward pass, any forward over a KV cache without explicit
``position_ids`` does not: on the tiny model the first token after a prefill landed at position 34 instead
of 26 and its logits were off by 0.31. With the original rule the largest position is the last one, so all
these paths agree.

:func:`qwen_rope_index` computes the original positions; :func:`install_qwen_rope_index` makes a loaded
model use it everywhere (forward, ``generate``, explicit ``model.model.get_rope_index`` calls).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import Any

import torch


def _vision_positions(start: int, grid_thw: torch.Tensor, merge_size: int, interval: float) -> torch.Tensor:
    """``[3, t*h*w/merge**2]`` (temporal, height, width) positions of one image/video block."""
    t, h, w = int(grid_thw[0]), int(grid_thw[1]) // merge_size, int(grid_thw[2]) // merge_size
    temporal = (torch.arange(t) * interval).long()  # scale first, then truncate (as Qwen does)
    grid = torch.meshgrid(temporal, torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack(grid).reshape(3, -1) + start


def _sample_positions(
    types: list[int],
    grids: dict[int, Iterator[torch.Tensor]],
    seconds: Iterator[float],
    config: Any,
    absolute_time: bool,
) -> torch.Tensor:
    """``[3, L]`` positions of one unpadded sequence whose token modalities are ``types``."""
    merge_size = config.vision_config.spatial_merge_size
    blocks, next_pos = [], 0
    for kind, group in itertools.groupby(types):
        length = len(list(group))
        if kind == 0:
            blocks.append(torch.arange(length).expand(3, -1) + next_pos)
            next_pos += length
            continue
        interval = 1.0
        if kind == 2 and absolute_time:
            interval = float(next(seconds)) * config.vision_config.tokens_per_second
        block = _vision_positions(next_pos, next(grids[kind]), merge_size, interval)
        if block.shape[1] != length:
            raise ValueError(f"a vision block has {length} placeholder tokens but its grid gives {block.shape[1]}")
        blocks.append(block)
        next_pos = int(block.max()) + 1
    return torch.cat(blocks, dim=1)


def qwen_rope_index(
    config: Any,
    absolute_time: bool,
    input_ids: torch.Tensor,
    mm_token_type_ids: torch.Tensor,
    image_grid_thw: torch.Tensor | None = None,
    video_grid_thw: torch.Tensor | None = None,
    second_per_grid_ts: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """3-D positions with Qwen's original rule; same signature and outputs as transformers' ``get_rope_index``.

    Args:
        config: the model config (``vision_config.spatial_merge_size``, ``tokens_per_second``).
        absolute_time: Qwen2.5-VL temporal spacing ``tokens_per_second * second_per_grid_ts``; Qwen2-VL uses 1.
        input_ids: ``[B, L]``.
        mm_token_type_ids: ``[B, L]``, 0 text, 1 image, 2 video.
        image_grid_thw: ``[num_images, 3]``.
        video_grid_thw: ``[num_videos, 3]``.
        second_per_grid_ts: ``[num_videos]`` seconds per temporal grid step (default 1).
        attention_mask: ``[B, L]``; padded positions get 0 and are skipped.

    Returns:
        ``(position_ids [3, B, L], rope_deltas [B, 1])`` with ``rope_deltas = max position + 1 - length``.
    """
    position_ids = torch.zeros(3, *input_ids.shape, dtype=input_ids.dtype, device=input_ids.device)
    grids = {kind: iter(grid if grid is not None else []) for kind, grid in ((1, image_grid_thw), (2, video_grid_thw))}
    seconds = iter(second_per_grid_ts.tolist() if second_per_grid_ts is not None else itertools.repeat(1.0))
    deltas = []
    for row in range(input_ids.shape[0]):
        keep = attention_mask[row].bool() if attention_mask is not None else torch.ones_like(input_ids[row]).bool()
        types = mm_token_type_ids[row][keep].tolist()
        positions = _sample_positions(types, grids, seconds, config, absolute_time).to(position_ids)
        position_ids[:, row, keep] = positions
        deltas.append(int(positions.max()) + 1 - len(types))
    return position_ids, torch.tensor(deltas, device=input_ids.device).unsqueeze(1)


def install_qwen_rope_index(model: Any, absolute_time: bool) -> None:
    """Make ``model`` (a Qwen-VL ``*ForConditionalGeneration``) compute positions with :func:`qwen_rope_index`.

    Sets an instance attribute that shadows ``model.model.get_rope_index``; every transformers code path calls
    it through ``self``. A model reloaded elsewhere with plain ``from_pretrained`` does not have it.
    """
    inner = model.model
    inner.get_rope_index = functools.partial(qwen_rope_index, inner.config, absolute_time)
