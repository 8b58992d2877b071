"""Evaluation entry point (Hydra): a model on one VAU-Bench split and task → predictions → metrics → report.

Launch (any ``key=value`` override of ``vau_r1/configs/eval/eval.yaml`` works)::

    vau-r1 eval run model=outputs/qa_grpo_qwen2_5_vl_3b task=qa protocol=paper_think \\
        annotations=$VAU_DATA_ROOT/annotations/test_msad.csv video_root=$VAU_DATA_ROOT/videos source=msad
    NGPUS=8 scripts/evaluate.sh model=... task=tag ...               # torchrun; videos sharded over ranks
    vau-r1 eval run model=tiny-random task=tag annotations=<syn>/test.csv video_root=<syn>/videos \\
        video_preset=tiny_cpu generation.max_new_tokens=16          # CPU, seconds

``protocol`` picks the prompt preset and video sampling: ``paper_think`` / ``paper_no_think`` (the
paper's evaluation prompts and sampling) or ``matched`` / ``matched_no_think`` (this library's prompts
and the checkpoint's training sampling). The run writes into ``output_dir`` (see
:mod:`vau_r1.eval.pipeline`); rerunning the same command resumes where it stopped.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from vau_r1.eval.settings import EvalConfig
from vau_r1.resources import config_dir

logger = logging.getLogger("vau_r1.apps.evaluate")

#: The evaluation's config root ``vau_r1/configs/eval/``; absolute, so Hydra finds it however the module is imported.
#: (Not ``vau_r1/configs/``: its ``model/`` and ``video/`` groups would capture the ``model=`` and ``video=`` keys.)
CONFIG_DIR = str(config_dir("eval"))


def run(cfg: DictConfig, **kwargs: Any) -> Any:
    """Validate a composed config and run the evaluation; returns the report on rank 0, else ``None``.

    Args:
        cfg: the composed config (``@hydra.main``, or ``hydra.compose("eval")`` under :data:`CONFIG_DIR`).
        **kwargs: passed to :func:`vau_r1.eval.pipeline.evaluate` (``model``, ``tokenizer``, ``judge_client``).

    Raises:
        vau_r1.recipes.config.ConfigError: an invalid setting (the message names the key and the fix).
    """
    from vau_r1.eval.pipeline import evaluate  # imported here so that `--help` and config errors stay fast

    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    return evaluate(EvalConfig.from_dict(container), **kwargs)


@hydra.main(version_base=None, config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``vau-r1 eval run`` and ``python -m vau_r1.apps.evaluate``."""
    report = run(cfg)
    if report is not None:
        from vau_r1.eval.report import markdown_table

        logger.info("%s\n%s", f"{report.task} on {report.dataset} ({report.n} rows)", markdown_table([report]))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
