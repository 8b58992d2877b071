"""Checkpoints: an HF-format model plus everything needed to resume exactly, and a run manifest.

Layout of ``<output_dir>/checkpoints/step_000100/``::

    model/              save_pretrained(): full weights, or only the LoRA adapter; tokenizer files
    optimizer.pt        optimizer state (identical on every rank under DDP, written by rank 0)
    master_weights.pt   the fp32 master weights of a bf16/fp16 model (DDP; model/ holds them rounded to its dtype)
    accelerate_state/   instead of optimizer.pt under DeepSpeed/FSDP: accelerator.save_state(), the sharded
                        model and optimizer states of every rank (a DeepSpeed checkpoint or FSDP shards)
    scheduler.pt        LR scheduler state
    rng_rank{r}.pt      Python / NumPy / torch (CPU and CUDA) RNG states of rank r
    trainer_state.json  step, consumed batches, world size
    manifest.json       resolved config, package versions, video sampling, annotation hash, git commit
    config.yaml         the resolved config as YAML

Under ZeRO-3 and FSDP2 the parameters are split across ranks: ``model/`` then holds the full weights gathered
on rank 0 (:meth:`vau_r1.engine.sharding.Sharding.full_state_dict`), and resuming reloads ``accelerate_state/``.

A checkpoint is written into ``step_XXXXXX.tmp`` and renamed when complete, so a crash mid-save never
leaves a directory that looks valid. ``keep_last`` removes the oldest complete checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

MASTER_WEIGHTS = "master_weights.pt"
CHECKPOINT_RE = re.compile(r"^step_(\d{6,})$")
MANIFEST_PACKAGES: tuple[str, ...] = (
    "vau-r1", "torch", "transformers", "trl", "peft", "accelerate", "deepspeed", "decord", "av", "hydra-core",
    "omegaconf",
)  # fmt: skip


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """``<output_dir>/checkpoints/step_{step:06d}``."""
    return Path(output_dir) / "checkpoints" / f"step_{step:06d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``output_dir``, oldest first."""
    root = Path(output_dir) / "checkpoints"
    found = [p for p in root.glob("step_*") if p.is_dir() and CHECKPOINT_RE.match(p.name)]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def resolve_resume(resume: str | None, output_dir: str | Path) -> Path | None:
    """Checkpoint to resume from: ``None``/``"never"`` → none, ``"auto"`` → latest if any, else a path.

    Raises:
        FileNotFoundError: an explicit path that is not a checkpoint directory.
    """
    if resume in (None, "never", ""):
        return None
    if resume == "auto":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"resume={resume!r} is not a checkpoint (no trainer_state.json); use a step_* dir")
    return path


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that change results (``None`` when absent)."""
    versions: dict[str, str | None] = {}
    for name in MANIFEST_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_sha256(path: str | Path) -> str | None:
    """Hex SHA-256 of a file, ``None`` if it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_commit(cwd: str | Path | None = None) -> str | None:
    """Commit of the working tree the code runs from (``+dirty`` when modified), ``None`` outside git."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def build_manifest(config: dict[str, Any], video: dict[str, Any], annotations: str | Path) -> dict[str, Any]:
    """The run manifest saved with every checkpoint.

    Args:
        config: resolved run config (plain containers).
        video: video sampling settings actually used (``VideoConfig.to_dict()``).
        annotations: annotation file the samples came from.
    """
    return {
        "config": config,
        "packages": package_versions(),
        "video": video,
        "annotations": {"path": str(annotations), "sha256": file_sha256(annotations)},
        "git_commit": git_commit(),
    }


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    *,
    accelerator: Any,
    model: nn.Module,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
    manifest: dict[str, Any],
    config_yaml: str,
    keep_last: int | None = None,
    prepared: nn.Module | None = None,
    save_dtype: torch.dtype | None = None,
) -> Path:
    """Write a complete checkpoint for ``step`` on every rank's behalf (call it on all ranks).

    Args:
        output_dir: run directory.
        step: optimisation step just completed.
        accelerator: the run's accelerator (rank, barriers).
        model: the unwrapped model (PEFT models save their adapter only).
        tokenizer: tokenizer/processor saved beside the model, or ``None``.
        optimizer: the optimizer (rank 0 writes it).
        scheduler: the LR scheduler.
        trainer_state: JSON-serialisable loop state (step, consumed batches, ...).
        manifest: :func:`build_manifest` output.
        config_yaml: resolved config as YAML text.
        keep_last: keep only this many newest checkpoints (``None`` keeps all).
        prepared: under DeepSpeed/FSDP, the module given to ``accelerator.prepare`` (holding ``model``): its
            full weights are gathered for ``model/`` and its sharded state saved with ``accelerator.save_state``.
        save_dtype: the model's own dtype when its trainable weights train as fp32 masters
            (:meth:`~vau_r1.engine.sharding.Sharding.keep_fp32_masters`): ``model/`` is written in it, and without
            ``prepared`` the fp32 masters also go to ``master_weights.pt``, so that a resume continues exactly.

    Returns:
        The final checkpoint directory.
    """
    final = checkpoint_dir(output_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(_rng_state(), tmp / f"rng_rank{accelerator.process_index}.pt")
    full_state = None
    if prepared is not None:  # collective: every rank takes part
        from vau_r1.engine.sharding import Sharding

        full_state = Sharding(accelerator).full_state_dict(prepared, model)
        accelerator.save_state(str(tmp / "accelerate_state"))
    if accelerator.is_main_process:
        _save_model(model, tmp / "model", full_state, save_dtype)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp / "model")
        if prepared is None:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if prepared is None and save_dtype is not None:
            masters = {n: p.detach().cpu() for n, p in model.named_parameters() if p.dtype == torch.float32}
            torch.save(masters, tmp / MASTER_WEIGHTS)
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        state = {**trainer_state, "world_size": accelerator.num_processes}
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        (tmp / "config.yaml").write_text(config_yaml)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        _prune(output_dir, keep_last)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def _save_model(
    model: nn.Module, directory: Path, state: dict[str, torch.Tensor] | None, dtype: torch.dtype | None
) -> None:
    """``save_pretrained`` of ``state`` (default: the model's), its fp32 tensors (masters) written in ``dtype``."""
    if dtype is None:
        model.save_pretrained(directory, **({} if state is None else {"state_dict": state}))
        return
    cast: dict[int, torch.Tensor] = {}  # by storage: tied weights stay one tensor
    state = {
        key: cast.setdefault(value.data_ptr(), value.to(dtype)) if value.dtype == torch.float32 else value
        for key, value in (model.state_dict() if state is None else state).items()
    }  # fmt: skip
    model.save_pretrained(directory, state_dict=state)
    model.config.dtype = str(dtype).removeprefix("torch.")  # save_pretrained wrote the fp32 masters' dtype
    model.config.save_pretrained(directory)


def _prune(output_dir: str | Path, keep_last: int | None) -> None:
    """Delete all but the ``keep_last`` newest checkpoints."""
    if keep_last is None:
        return
    for old in list_checkpoints(output_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def load_model_weights(model: nn.Module, model_dir: str | Path) -> None:
    """Load a :func:`save_checkpoint` model folder into ``model`` in place (full weights or LoRA adapter).

    Full weights go through ``from_pretrained`` first, because ``save_pretrained`` writes the checkpoint's
    original key names, which differ from the in-memory module names of Qwen-VL in transformers 5.
    """
    model_dir = Path(model_dir)
    if (model_dir / "adapter_config.json").is_file():
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(model_dir / "adapter_model.safetensors"))
        return
    loaded = type(model).from_pretrained(model_dir, dtype=next(model.parameters()).dtype)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint {model_dir} does not match the model: missing {missing}, unexpected {unexpected}"
        )


def _load_masters(model: nn.Module, file: Path) -> None:
    """Overwrite ``model``'s parameters with the fp32 master weights of ``file``, if the checkpoint has them."""
    if not file.is_file():
        return
    masters, params = torch.load(file, map_location="cpu", weights_only=True), dict(model.named_parameters())
    if unknown := sorted(set(masters) - set(params)):
        raise RuntimeError(f"{file} holds parameters the model lacks: {unknown[:5]}; resume with the same model")
    with torch.no_grad():
        for name, value in masters.items():
            params[name].copy_(value)


def load_checkpoint(
    path: str | Path,
    *,
    accelerator: Any,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    prepared: nn.Module | None = None,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and this rank's RNG from ``path``; return the trainer state.

    With ``prepared`` (DeepSpeed/FSDP, as for :func:`save_checkpoint`) the model and optimizer come from
    ``accelerate_state/`` through ``accelerator.load_state`` (call it on every rank).

    Raises:
        ValueError: the checkpoint was written with a different number of processes (the data shards
            and per-rank RNG streams would not line up).
    """
    path = Path(path)
    state = json.loads((path / "trainer_state.json").read_text())
    if state.get("world_size", 1) != accelerator.num_processes:
        raise ValueError(
            f"{path} was written by {state['world_size']} process(es), this run has {accelerator.num_processes}; "
            "resume with the same process count"
        )
    sharded = (path / "accelerate_state").is_dir()
    if sharded != (prepared is not None):
        raise ValueError(
            f"{path} was written {'with' if sharded else 'without'} DeepSpeed/FSDP (strategy "
            f"{state.get('strategy', 'ddp')}); resume with that trainer.strategy, or start a new run from its model/"
        )
    if prepared is not None:
        accelerator.load_state(str(path / "accelerate_state"))
    else:
        load_model_weights(model, path / "model")
        _load_masters(model, path / MASTER_WEIGHTS)
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    _set_rng_state(torch.load(path / f"rng_rank{accelerator.process_index}.pt", weights_only=False))
    logger.info("resumed from %s (step %d)", path, state["step"])
    return state
