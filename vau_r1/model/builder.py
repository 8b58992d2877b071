"""Build the policy model and its tokenizer from a :class:`ModelConfig`.

Real checkpoints (a local path or a hub id) load through ``from_pretrained`` with the class of their
family, chosen from ``config.model_type`` (``qwen2_vl`` → ``Qwen2VLForConditionalGeneration``,
``qwen2_5_vl`` → ``Qwen2_5_VLForConditionalGeneration``, ``qwen3_vl`` → ``Qwen3VLForConditionalGeneration``,
``qwen3_5`` → ``Qwen3_5ForConditionalGeneration``), never hard-coded. ``name_or_path:
tiny-random`` builds the tiny seeded model of :mod:`vau_r1.model.tiny` in memory. Then, in this order:
the mRoPE position rule is set (``rope_index``, Qwen's original by default, see :mod:`vau_r1.model.rope_index`)
and recorded in the model's config, so that every ``save_pretrained`` writes it to ``config.json``
(``vau_r1_rope_index``); the vision tower is frozen (``freeze_vision``), activation (gradient) checkpointing is
switched on, and LoRA adapters are added to the language model (``lora``).

The second return value is the tokenizer, which is all :func:`vau_r1.model.processing.encode_prompts`
needs (transformers' Qwen-VL processors need torchvision for videos; we do not).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any

from vau_r1.model.families import ATTENTION_MLP_TARGETS, FAMILIES, ModelFamily, family_for_model_type, get_family
from vau_r1.model.rope_index import ROPE_INDEX_KEY, ROPE_INDEX_RULES, saved_rope_index, set_rope_index

logger = logging.getLogger(__name__)

TINY_NAME = "tiny-random"
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16", "auto")
ATTN_IMPLEMENTATIONS: tuple[str, ...] = ("sdpa", "eager", "flash_attention_2")
#: LoRA targets of the Qwen2/2.5/3-VL families: attention and MLP projections of the language model (paper §6.4).
DEFAULT_LORA_TARGETS: tuple[str, ...] = ATTENTION_MLP_TARGETS
#: ``target_modules: null`` means the family's own targets (``ModelFamily.lora_targets``; Qwen3.5 adds its
#: linear-attention projections to :data:`DEFAULT_LORA_TARGETS`).
DEFAULT_LORA: dict[str, Any] = {
    "r": 16,
    "alpha": 16,
    "dropout": 0.05,
    "target_modules": None,
    "exclude_vision": True,
}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


@dataclass
class ModelConfig:
    """Which model to build and how (the ``model`` group of the Hydra config).

    Attributes:
        name_or_path: checkpoint directory, hub id (e.g. ``Qwen/Qwen2.5-VL-3B-Instruct``) or ``"tiny-random"``.
        family: ``"auto"`` (from the checkpoint's ``model_type``) or a registered family name.
        dtype: parameter dtype; ``"auto"`` keeps the checkpoint's (float32 for the tiny model).
        attn_implementation: ``"sdpa"``, ``"eager"`` or ``"flash_attention_2"`` (GPU only).
        gradient_checkpointing: recompute activations in backward (non-reentrant).
        freeze_vision: ``requires_grad=False`` on the whole vision tower.
        lora: ``None`` for full fine-tuning, else a mapping with any of ``r``, ``alpha``, ``dropout``,
            ``target_modules``, ``exclude_vision`` (defaults in :data:`DEFAULT_LORA`).
        tiny: sizes of the tiny model (:class:`vau_r1.model.tiny.TinyConfig` fields), used only with
            ``name_or_path == "tiny-random"``.
        trust_remote_code: allow checkpoint code from the hub.
        revision: hub revision (branch, tag or commit).
        local_files_only: never contact the hub; ``None`` means "true iff HF_HUB_OFFLINE is set".
        rope_index: ``"qwen"`` (default) positions text after a video as Qwen's original code, vLLM and
            transformers <= 5.2 do (:mod:`vau_r1.model.rope_index`); ``"transformers"`` keeps transformers
            5.23's rule, which overlaps text with the video's temporal positions and makes a forward over a
            KV cache (without explicit positions) disagree with a full forward pass. The rule used is written into
            the model's config (``vau_r1_rope_index``); a checkpoint that records another one gets a warning.
    """

    name_or_path: str
    family: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "sdpa"
    gradient_checkpointing: bool = False
    freeze_vision: bool = False
    lora: dict[str, Any] | None = None
    tiny: dict[str, Any] | None = None
    trust_remote_code: bool = False
    revision: str | None = None
    local_files_only: bool | None = None
    rope_index: str = "qwen"

    def __post_init__(self) -> None:
        if self.family != "auto":
            get_family(self.family)
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype={self.dtype!r}; expected one of {list(DTYPES)}")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"model.attn_implementation={self.attn_implementation!r}; expected one of {list(ATTN_IMPLEMENTATIONS)}"
            )
        if self.rope_index not in ROPE_INDEX_RULES:
            raise ValueError(f"model.rope_index={self.rope_index!r}; expected one of {list(ROPE_INDEX_RULES)}")
        if self.lora is not None:
            if unknown := sorted(set(self.lora) - set(DEFAULT_LORA)):
                raise ValueError(f"Unknown model.lora keys {unknown}; expected some of {sorted(DEFAULT_LORA)}")
            if self.freeze_vision and not self.lora_settings()["exclude_vision"]:
                raise ValueError(
                    "model.lora.exclude_vision=false puts adapters in the vision tower but model.freeze_vision=true "
                    "would freeze them; set one of the two the other way"
                )
        if self.tiny is not None and self.name_or_path != TINY_NAME:
            raise ValueError(f"model.tiny is only used with name_or_path={TINY_NAME!r}; remove it or change the name")

    def lora_settings(self) -> dict[str, Any]:
        """``lora`` merged over :data:`DEFAULT_LORA` (only meaningful when ``lora`` is set)."""
        return {**DEFAULT_LORA, **dict(self.lora or {})}

    def offline(self) -> bool:
        """The effective ``local_files_only``."""
        return _env_flag("HF_HUB_OFFLINE") if self.local_files_only is None else self.local_files_only


def _torch_dtype(name: str, *, auto: Any) -> Any:
    import torch

    return auto if name == "auto" else getattr(torch, name)


def _resolve_family(requested: str, model_type: str, name: str) -> ModelFamily:
    family = family_for_model_type(model_type)
    if requested not in ("auto", family.name):
        raise ValueError(
            f"model.family={requested!r} but {name} is a {model_type!r} checkpoint (family {family.name!r}); "
            "set model.family=auto"
        )
    return family


def _load_pretrained(cfg: ModelConfig) -> tuple[Any, Any, ModelFamily]:
    from transformers import AutoConfig, AutoTokenizer

    from vau_r1.model.tokenizer import chat_template_for

    hub = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code, "local_files_only": cfg.offline()}
    try:
        config = AutoConfig.from_pretrained(cfg.name_or_path, **hub)
    except OSError as error:
        raise OSError(
            f"cannot load the config of {cfg.name_or_path!r} (local_files_only={hub['local_files_only']}): give a "
            "checkpoint directory, or download it first (`hf download <id>`) or unset HF_HUB_OFFLINE"
        ) from error
    family = _resolve_family(cfg.family, config.model_type, cfg.name_or_path)
    model = family.load_class().from_pretrained(
        cfg.name_or_path,
        config=config,
        dtype=_torch_dtype(cfg.dtype, auto="auto"),
        attn_implementation=cfg.attn_implementation,
        **hub,
    )
    tokenizer = AutoTokenizer.from_pretrained(cfg.name_or_path, **hub)
    if not tokenizer.chat_template:
        logger.warning("%s ships no chat template; using its family's (%s)", cfg.name_or_path, family.name)
        tokenizer.chat_template = chat_template_for(family.name)
    return model, tokenizer, family


def _build_tiny(cfg: ModelConfig) -> tuple[Any, Any, ModelFamily]:
    import torch

    from vau_r1.model.tiny import TinyConfig, build_tiny_model

    values = dict(cfg.tiny or {})
    if cfg.family != "auto" and values.setdefault("family", cfg.family) != cfg.family:
        raise ValueError(f"model.family={cfg.family!r} but model.tiny.family={values['family']!r}")
    tiny = TinyConfig.from_dict(values)
    dtype = _torch_dtype(cfg.dtype, auto=torch.float32)
    model, tokenizer = build_tiny_model(tiny, dtype=dtype, attn_implementation=cfg.attn_implementation)
    return model, tokenizer, get_family(tiny.family)


def freeze_module(model: Any, path: str) -> int:
    """Set ``requires_grad=False`` on every parameter under ``model.<path>``; returns how many were frozen."""
    params = list(model.get_submodule(path).parameters())
    for param in params:
        param.requires_grad_(False)
    return sum(p.numel() for p in params)


def apply_lora(model: Any, settings: dict[str, Any], family: ModelFamily) -> Any:
    """Wrap ``model`` with PEFT LoRA adapters; with ``exclude_vision`` none go into the vision tower.

    Args:
        model: the base model.
        settings: ``r``, ``alpha``, ``dropout``, ``target_modules`` (``None``: the family's ``lora_targets``),
            ``exclude_vision``.
        family: gives the vision tower's module path and the default targets.

    Returns:
        The ``PeftModel``; only adapter parameters are trainable.
    """
    from peft import LoraConfig, get_peft_model

    exclude = rf"(.*\.)?{re.escape(family.vision_module)}\..*" if settings["exclude_vision"] else None
    lora_config = LoraConfig(
        r=int(settings["r"]),
        lora_alpha=settings["alpha"],
        lora_dropout=float(settings["dropout"]),
        target_modules=list(settings.get("target_modules") or family.lora_targets),
        exclude_modules=exclude,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora_config)


def _apply_rope_index(model: Any, cfg: ModelConfig, warn_unmarked: bool) -> None:
    """Set ``cfg.rope_index`` on ``model`` (and in its config), warning when the checkpoint records another rule."""
    saved = saved_rope_index(model.config)
    where = f"{cfg.name_or_path} ({model.config.model_type}; config.json key {ROPE_INDEX_KEY})"
    if saved is not None and saved != cfg.rope_index:
        logger.warning(
            "%s was saved with the %r position rule but model.rope_index=%r is used; set model.rope_index=%s "
            "(model_load.rope_index=%s for `vau-r1 eval run`) to keep the checkpoint's rule",
            where, saved, cfg.rope_index, saved, saved,
        )  # fmt: skip
    elif saved is None and warn_unmarked and cfg.name_or_path != TINY_NAME:
        logger.warning(
            "%s records no position rule (a base model, or a checkpoint saved before vau_r1 wrote the key): using "
            "the %r rule of model.rope_index (model_load.rope_index for `vau-r1 eval run`); if it was trained with "
            "another rule, set that key to it (one of %s), and write \"%s\": \"<rule>\" into the checkpoint's "
            "config.json to record it",
            where, cfg.rope_index, "/".join(ROPE_INDEX_RULES), ROPE_INDEX_KEY,
        )  # fmt: skip
    set_rope_index(model, cfg.rope_index)


def load_model_and_processor(cfg: ModelConfig, *, warn_unmarked: bool = False) -> tuple[Any, Any]:
    """Build the model and tokenizer that ``cfg`` describes.

    Args:
        cfg: the model config.
        warn_unmarked: warn when a loaded checkpoint records no position rule (evaluation sets it; a training
            run from a base model does not).

    Returns:
        ``(model, tokenizer)``: a ``*ForConditionalGeneration`` (a ``PeftModel`` with LoRA) in eval mode, as
        ``from_pretrained`` returns it (call ``model.train()`` to train), and a Qwen2 tokenizer with the
        Qwen-VL chat template.

    Raises:
        ValueError: unknown family / model type (the message lists the supported ones) or a config conflict.
        OSError: the checkpoint cannot be found (offline and not cached, or a wrong path).
    """
    model, tokenizer, family = _build_tiny(cfg) if cfg.name_or_path == TINY_NAME else _load_pretrained(cfg)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    _apply_rope_index(model, cfg, warn_unmarked)
    if cfg.freeze_vision:
        frozen = freeze_module(model, family.vision_module)
        logger.info("froze the vision tower %s (%d parameters)", family.vision_module, frozen)
    if cfg.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input gradients, so it also works under frozen embeddings/LoRA.
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora is not None:
        model = apply_lora(model, cfg.lora_settings(), family)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("%s (%s): %d of %d parameters trainable", cfg.name_or_path, family.name, trainable, total)
    return model, tokenizer


__all__ = ["FAMILIES", "TINY_NAME", "ModelConfig", "apply_lora", "freeze_module", "load_model_and_processor"]
