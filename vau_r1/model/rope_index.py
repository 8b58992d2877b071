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

Qwen3-VL and Qwen3.5 write each temporal patch's time as text and give each patch its own vision block, so
``get_rope_index`` first splits a video's grid ``(t, h, w)`` into ``t`` grids ``(1, h, w)``. A block one patch
deep has its largest position at ``start + max(h, w) / merge - 1``, so transformers 5.23's restart and the
original rule coincide for these families (``frame_grids=True`` below; the tests check the equality).

:func:`qwen_rope_index` computes the original positions; :func:`install_qwen_rope_index` makes a loaded
model use it everywhere (forward, ``generate``, explicit ``model.model.get_rope_index`` calls).

The rule travels with the checkpoint. The override is an instance attribute, which ``save_pretrained`` does not
write, so :func:`set_rope_index` also records the rule in the model's config (``config.json`` key
:data:`ROPE_INDEX_KEY`, ``"qwen"`` or ``"transformers"``); the project's loaders read it back
(:func:`saved_rope_index`) and a model loaded elsewhere with plain ``from_pretrained`` gets it with one call::

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path)
    restore_rope_index(model)  # from vau_r1.model.rope_index

Without it such a model silently uses transformers 5.23's rule: on a 60 s clip the text after the video sits
over 100 positions away from where training put it.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vau_r1.model.families import family_for_model_type

if TYPE_CHECKING:  # torch is imported where it is used: ModelConfig validation must not import it
    import torch

__all__ = [
    "ROPE_INDEX_KEY",
    "ROPE_INDEX_RULES",
    "install_qwen_rope_index",
    "qwen_rope_index",
    "restore_rope_index",
    "saved_rope_index",
    "set_rope_index",
]

logger = logging.getLogger(__name__)

#: The position rules: ``qwen``, Qwen's original (:func:`qwen_rope_index`); ``transformers``, transformers 5.23's.
ROPE_INDEX_RULES: tuple[str, ...] = ("qwen", "transformers")
#: The ``config.json`` key that records the rule a model was built (and trained) with.
ROPE_INDEX_KEY = "vau_r1_rope_index"


def _vision_positions(start: int, grid_thw: torch.Tensor, merge_size: int, interval: float) -> torch.Tensor:
    """``[3, t*h*w/merge**2]`` (temporal, height, width) positions of one image/video block."""
    import torch

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
    import torch

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
    *,
    frame_grids: bool = False,
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
        frame_grids: split each video grid ``(t, h, w)`` into ``t`` grids ``(1, h, w)``, one per timestamped
            vision block (Qwen3-VL, Qwen3.5); ``second_per_grid_ts`` is then ignored.

    Returns:
        ``(position_ids [3, B, L], rope_deltas [B, 1])`` with ``rope_deltas = max position + 1 - length``.
    """
    import torch

    position_ids = torch.zeros(3, *input_ids.shape, dtype=input_ids.dtype, device=input_ids.device)
    if frame_grids and video_grid_thw is not None:
        video_grid_thw = video_grid_thw.repeat_interleave(video_grid_thw[:, 0], dim=0)
        video_grid_thw[:, 0] = 1
        absolute_time = False
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


def install_qwen_rope_index(model: Any, absolute_time: bool, frame_grids: bool = False) -> None:
    """Make ``model`` (a Qwen-VL ``*ForConditionalGeneration``) compute positions with :func:`qwen_rope_index`.

    Sets an instance attribute that shadows ``model.model.get_rope_index``; every transformers code path calls
    it through ``self``. A model reloaded elsewhere with plain ``from_pretrained`` does not have it: use
    :func:`set_rope_index`, which also records the rule for ``save_pretrained``.
    """
    inner = model.model
    inner.get_rope_index = functools.partial(qwen_rope_index, inner.config, absolute_time, frame_grids=frame_grids)


def _base(model: Any) -> Any:
    """The transformers ``*ForConditionalGeneration`` inside a PEFT wrapper (``model`` itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def saved_rope_index(config: Any) -> str | None:
    """The rule a model config records under :data:`ROPE_INDEX_KEY`, or ``None`` when it records none.

    Raises:
        ValueError: a value outside :data:`ROPE_INDEX_RULES` (names the key and the fix).
    """
    rule = getattr(config, ROPE_INDEX_KEY, None)
    if rule is not None and rule not in ROPE_INDEX_RULES:
        raise ValueError(
            f"config.json has {ROPE_INDEX_KEY}={rule!r}; expected one of {list(ROPE_INDEX_RULES)}: set it to 'qwen' "
            "(Qwen's original position rule, what vau_r1 trains with) or remove the key"
        )
    return rule


def set_rope_index(model: Any, rule: str) -> None:
    """Make ``model`` (a Qwen-VL model, PEFT-wrapped or not) use ``rule`` and record it in its config.

    ``"qwen"`` installs :func:`qwen_rope_index` (temporal spacing from the model's family); ``"transformers"``
    removes an installed override. ``model.config`` then holds ``vau_r1_rope_index = rule``, so every
    ``save_pretrained`` writes it to ``config.json``.

    Raises:
        ValueError: an unknown rule, or a model type of no registered family.
    """
    if rule not in ROPE_INDEX_RULES:
        raise ValueError(f"rope_index={rule!r}; expected one of {list(ROPE_INDEX_RULES)}")
    base = _base(model)
    if rule == "qwen":
        family = family_for_model_type(base.config.model_type)
        install_qwen_rope_index(base, absolute_time=family.absolute_time_rope, frame_grids=family.timestamp_text)
    else:
        vars(base.model).pop("get_rope_index", None)
    setattr(base.config, ROPE_INDEX_KEY, rule)


def restore_rope_index(model: Any, default: str = "qwen") -> str:
    """Give a model loaded with plain ``from_pretrained`` the position rule its checkpoint was saved with.

    Reads :data:`ROPE_INDEX_KEY` from ``model.config`` (:func:`saved_rope_index`) and applies it with
    :func:`set_rope_index`; a config without the key (a base model, or a checkpoint saved before vau_r1 wrote
    it) gets ``default`` and a warning. Call it once after loading (before or after wrapping in PEFT).

    Returns:
        The rule now in use.

    Raises:
        ValueError: the config records an unknown rule, or ``default`` is not a rule.
    """
    base = _base(model)
    rule = saved_rope_index(base.config)
    if rule is None:
        logger.warning(
            "%s has no %r in its config.json; using the %r position rule (pass default=... to choose)",
            getattr(base.config, "_name_or_path", None) or type(base).__name__, ROPE_INDEX_KEY, default,
        )  # fmt: skip
        rule = default
    set_rope_index(model, rule)
    return rule
