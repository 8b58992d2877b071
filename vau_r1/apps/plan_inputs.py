"""What ``vau-r1 plan`` reads before it estimates: the model's architecture (config only, never weights), the
visual-token counts of the run's videos or of its settings, and the prompt's text length.

The architecture comes from ``transformers.AutoConfig`` (a checkpoint folder or a cached hub id), from
:func:`vau_r1.model.tiny.tiny_model_config` for ``tiny-random``, or, when neither can be read (offline, not
cached), from :data:`PUBLISHED` (the models' published ``config.json`` numbers). Parameter counts come from
building the model on the ``meta`` device: exact, and no memory is allocated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from vau_r1.apps.plan_terms import Arch

logger = logging.getLogger(__name__)

#: Published architecture numbers (``config.json`` of the Instruct checkpoints on the Hugging Face Hub:
#: Qwen/Qwen2-VL-2B-Instruct, Qwen/Qwen2.5-VL-3B-Instruct, Qwen/Qwen2.5-VL-7B-Instruct), used only when no config
#: can be read. Keys: the model_type, then the text and vision config values the families' config classes take.
PUBLISHED: dict[str, dict[str, Any]] = {
    "qwen2-vl-2b": {"model_type": "qwen2_vl", "tie_word_embeddings": True,
                    "text": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                             "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936},
                    "vision": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "hidden_size": 1536}},
    "qwen2.5-vl-3b": {"model_type": "qwen2_5_vl", "tie_word_embeddings": True,
                      "text": {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
                               "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 151936},
                      "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                                 "out_hidden_size": 2048, "fullatt_block_indexes": [7, 15, 23, 31]}},
    "qwen2.5-vl-7b": {"model_type": "qwen2_5_vl", "tie_word_embeddings": False,
                      "text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                               "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064},
                      "vision": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                                 "out_hidden_size": 3584, "fullatt_block_indexes": [7, 15, 23, 31]}},
}  # fmt: skip


@dataclass(frozen=True)
class ModelInfo:
    """The architecture, where it was read from, the tokenizer, the family and the LoRA adapter size."""

    arch: Arch
    source: str
    tokenizer: Any
    family: str
    lora_params: int
    lora_largest: int  # elements of the largest LoRA adapter matrix (r x the wider side of its projection)
    dtype: str  # the checkpoint's parameter dtype (what model.dtype=auto loads)


def _published_config(name: str) -> tuple[Any, str]:
    """A transformers config built from :data:`PUBLISHED` for a hub id or folder named like a Qwen-VL model."""
    from vau_r1.model.families import family_for_model_type

    key = next((k for k in PUBLISHED if k in name.lower().replace("_", "-")), None)
    if key is None:
        raise ValueError(
            f"model.name_or_path={name!r}: its config cannot be read (offline and not cached?) and it is none of "
            f"the known models {sorted(PUBLISHED)}; download the checkpoint (`hf download {name}`) or give its folder"
        )
    spec = PUBLISHED[key]
    config_class = family_for_model_type(spec["model_type"]).load_class().config_class
    config = config_class(text_config=dict(spec["text"]), vision_config=dict(spec["vision"]),
                          tie_word_embeddings=spec["tie_word_embeddings"])  # fmt: skip
    config.get_text_config().tie_word_embeddings = spec["tie_word_embeddings"]
    return config, f"published numbers of {key} (no config.json found)"


def _read_config(model_cfg: Any) -> tuple[Any, Any, str]:
    """``(transformers config, tokenizer, source)`` of the run's model, without any weights."""
    from vau_r1.model.builder import TINY_NAME

    if model_cfg.name_or_path == TINY_NAME:
        from vau_r1.model.tiny import TinyConfig, tiny_model_config, tiny_tokenizer

        tiny = TinyConfig.from_dict(model_cfg.tiny)
        tokenizer = tiny_tokenizer(tiny)
        return tiny_model_config(tiny, tokenizer), tokenizer, "vau_r1.model.tiny.tiny_model_config"
    from transformers import AutoConfig, AutoTokenizer

    hub = {"revision": model_cfg.revision, "local_files_only": model_cfg.offline()}
    try:
        config, source = AutoConfig.from_pretrained(model_cfg.name_or_path, **hub), f"{model_cfg.name_or_path} config"
    except (OSError, ValueError):
        config, source = _published_config(model_cfg.name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_cfg.name_or_path, **hub)
    except (OSError, ValueError):
        from vau_r1.model.tokenizer import qwen2_5_tokenizer

        tokenizer = qwen2_5_tokenizer()  # the Qwen2 and Qwen2.5 VL models share this tokenizer
    return config, tokenizer, source


def _lora_params(
    model: torch.nn.Module, settings: dict[str, Any], targets: tuple[str, ...], vision: str
) -> tuple[int, int]:
    """Parameters PEFT LoRA adds (``r * (in + out)`` for every targeted ``nn.Linear``) and its largest matrix."""
    names = tuple(settings["target_modules"] or targets)
    count = largest = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or name.rsplit(".", 1)[-1] not in names:
            continue
        if settings["exclude_vision"] and f".{vision.rsplit('.', 1)[-1]}." in f".{name}":
            continue
        count += int(settings["r"]) * (module.in_features + module.out_features)
        largest = max(largest, int(settings["r"]) * max(module.in_features, module.out_features))
    return count, largest


def model_info(model_cfg: Any) -> ModelInfo:
    """The run's architecture and parameter counts, from its config and a ``meta``-device build."""
    from vau_r1.model.families import family_for_model_type

    config, tokenizer, source = _read_config(model_cfg)
    family = family_for_model_type(config.model_type)
    with torch.device("meta"):
        model = family.load_class()._from_config(config)
    text, vision = config.get_text_config(), config.vision_config
    vision_params = sum(p.numel() for p in model.get_submodule(family.vision_module).parameters())
    head = model.get_output_embeddings().weight
    tied = head is model.get_input_embeddings().weight
    lora, lora_largest = _lora_params(model, model_cfg.lora_settings(), family.lora_targets, family.vision_module)
    gated = hasattr(vision, "intermediate_size") and not hasattr(vision, "mlp_ratio")
    width = getattr(vision, "embed_dim", None) or vision.hidden_size
    mlp = vision.intermediate_size if gated else int(width * vision.mlp_ratio)
    arch = Arch(
        hidden=text.hidden_size, intermediate=text.intermediate_size, layers=text.num_hidden_layers,
        heads=text.num_attention_heads, kv_heads=text.num_key_value_heads, vocab=head.shape[0],
        vision_hidden=width, vision_intermediate=mlp, vision_depth=vision.depth, vision_gated=gated,
        params_total=sum(p.numel() for p in model.parameters()), params_vision=vision_params,
        params_lm_head=0 if tied else head.numel(), largest_param=max(p.numel() for p in model.parameters()),
    )  # fmt: skip
    dtype = str(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32")
    if model_cfg.name_or_path == "tiny-random" or source.startswith("published"):
        dtype = "float32" if model_cfg.name_or_path == "tiny-random" else "bfloat16"
    lora, lora_largest = (lora, lora_largest) if model_cfg.lora is not None else (0, 0)
    return ModelInfo(arch, source, tokenizer, family.name, lora, lora_largest, dtype.removeprefix("torch."))
