"""Registry of the supported vision-language model families.

A family records what differs between Qwen-VL generations: the transformers class, where the vision
tower and the language model live, and which video keyword arguments its ``forward``/``generate``
accept. Qwen2-VL has no ``second_per_grid_ts`` (its temporal positions are frame indices), while
Qwen2.5-VL uses it for absolute-time mRoPE. Adding a family (e.g. Qwen3-VL) means one
:func:`register_family` call plus the family's prompt encoding in :mod:`vau_r1.model.processing`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelFamily:
    """Static facts about one model family.

    Attributes:
        name: registry key, e.g. ``"qwen2_5_vl"``.
        model_types: ``config.model_type`` values that belong to the family.
        model_class: dotted path of the ``*ForConditionalGeneration`` class.
        video_kwargs: video keyword arguments the model's ``forward`` takes, besides ``input_ids``,
            ``attention_mask`` and ``mm_token_type_ids``.
        vision_module: attribute path of the vision tower inside the model.
        language_module: attribute path of the language model inside the model (LoRA targets live here).
        spatial_merge_size: vision patches merged per side into one LLM token.
        absolute_time_rope: video temporal positions are spaced ``tokens_per_second * second_per_grid_ts``
            (Qwen2.5-VL) rather than 1 per temporal grid step (Qwen2-VL).
    """

    name: str
    model_types: tuple[str, ...]
    model_class: str
    video_kwargs: tuple[str, ...]
    vision_module: str = "model.visual"
    language_module: str = "model.language_model"
    spatial_merge_size: int = 2
    absolute_time_rope: bool = False

    def load_class(self) -> Any:
        """Import and return the model class."""
        module_name, _, class_name = self.model_class.rpartition(".")
        return getattr(importlib.import_module(module_name), class_name)


FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Add ``family`` to :data:`FAMILIES`; duplicate names or model types are rejected."""
    if family.name in FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    taken = {t for f in FAMILIES.values() for t in f.model_types}
    if clash := taken.intersection(family.model_types):
        raise ValueError(f"model types {sorted(clash)} already belong to another family")
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> ModelFamily:
    """Look a family up by name; the error lists the supported ones."""
    if name not in FAMILIES:
        raise ValueError(f"Unknown model family {name!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def family_for_model_type(model_type: str) -> ModelFamily:
    """The family whose checkpoints have ``config.model_type == model_type``.

    Raises:
        ValueError: the model type belongs to no registered family; the message lists the supported ones.
    """
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    supported = sorted(t for f in FAMILIES.values() for t in f.model_types)
    raise ValueError(
        f"Unsupported model type {model_type!r}: vau_r1 supports the families {sorted(FAMILIES)} "
        f"(model types {supported}). Use a Qwen2-VL or Qwen2.5-VL checkpoint, or register a new family "
        "with vau_r1.model.families.register_family."
    )


def family_of(model: Any) -> str:
    """Family name of a loaded model (a PEFT wrapper is fine), from ``model.config.model_type``."""
    return family_for_model_type(model.config.model_type).name


register_family(
    ModelFamily(
        name="qwen2_vl",
        model_types=("qwen2_vl",),
        model_class="transformers.Qwen2VLForConditionalGeneration",
        video_kwargs=("pixel_values_videos", "video_grid_thw"),
    )
)
register_family(
    ModelFamily(
        name="qwen2_5_vl",
        model_types=("qwen2_5_vl",),
        model_class="transformers.Qwen2_5_VLForConditionalGeneration",
        video_kwargs=("pixel_values_videos", "video_grid_thw", "second_per_grid_ts"),
        absolute_time_rope=True,
    )
)
