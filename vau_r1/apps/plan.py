"""``vau-r1 plan``: visual tokens, sequence lengths and peak memory per device of a GRPO run, before any GPU is
touched and without loading weights (the model's config only; :mod:`vau_r1.apps.plan_inputs`).

It takes the overrides of ``vau-r1 train`` (``vau_r1/configs/plan.yaml`` includes ``train.yaml``) plus
``gpu_memory_gb``, ``trainer.num_processes``, ``json``, ``device``::

    vau-r1 plan experiment=debug_cpu gpu_memory_gb=80
    vau-r1 plan experiment=qa_grpo_qwen2_5_vl_3b trainer.strategy=zero3 trainer.num_processes=8 json=true

The report lists every memory term (:mod:`vau_r1.apps.plan_memory`), the peak phase, and settings that fit
``gpu_memory_gb`` (:mod:`vau_r1.apps.plan_fit`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from vau_r1.apps.plan_memory import PHASES, Arch, Estimate, Precision, Shapes, Trainable, estimate
from vau_r1.resources import CONFIG_ROOT
from vau_r1.sections import ConfigError, check

#: Keys of plan.yaml that are not training keys.
PLAN_KEYS: tuple[str, ...] = ("gpu_memory_gb", "json", "device", "max_duration_s", "max_videos")
DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
_LOW_DTYPES = ("bfloat16", "float16")


@dataclass(frozen=True)
class PlanConfig:
    """The validated plan: the training run (:class:`~vau_r1.recipes.config.RunConfig`) and the plan's keys."""

    run: Any
    gpu_memory_gb: float
    num_processes: int | None
    json: bool = False
    device: str = "auto"
    max_duration_s: float = 600.0
    max_videos: int = 200

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> PlanConfig:
        """Validate a resolved plan config; a missing ``run_name`` or data path is filled in (nothing is written)."""
        from vau_r1.recipes.config import RunConfig

        cfg = dict(cfg)
        if cfg.get("run_name") in (None, MISSING):
            cfg["run_name"] = "plan"
        cfg["data"] = {k: "<unset>" if v == MISSING else v for k, v in dict(cfg.get("data") or {}).items()}
        plan = {key: cfg.pop(key) for key in PLAN_KEYS if key in cfg}
        trainer = dict(cfg.get("trainer") or {})
        processes = trainer.pop("num_processes", None)
        cfg["trainer"] = trainer
        gb = plan.get("gpu_memory_gb", 80)
        check(isinstance(gb, (int, float)) and not isinstance(gb, bool) and gb > 0,
              f"gpu_memory_gb={gb!r} must be a number of GB > 0, e.g. gpu_memory_gb=80")  # fmt: skip
        check(processes is None or (isinstance(processes, int) and processes >= 1),
              f"trainer.num_processes={processes!r} must be null (the strategy's) or an integer >= 1")  # fmt: skip
        check(plan.get("device", "auto") in DEVICES, f"device={plan.get('device')!r}; expected one of {list(DEVICES)}")
        run = RunConfig.from_dict(cfg)
        check(run.algorithm == "grpo", "vau-r1 plan estimates GRPO runs; algorithm=sft is not supported yet")
        return cls(run, float(gb), processes, bool(plan.get("json", False)), plan.get("device", "auto"),
                   float(plan.get("max_duration_s", 600.0)), int(plan.get("max_videos", 200)))  # fmt: skip


def _container(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config with placeholders for what a plan does not need (run name, data paths)."""
    cfg = cfg.copy()
    OmegaConf.set_struct(cfg, False)
    for key in ("run_name", "data.annotations", "data.video_root"):
        if OmegaConf.is_missing(cfg, key):
            OmegaConf.update(cfg, key, "<unset>" if key != "run_name" else "plan")
    return OmegaConf.to_container(cfg, resolve=True)


def strategy_settings(strategy: str, mixed_precision: str | None) -> tuple[str, int, str]:
    """``(strategy kind, its num_processes, mixed precision)``: auto is ddp on one process without autocast."""
    if strategy == "auto":
        return "ddp", 1, mixed_precision or "no"
    from vau_r1.resources import config_dir

    path = config_dir("accelerate") / f"{strategy}.yaml" if not strategy.endswith((".yaml", ".yml")) else strategy
    check(Path(path).is_file(), f"trainer.strategy={strategy!r}: no {path}; use auto, ddp, zero2, zero3, "
          "zero3_offload, fsdp2 or an accelerate config path")  # fmt: skip
    file = OmegaConf.load(path)
    kind = str(file.get("distributed_type", "MULTI_GPU"))
    if kind == "DEEPSPEED":
        ds = file.deepspeed_config
        name = "zero3_offload" if ds.get("offload_optimizer_device", "none") != "none" else f"zero{ds.zero_stage}"
    else:
        name = "fsdp2" if kind == "FSDP" else "ddp"
    return name, int(file.get("num_processes", 1)), mixed_precision or str(file.get("mixed_precision", "no"))


def precision(plan: PlanConfig, model_dtype: str) -> Precision:
    """Bytes of weights and compute, strategy and process count of the planned run."""
    run, model = plan.run, plan.run.model
    kind, file_processes, mixed = strategy_settings(run.trainer.strategy, run.trainer.mixed_precision)
    on_gpu = plan.device == "cuda" or (plan.device == "auto" and model["name_or_path"] != "tiny-random"
                                       and not run.trainer.cpu)  # fmt: skip
    mixed = mixed if on_gpu else (run.trainer.mixed_precision or "no")
    low = model_dtype in _LOW_DTYPES or (kind.startswith("zero") and mixed in ("bf16", "fp16"))
    return Precision(
        weight_bytes=2 if low else 4, compute_bytes=2 if low or mixed in ("bf16", "fp16") else 4,
        strategy=kind, processes=plan.num_processes or file_processes,
        gradient_checkpointing=bool(model.get("gradient_checkpointing")),
        attention=str(model.get("attn_implementation", "sdpa")), on_gpu=on_gpu,
    )  # fmt: skip


def trainable(plan: PlanConfig, arch: Arch, lora_params: int, lora_largest: int = 0) -> Trainable:
    """Trainable parameters and which activations are kept (LoRA, frozen vision tower, reference copy)."""
    model, grpo = plan.run.model, plan.run.grpo
    if model.get("lora") is not None:
        from vau_r1.model.builder import ModelConfig

        settings = ModelConfig(**model).lora_settings()
        return Trainable(lora_params, lora_params, vision=not settings["exclude_vision"],
                         lora_dropout=float(settings["dropout"]) > 0, reference=False, head=False,
                         largest=lora_largest)  # fmt: skip
    frozen_vision = bool(model.get("freeze_vision"))
    params = arch.params_total - (arch.params_vision if frozen_vision else 0)
    return Trainable(params, vision=not frozen_vision, reference=grpo.beta > 0, largest=arch.largest_param)


def _model_dtype(model: dict[str, Any], source_dtype: str) -> str:
    dtype = str(model.get("dtype", "auto"))
    return source_dtype if dtype == "auto" else dtype


def build_plan(plan: PlanConfig) -> dict[str, Any]:
    """Everything the report shows, as JSON values: inputs, shapes, terms, peak and suggestions."""
    from vau_r1.apps.plan_fit import suggestions
    from vau_r1.apps.plan_inputs import model_info
    from vau_r1.apps.plan_tokens import prompt_text_tokens, video_tokens
    from vau_r1.data.annotations import load_annotations, load_sample_annotations
    from vau_r1.data.video import VideoConfig
    from vau_r1.model.builder import ModelConfig

    run = plan.run
    info = model_info(ModelConfig(**run.model))
    video_cfg = VideoConfig.from_dict(run.data.video)
    visual = video_tokens(video_cfg, run.data, plan.max_duration_s, plan.max_videos)
    annotations = Path(run.data.annotations)
    table = load_annotations(annotations) if annotations.is_file() else load_sample_annotations()
    text = prompt_text_tokens(info.tokenizer, info.family, run.data.task_list, run.data.prompt_preset,
                              table.samples[: plan.max_videos])  # fmt: skip
    prec = precision(plan, _model_dtype(run.model, info.dtype))
    train = trainable(plan, info.arch, info.lora_params, info.lora_largest)
    shapes = plan_shapes(plan, text, visual.planned)
    est = estimate(info.arch, shapes, prec, train)
    phase, peak = est.peak()
    return {
        "model": {"name_or_path": run.model["name_or_path"], "source": info.source, "family": info.family,
                  "parameters": info.arch.params_total, "trainable": train.params},
        "strategy": {"strategy": prec.strategy, "processes": prec.processes, "weight_bytes": prec.weight_bytes,
                     "compute_bytes": prec.compute_bytes, "gradient_checkpointing": prec.gradient_checkpointing,
                     "attention": prec.attention, "device": "cuda" if prec.on_gpu else "cpu"},
        "visual_tokens": visual.summary(),
        "lengths": {"prompt_text_tokens": text, "prompt_tokens": shapes.prompt_tokens,
                    "completion_tokens": shapes.completion_tokens, "rows": shapes.rows,
                    "row_tokens": shapes.row_tokens, "share_prompt": shapes.share_prompt},
        "terms": [{"name": t.name, "bytes": int(t.bytes), "phases": list(t.phases), "note": t.note}
                  for t in est.terms],
        "phases": {p: int(est.phase_bytes(p)) for p in PHASES},
        "peak": {"phase": phase, "bytes": int(peak), "gb": round(peak / 1e9, 3), "gpu_memory_gb": plan.gpu_memory_gb,
                 "fits": peak <= plan.gpu_memory_gb * 1e9},
        "suggestions": suggestions(info.arch, shapes, prec, train, plan, video_cfg, visual),
    }  # fmt: skip


def plan_shapes(plan: PlanConfig, text_tokens: int, visual_tokens: int) -> Shapes:
    """Per-device shapes of one micro-batch from the run's grpo and trainer sections."""
    run, grpo = plan.run, plan.run.grpo
    return Shapes(
        prompts=run.trainer.per_device_batch_size, generations=grpo.num_generations,
        prompt_tokens=text_tokens + visual_tokens, visual_tokens=visual_tokens,
        completion_tokens=grpo.max_completion_tokens, share_prompt=grpo.share_prompt,
        reuse_vision=grpo.reuse_vision_features, logprob_chunk_tokens=grpo.logprob_chunk_tokens,
        reference_pass=grpo.beta > 0 or grpo.num_iterations > 1,
        micro_batches=run.trainer.gradient_accumulation_steps, temperature=grpo.temperature,
    )  # fmt: skip


def plan_for(overrides: list[str]) -> dict[str, Any]:
    """Compose ``plan.yaml`` with ``overrides``, validate it and build the plan (:func:`build_plan`)."""
    return build_plan(compose_plan(overrides))


def compose_plan(overrides: list[str]) -> PlanConfig:
    """The validated :class:`PlanConfig` of ``plan.yaml`` with ``overrides``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("plan", overrides=list(overrides))
    return PlanConfig.from_dict(_container(cfg))


def main(argv: list[str] | None = None) -> int:
    """Compose ``plan.yaml`` with the overrides in ``argv`` (default ``sys.argv[1:]``), print the plan."""
    from vau_r1.apps.plan_report import render

    plan = compose_plan(list(sys.argv[1:] if argv is None else argv))
    result = build_plan(plan)
    print(json.dumps(result, indent=2) if plan.json else render(result))
    return 0


__all__ = ["PLAN_KEYS", "ConfigError", "Estimate", "PlanConfig", "build_plan", "compose_plan", "main", "plan_for",
           "plan_shapes"]  # fmt: skip

if __name__ == "__main__":
    sys.exit(main())
