"""Registry of the supported vision-language model families.

A family records what differs between Qwen-VL generations: the transformers class, where the vision
tower and the language model live, and which video keyword arguments its ``forward``/``generate``
accept, and how each encodes time (:data:`TIME_ENCODINGS`): Qwen2-VL's temporal positions are frame
indices, Qwen2.5-VL scales them by ``second_per_grid_ts`` (absolute-time mRoPE), and Qwen3-VL / Qwen3.5 split a
video into one grid per temporal patch and write each patch's time as text (``<1.2 seconds>``) before its
vision tokens. Adding a family means one :func:`register_family` call (plus, for a new time encoding, its
prompt encoding in :mod:`vau_r1.model.processing` and positions in :mod:`vau_r1.model.rope_index`).
:func:`video_processing_for` gives a loaded model's video patching (the family's normalisation, the vision
tower's patch sizes), which every data path passes to :func:`vau_r1.data.vision.video_inputs`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

#: How a family encodes a video's time: ``frame_index`` (Qwen2-VL: temporal position = temporal patch index),
#: ``absolute_rope`` (Qwen2.5-VL: patch index × ``tokens_per_second * second_per_grid_ts``), ``timestamp_text``
#: (Qwen3-VL, Qwen3.5: ``<t seconds>`` text before each temporal patch's own vision block).
TIME_ENCODINGS: tuple[str, ...] = ("frame_index", "absolute_rope", "timestamp_text")
#: Per-channel normalisation of the Qwen2/2.5-VL video processors (OpenAI CLIP) and of Qwen3-VL's (0.5, 0.5, 0.5).
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
HALF: tuple[float, float, float] = (0.5, 0.5, 0.5)
#: LoRA targets of the language model: attention and MLP projections (paper §6.4).
ATTENTION_MLP_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


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
        time_encoding: one of :data:`TIME_ENCODINGS`.
        patch_size: spatial patch of the real checkpoints' vision tower, in pixels (video frames must be
            multiples of ``patch_size * spatial_merge_size``: ``video.image_factor``).
        temporal_patch_size: frames per temporal patch.
        image_mean: per-channel mean (0..1 scale) of the family's video processor.
        image_std: per-channel std of the family's video processor.
        lora_targets: default LoRA target module names (``model.lora.target_modules``), all in the language model.
        deepstack: the vision tower also returns features injected into the first LLM layers (Qwen3-VL);
            they are part of ``get_video_features``' output and must be shared with the video's tokens.
    """

    name: str
    model_types: tuple[str, ...]
    model_class: str
    video_kwargs: tuple[str, ...]
    vision_module: str = "model.visual"
    language_module: str = "model.language_model"
    spatial_merge_size: int = 2
    time_encoding: str = "frame_index"
    patch_size: int = 14
    temporal_patch_size: int = 2
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD
    lora_targets: tuple[str, ...] = ATTENTION_MLP_TARGETS
    deepstack: bool = False

    def __post_init__(self) -> None:
        if self.time_encoding not in TIME_ENCODINGS:
            raise ValueError(
                f"family {self.name!r}: time_encoding={self.time_encoding!r}; expected one of {list(TIME_ENCODINGS)}"
            )

    @property
    def absolute_time_rope(self) -> bool:
        """Temporal positions spaced ``tokens_per_second * second_per_grid_ts`` (Qwen2.5-VL)."""
        return self.time_encoding == "absolute_rope"

    @property
    def timestamp_text(self) -> bool:
        """Each temporal patch is its own vision block preceded by its time as text (Qwen3-VL, Qwen3.5)."""
        return self.time_encoding == "timestamp_text"

    def video_processing_kwargs(self, vision_config: Any | None = None) -> dict[str, Any]:
        """Keyword arguments of :func:`vau_r1.data.vision.video_inputs` that reproduce this family's processor.

        Args:
            vision_config: a loaded model's vision config; its ``patch_size``, ``temporal_patch_size`` and
                ``spatial_merge_size`` win over the family's (the real checkpoints'), so a vision tower built
                with other patches (the tiny models' 14 pixels) gets the patches it was built for. The
                normalisation is always the family's.
        """
        return {
            "patch_size": getattr(vision_config, "patch_size", self.patch_size),
            "temporal_patch_size": getattr(vision_config, "temporal_patch_size", self.temporal_patch_size),
            "merge_size": getattr(vision_config, "spatial_merge_size", self.spatial_merge_size),
            "image_mean": self.image_mean,
            "image_std": self.image_std,
        }

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
        f"(model types {supported}). Use a Qwen2-VL, Qwen2.5-VL, Qwen3-VL or Qwen3.5 checkpoint, or register a new "
        "family with vau_r1.model.families.register_family."
    )


def family_of(model: Any) -> str:
    """Family name of a loaded model (a PEFT wrapper is fine), from ``model.config.model_type``."""
    return family_for_model_type(model.config.model_type).name


def video_processing_for(config: Any) -> dict[str, Any]:
    """:func:`~vau_r1.data.vision.video_inputs` keyword arguments for a model with this ``config`` (``model.config``).

    The family (from ``config.model_type``) gives the normalisation, the config's vision tower the patching
    (:meth:`ModelFamily.video_processing_kwargs`): what every data path must use to feed the model.
    """
    family = family_for_model_type(config.model_type)
    return family.video_processing_kwargs(getattr(config, "vision_config", None))


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
        time_encoding="absolute_rope",
    )
)


def register_qwen3_family(name: str, model_class: str, **facts: Any) -> ModelFamily:
    """Register a family with Qwen3-VL's video path (``Qwen3VLProcessor``, shared by Qwen3.5).

    That is 16-pixel patches, (0.5, 0.5, 0.5) normalisation, timestamps as text and interleaved mRoPE; ``facts``
    are the family's other :class:`ModelFamily` fields.
    """
    return register_family(
        ModelFamily(
            name=name,
            model_types=(name,),
            model_class=model_class,
            video_kwargs=("pixel_values_videos", "video_grid_thw"),
            time_encoding="timestamp_text",
            patch_size=16,
            image_mean=HALF,
            image_std=HALF,
            **facts,
        )
    )


# Qwen3-VL: deepstack features of early vision blocks are added into the first LLM layers.
register_qwen3_family("qwen3_vl", "transformers.Qwen3VLForConditionalGeneration", deepstack=True)
# Qwen3.5: without deepstack, on a hybrid language model of Gated DeltaNet (linear attention) and full-attention
# layers; LoRA also targets the linear-attention projections.
register_qwen3_family("qwen3_5", "transformers.Qwen3_5ForConditionalGeneration",
                      lora_targets=(*ATTENTION_MLP_TARGETS, "in_proj_qkv", "in_proj_z", "out_proj"))  # fmt: skip
