"""What to evaluate: resolve a model reference, load it for inference, and check train/eval parity.

A model reference (``model=...`` of ``vau-r1 eval run``, ``--model`` of ``vau-r1 predict``) is one of:

* a training run folder (``outputs/qa_grpo``): its newest ``checkpoints/step_*``;
* a checkpoint folder (``outputs/qa_grpo/checkpoints/step_000500``), or its ``model/`` sub-folder:
  the weights in ``model/`` (full weights, or a LoRA adapter) plus the run ``manifest.json``
  (layout in :mod:`vau_r1.engine.checkpoint`);
* any Hugging Face model folder or hub id (``Qwen/Qwen2.5-VL-3B-Instruct``), or a LoRA adapter folder
  whose ``adapter_config.json`` names its base model;
* ``tiny-random``, the in-memory test model.

The manifest records the video sampling and prompt preset the checkpoint was trained with;
:func:`parity_differences` lists what an evaluation changes (the official code's train/eval mismatches,
``docs/paper.md`` §10 item 35).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vau_r1.engine.checkpoint import list_checkpoints
from vau_r1.model.builder import TINY_NAME, ModelConfig, load_model_and_processor
from vau_r1.model.rope_index import ROPE_INDEX_RULES

__all__ = [
    "LOAD_KEYS",
    "ModelRef",
    "load_for_eval",
    "parity_differences",
    "resolve_model_ref",
    "trained_prompt_preset",
]

logger = logging.getLogger(__name__)

#: :class:`ModelConfig` fields an evaluation may set (``model_load`` in ``vau_r1/configs/eval.yaml``).
LOAD_KEYS: tuple[str, ...] = (
    "family", "dtype", "attn_implementation", "rope_index", "revision", "local_files_only", "trust_remote_code",
)  # fmt: skip
#: Video settings that change no frame or pixel, left out of the parity check.
_PARITY_IGNORED = frozenset({"decode_timeout_s", "max_retries", "on_error"})


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference.

    Attributes:
        spec: the reference as given.
        name_or_path: what ``from_pretrained`` loads: a model folder, a hub id or ``tiny-random``
            (for an adapter: its base model).
        checkpoint: the training checkpoint folder (``step_*``), when the reference is one.
        adapter: the LoRA adapter folder, when the weights are an adapter.
        manifest: the checkpoint's run manifest, when there is one.
    """

    spec: str
    name_or_path: str
    checkpoint: Path | None = None
    adapter: Path | None = None
    manifest: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """Short display name: ``<run>/step_000500`` for a checkpoint, else the folder name or hub id."""
        if self.checkpoint is not None:
            return f"{self.checkpoint.parent.parent.name}/{self.checkpoint.name}"
        return Path(self.spec).name if Path(self.spec).exists() else self.spec

    @property
    def weights(self) -> str:
        """The weights actually loaded: the adapter or model folder (absolute), else the hub id."""
        if self.adapter is not None:
            return str(self.adapter.resolve())
        path = Path(self.name_or_path)
        return str(path.resolve()) if path.exists() else self.name_or_path

    def base_config(self) -> dict[str, Any]:
        """:class:`ModelConfig` fields of the base model (the manifest's model section when known)."""
        if self.manifest is not None and self.adapter is not None:
            trained = dict(self.manifest.get("config", {}).get("model") or {})
            trained.update(lora=None, gradient_checkpointing=False, freeze_vision=False)
            return trained
        return {"name_or_path": self.name_or_path}


def _checkpoint_of(path: Path) -> tuple[Path | None, Path]:
    """``(checkpoint folder or None, folder holding the weights)`` for a local path."""
    if (path / "checkpoints").is_dir():
        found = list_checkpoints(path)
        if not found:
            raise FileNotFoundError(f"{path} is a run folder without any complete checkpoints/step_* folder")
        path = found[-1]
        logger.info("evaluating the newest checkpoint of the run: %s", path)
    if (path / "manifest.json").is_file() and (path / "model").is_dir():
        return path, path / "model"
    if (path.parent / "manifest.json").is_file():
        return path.parent, path
    return None, path


def _adapter_base(adapter: Path, manifest: Mapping[str, Any] | None) -> str:
    if manifest is not None:
        return str(manifest.get("config", {}).get("model", {}).get("name_or_path", ""))
    base = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    if not base:
        raise ValueError(
            f"{adapter}/adapter_config.json names no base_model_name_or_path and there is no manifest.json beside "
            "it; write the base model's path or hub id into base_model_name_or_path"
        )
    return base


def resolve_model_ref(spec: str) -> ModelRef:
    """Resolve a model reference (see the module docstring).

    Raises:
        FileNotFoundError: a local folder holding neither a model, an adapter nor checkpoints.
        ValueError: an adapter whose base model is unknown.
    """
    path = Path(spec).expanduser()
    if spec == TINY_NAME or not path.exists():
        if spec.startswith(("/", "./", "../", "~")) or spec.count("/") > 1:
            raise FileNotFoundError(f"model {spec!r}: no such folder (hub ids look like Qwen/Qwen2.5-VL-3B-Instruct)")
        return ModelRef(spec, spec)  # a hub id (or the tiny model); from_pretrained reports a bad one
    checkpoint, model_dir = _checkpoint_of(path)
    manifest = json.loads((checkpoint / "manifest.json").read_text()) if checkpoint is not None else None
    if (model_dir / "adapter_config.json").is_file():
        return ModelRef(spec, _adapter_base(model_dir, manifest), checkpoint, model_dir, manifest)
    if (model_dir / "config.json").is_file():
        return ModelRef(spec, str(model_dir), checkpoint, None, manifest)
    raise FileNotFoundError(
        f"{path} holds no model: expected config.json (full weights), adapter_config.json (LoRA), a step_* "
        "checkpoint folder with model/ and manifest.json, or a run folder with checkpoints/"
    )


def load_for_eval(ref: ModelRef, load: Mapping[str, Any] | None = None, merge_lora: bool = True) -> tuple[Any, Any]:
    """Load the model and tokenizer of ``ref`` for inference (eval mode, no gradients needed).

    The position rule is ``load["rope_index"]`` (``model_load.rope_index``; else an adapter's manifest, else
    ``"qwen"``); a warning names it when the checkpoint records none (``vau_r1_rope_index`` in ``config.json``; the
    manifest for an adapter) or records another one.

    Args:
        ref: the resolved reference.
        load: :data:`LOAD_KEYS` settings (dtype, attention kernel, ...), applied over the base config.
        merge_lora: fold a LoRA adapter into the weights (faster generation).

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ValueError: a key of ``load`` outside :data:`LOAD_KEYS`.
    """
    load = dict(load or {})
    if unknown := sorted(set(load) - set(LOAD_KEYS)):
        raise ValueError(f"unknown model_load key(s) {unknown}; expected some of {list(LOAD_KEYS)}")
    values = {**ref.base_config(), **{key: value for key, value in load.items() if value is not None}}
    # Full weights record their position rule in config.json (the builder checks it); an adapter's base model
    # does not, so the rule it was trained with comes from the run manifest.
    model_config = ModelConfig(**values)
    model, tokenizer = load_model_and_processor(model_config, warn_unmarked=ref.adapter is None)
    if ref.adapter is not None:
        _check_adapter_rope_index(ref, model_config.rope_index)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(ref.adapter))
        if merge_lora:
            model = model.merge_and_unload()
        logger.info("loaded the LoRA adapter %s on %s (merged: %s)", ref.adapter, ref.name_or_path, merge_lora)
    model.eval()
    return model, tokenizer


def _check_adapter_rope_index(ref: ModelRef, used: str) -> None:
    """Warn when a LoRA adapter's recorded training rule (manifest ``config.model.rope_index``) is not ``used``."""
    trained = ((ref.manifest or {}).get("config", {}).get("model") or {}).get("rope_index")
    if trained == used:
        return
    known = f"was trained with the {trained!r} position rule" if trained else "records no position rule"
    logger.warning(
        "LoRA adapter %s %s (manifest.json config.model.rope_index); using %r: set model_load.rope_index to the "
        "training rule (one of %s) if they differ",
        ref.adapter, known, used, "/".join(ROPE_INDEX_RULES),
    )  # fmt: skip


def trained_prompt_preset(manifest: Mapping[str, Any] | None) -> str | None:
    """The prompt preset the checkpoint was trained with (``data.prompt_preset``), if recorded."""
    if manifest is None:
        return None
    return (manifest.get("config", {}).get("data") or {}).get("prompt_preset")


def parity_differences(
    manifest: Mapping[str, Any] | None, video: Mapping[str, Any], prompt_preset: str
) -> list[str] | None:
    """What the evaluation's video sampling and prompt preset change from the checkpoint's training.

    Args:
        manifest: the checkpoint's run manifest (``None`` for a model without one).
        video: the evaluation's ``VideoConfig.to_dict()``.
        prompt_preset: the evaluation's prompt preset.

    Returns:
        One line per difference (``"video.fps: trained 2.0, eval 1.0"``); ``[]`` when they match;
        ``None`` when there is no manifest to compare with.

    >>> parity_differences({"video": {"fps": 2.0}, "config": {"data": {"prompt_preset": "default"}}},
    ...                    {"fps": 1.0}, "default")
    ['video.fps: trained 2.0, eval 1.0']
    """
    if manifest is None:
        return None
    lines = []
    trained_video = manifest.get("video") or {}
    for key in sorted(set(trained_video) | set(video)):
        if key in _PARITY_IGNORED or trained_video.get(key) == video.get(key):
            continue
        lines.append(f"video.{key}: trained {trained_video.get(key)!r}, eval {video.get(key)!r}")
    trained = trained_prompt_preset(manifest)
    if trained is not None and trained != prompt_preset:
        lines.append(f"prompt_preset: trained {trained!r}, eval {prompt_preset!r}")
    return lines
