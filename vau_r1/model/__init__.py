"""Model loading (:mod:`.builder`), model families (:mod:`.families`), the tiny test model (:mod:`.tiny`),
offline tokenizers (:mod:`.tokenizer`), video prompt encoding (:mod:`.processing`) and KV-cache expansion
(:mod:`.cache`).

Names are imported lazily, so ``from vau_r1.model import ModelConfig`` does not import torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelConfig": "vau_r1.model.builder",
    "load_model_and_processor": "vau_r1.model.builder",
    "TINY_NAME": "vau_r1.model.builder",
    "ModelFamily": "vau_r1.model.families",
    "FAMILIES": "vau_r1.model.families",
    "get_family": "vau_r1.model.families",
    "family_of": "vau_r1.model.families",
    "register_family": "vau_r1.model.families",
    "PromptBatch": "vau_r1.model.processing",
    "VideoInputs": "vau_r1.model.processing",
    "encode_prompts": "vau_r1.model.processing",
    "mm_token_type_ids": "vau_r1.model.processing",
    "TinyConfig": "vau_r1.model.tiny",
    "patch_timestamps_s": "vau_r1.model.timestamps",
    "repeat_cache": "vau_r1.model.cache",
    "select_cache_rows": "vau_r1.model.cache",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vau_r1.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
