"""Training entry point (Hydra): config → data, model, rewards → :class:`~vau_r1.recipes.grpo.GRPOTrainer`, or
with ``algorithm=sft`` → :class:`~vau_r1.recipes.sft.SFTTrainer`.

Launch (any ``key=value`` override works; ``output_dir=...`` sets where the run writes)::

    vau-r1 train experiment=debug_cpu                                  # CPU, about a minute
    vau-r1 train experiment=debug_cpu_sft                              # CPU SFT, seconds (sets algorithm=sft)
    vau-r1 train experiment=debug_cpu model.name_or_path=<sft run>/checkpoints/step_000008/model model.tiny=null
    vau-r1 train experiment=qa_grpo_qwen2_5_vl_3b data.annotations=train.csv data.video_root=videos
    NGPUS=8 scripts/train.sh experiment=qa_grpo_qwen2_5_vl_3b ...       # torchrun, 8 GPUs
    torchrun --standalone --nproc_per_node 2 -m vau_r1.apps.train experiment=debug_cpu output_dir=outputs/ddp  # gloo

(after the first debug_cpu run, the 2-process one needs ``output_dir=outputs/debug_cpu_ddp`` or ``overwrite=true``).

The run folder is ``output_dir`` (default ``outputs/<run_name>``), the same on every rank. A folder that already
holds a run is continued only with ``resume=auto`` (or a checkpoint path) and replaced only with
``overwrite=true`` (:func:`prepare_run_folder`); otherwise the run stops before it writes anything.
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from vau_r1.recipes.config import ConfigError, RunConfig, run_folder_problem, run_records
from vau_r1.resources import CONFIG_ROOT

logger = logging.getLogger("vau_r1.apps.train")


def prepare_run_folder(cfg: RunConfig, accelerator: Any) -> None:
    """Decide once what to do with an earlier run in ``output_dir``, before any rank writes into it.

    Rank 0 looks at the folder (:func:`~vau_r1.recipes.config.run_folder_problem`) and every rank gets its verdict,
    so all ranks stop with the same error or all go on. With ``overwrite=true`` rank 0 then removes the earlier
    run's records (checkpoints, metrics, completions, tensorboard events); the others wait for it.

    Raises:
        ConfigError: ``output_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set (the fix is named).
    """
    verdict = [run_folder_problem(cfg.output_dir, cfg.resume, cfg.overwrite) if accelerator.is_main_process else None]
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        verdict = broadcast_object_list(verdict, from_process=0)
    if verdict[0] is not None:
        raise ConfigError(verdict[0])
    if cfg.overwrite and accelerator.is_main_process:
        for name in run_records(cfg.output_dir):
            path = Path(cfg.output_dir) / name
            logger.warning("overwrite=true: removing %s of the earlier run", path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    accelerator.wait_for_everyone()


def model_config(cfg: RunConfig) -> Any:
    """The run's :class:`~vau_r1.model.builder.ModelConfig`, every ``model.*`` value checked against its type."""
    from vau_r1.model.builder import ModelConfig
    from vau_r1.sections import build_section

    return build_section(ModelConfig, cfg.model, "model")


def build_dataset(cfg: RunConfig, accelerator: Any, video_processing: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The training dataset and its video config; writes the synthetic mini split first if configured.

    ``video_processing``: the model's patching (:func:`vau_r1.model.families.video_processing_for`); ``None``:
    Qwen2.5-VL's.
    """
    from vau_r1.data.mini_bench import write_mini_bench
    from vau_r1.data.video import VideoConfig
    from vau_r1.tasks.dataset import VideoPromptDataset, load_task_samples, restrict_task_sources, weight_task_pairs

    data = cfg.data
    if data.mini_bench is not None:
        with accelerator.main_process_first():  # rank 0 writes, the others then reuse its files
            if accelerator.is_main_process:
                write_mini_bench(Path(data.annotations).parent, **vars(data.mini_bench))
    video_config = VideoConfig.from_dict(data.video)
    pairs = load_task_samples(data.annotations, data.task_list, data.source, data.max_samples, data.sources)
    if cfg.algorithm == "sft":  # think targets need a reasoning text
        from vau_r1.recipes.sft import sft_targets

        pairs = sft_targets(cfg).filter(pairs)
    pairs = restrict_task_sources(pairs, data.task_sources)
    pairs = weight_task_pairs(pairs, data.task_weights)  # last: weights count the rows trained on
    samples, tasks = [s for s, _ in pairs], [t for _, t in pairs]
    dataset = VideoPromptDataset(samples, data.video_root, tasks, video_config, data.prompt_preset, data.cache_videos,
                                 video_cache_dir=data.video_cache_dir, video_processing=video_processing)  # fmt: skip
    return dataset, video_config


def build_reference(
    model: torch.nn.Module, cfg: RunConfig, load: Callable[[], torch.nn.Module] | None = None
) -> torch.nn.Module | None:
    """A frozen copy of the initial policy for the KL term; ``None`` with ``beta == 0`` or with LoRA.

    With LoRA the reference is the same model with its adapters disabled, so no copy is made. Under DeepSpeed
    ZeRO-3 transformers partitions models as it builds them, so the reference is loaded again with ``load``.
    """
    from vau_r1.engine.sharding import loads_partitioned

    if cfg.grpo.beta == 0 or cfg.model.get("lora") is not None:
        return None
    reference = (load() if load is not None and loads_partitioned() else copy.deepcopy(model)).eval()
    for param in reference.parameters():
        param.requires_grad_(False)
    return reference


def build_trainer(cfg: DictConfig, rewards: list | None = None) -> Any:
    """Validate ``cfg`` and build the data, model, reference, rewards, logger and trainer.

    Args:
        cfg: the composed config (``@hydra.main`` or ``hydra.compose``).
        rewards: weighted rewards to use instead of ``rewards.funcs`` (tests, custom scripts).

    Returns:
        The :class:`~vau_r1.recipes.grpo.GRPOTrainer` (or, with ``algorithm: sft``, the
        :class:`~vau_r1.recipes.sft.SFTTrainer`), ready to ``fit()``.

    Raises:
        vau_r1.recipes.config.ConfigError: an invalid setting (the message names the key and the fix).
    """
    from vau_r1.engine.checkpoint import build_manifest
    from vau_r1.engine.distributed import build_accelerator, seed_everything
    from vau_r1.engine.loggers import build_logger
    from vau_r1.model.builder import load_model_and_processor
    from vau_r1.model.families import video_processing_for
    from vau_r1.recipes.grpo import GRPOTrainer
    from vau_r1.rewards import build_rewards

    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    run_cfg = RunConfig.from_dict(container)
    model_cfg = model_config(run_cfg)
    trainer_cfg = run_cfg.trainer
    accelerator = build_accelerator(trainer_cfg.cpu, trainer_cfg.mixed_precision, trainer_cfg.strategy,
                                    collective_timeout_s=trainer_cfg.collective_timeout_s)  # fmt: skip
    prepare_run_folder(run_cfg, accelerator)  # before anything is written into output_dir
    if run_cfg.trainer.torch_threads is not None:
        torch.set_num_threads(run_cfg.trainer.torch_threads)
    seed_everything(run_cfg.seed)  # same on every rank: identical initial weights (LoRA init included)
    model, tokenizer = load_model_and_processor(model_cfg)
    dataset, video_config = build_dataset(run_cfg, accelerator, video_processing_for(model.config))
    if rewards is None:
        rewards = build_rewards(list(run_cfg.rewards)) if run_cfg.algorithm == "grpo" else []
    metric_logger = build_logger(
        run_cfg.logger, run_cfg.output_dir, run_cfg.run_name, container, accelerator.is_main_process
    )
    records = {
        "metric_logger": metric_logger,
        "manifest": build_manifest(container, video_config.to_dict(), run_cfg.data.annotations),
        "config_yaml": OmegaConf.to_yaml(cfg, resolve=True),
    }
    if run_cfg.algorithm == "sft":
        from vau_r1.recipes.sft import SFTTrainer

        return SFTTrainer(run_cfg, model, tokenizer, dataset, accelerator, **records)
    reference = build_reference(model, run_cfg, load=lambda: load_model_and_processor(model_cfg)[0])
    return GRPOTrainer(run_cfg, model, tokenizer, dataset, rewards, accelerator, ref_model=reference, **records)


def run(cfg: DictConfig, until_step: int | None = None) -> Any:
    """Build the trainer and train (to the end, or to ``until_step``); returns the trainer."""
    trainer = build_trainer(cfg)
    logger.info(
        "training %s (%s): %d prompts, %d steps on %d process(es), output in %s",
        trainer.cfg.run_name, trainer.cfg.algorithm, len(trainer.dataset), trainer.engine.total_steps,
        trainer.accelerator.num_processes, trainer.cfg.output_dir,
    )  # fmt: skip
    try:
        trainer.fit(until_step=until_step)
    finally:
        trainer.engine.metric_logger.close()
    trainer.accelerator.wait_for_everyone()
    return trainer


#: The package's config tree (vau_r1.resources.CONFIG_ROOT); absolute, so Hydra finds it from any folder.
CONFIG_DIR = str(CONFIG_ROOT)


@hydra.main(version_base=None, config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``vau-r1 train`` and ``python -m vau_r1.apps.train``."""
    run(cfg)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
