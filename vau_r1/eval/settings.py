"""The validated configuration of ``vau-r1 eval run`` (``vau_r1/configs/eval/eval.yaml``: every key documented).

:meth:`EvalConfig.from_dict` checks the composed config once, at startup, and names the key and the fix
in every error. :func:`resolve_video_config` turns ``video_preset`` (plus ``video`` overrides) into the
:class:`~vau_r1.data.video.VideoConfig` the run decodes with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.data.schema import SOURCES, TASKS
from vau_r1.data.video import VideoConfig
from vau_r1.eval.generation import GenerationSettings
from vau_r1.eval.probes import PROBES
from vau_r1.sections import ConfigError, build_section, check
from vau_r1.tasks import get_preset

__all__ = ["PAPER_EVAL_VIDEO", "EvalConfig", "resolve_video_config"]

logger = logging.getLogger(__name__)

#: ``video_preset: paper_eval`` → the paper's eval sampling of each task (``docs/paper.md`` §3.2).
PAPER_EVAL_VIDEO: dict[str, str] = {"qa": "paper_eval_qa", "reasoning": "paper_eval_qa", "tag": "paper_eval_tag",
                                    "cls": "paper_eval_tag"}  # fmt: skip
#: ``video_preset: checkpoint`` without a manifest (a base model) falls back to the training preset.
TRAIN_VIDEO_PRESET = "paper_train"


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run: what to evaluate, on which rows, how, and where to write."""

    model: str
    annotations: str
    video_root: str
    task: str
    output_dir: str
    source: str | None = None
    dataset: str | None = None
    max_samples: int | None = None
    model_load: dict[str, Any] = field(default_factory=dict)
    merge_lora: bool = True
    video_preset: str = "paper_eval"
    video: dict[str, Any] | None = None
    prompt_preset: str = "paper_eval_think"
    system_prompt: str | None = None
    allow_mismatch: bool = False
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    batch_size: int = 1
    num_workers: int = 1
    video_cache_dir: str | None = None
    parser: str = "strict"
    only_predicted: bool = False
    overwrite: bool = False
    progress: bool = True
    torch_threads: int | None = None
    judge: str | None = None
    judge_overrides: dict[str, Any] | None = None
    probe: str | list[str] | None = None
    probe_seed: int = 0
    tag_normal_videos: bool = True
    baseline_annotations: str | None = None
    bootstrap_resamples: int = 2000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        self._check_paths()
        check(self.task in TASKS, f"task={self.task!r}; expected one of {list(TASKS)}")
        check(self.source is None or self.source in SOURCES, f"source={self.source!r}; use null or {list(SOURCES)}")
        check(self.max_samples is None or self.max_samples >= 1, "max_samples must be null (all rows) or >= 1")
        check(self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1 (videos per generate call)")
        check(self.num_workers >= 0, f"num_workers={self.num_workers} must be >= 0")
        cache_dir = self.video_cache_dir
        check(cache_dir is None or (cache_dir.strip() != "" and not Path(cache_dir).is_file()),
              f"video_cache_dir={cache_dir!r}: set a folder for the decode cache, or null for none")  # fmt: skip
        check(self.parser in ("strict", "lenient"), f"parser={self.parser!r}; expected 'strict' or 'lenient'")
        check(self.torch_threads is None or self.torch_threads >= 1, "torch_threads must be null or >= 1")
        self._check_probe()
        check(self.bootstrap_resamples >= 0, f"bootstrap_resamples={self.bootstrap_resamples} must be >= 0 (0: none)")
        check(self.baseline_annotations is None or Path(self.baseline_annotations).is_file(),
               f"baseline_annotations={self.baseline_annotations!r} is not a file; use null (the evaluated split) "
               "or a VAU-Bench annotation CSV (e.g. the training split)")  # fmt: skip
        try:
            get_preset(self.task, self.prompt_preset)
        except ValueError as error:
            raise ConfigError(f"prompt_preset: {error}") from error
        if self.task == "reasoning":
            check(get_preset(self.task, self.prompt_preset).second_turn is not None,
                   f"prompt_preset={self.prompt_preset!r} has one turn; reasoning needs a two-turn preset "
                   "(default, default_no_think, paper_eval_think, paper_eval_no_think)")  # fmt: skip

    def _check_paths(self) -> None:
        """Paths are set; the output folder and the video folder are not files."""
        for key in ("model", "annotations", "video_root", "output_dir"):
            check(getattr(self, key).strip() != "", f"{key} is empty; set it (see vau_r1/configs/eval/eval.yaml)")
        check(not Path(self.output_dir).is_file(),
               f"output_dir={self.output_dir!r} is a file; set a folder for the predictions and report")  # fmt: skip
        check(not Path(self.video_root).is_file(),
               f"video_root={self.video_root!r} is a file; set the folder holding the videos")  # fmt: skip

    def _check_probe(self) -> None:
        check(self.probe is None or isinstance(self.probe, (str, list, tuple)),
               f"probe={self.probe!r}; valid values: null, {list(PROBES)} or a list of them")  # fmt: skip
        names = self.probes
        bad = [name for name in names if name not in PROBES]
        check(not bad, f"probe={self.probe!r}: unknown {bad}; valid values: null, {list(PROBES)} or a list of them")
        check(len(set(names)) == len(names), f"probe={self.probe!r} names a probe twice")
        check(not names or self.task != "reasoning",
               f"probe={self.probe!r} with task=reasoning: probes score qa, tag and cls only")  # fmt: skip

    @property
    def probes(self) -> tuple[str, ...]:
        """The probe names to run after the clean split (``probe`` as a tuple; empty for null)."""
        if self.probe is None:
            return ()
        return (self.probe,) if isinstance(self.probe, str) else tuple(self.probe)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EvalConfig:
        """Validate a resolved config (``OmegaConf.to_container(cfg, resolve=True)``); drops ``hydra``.

        Every value is checked against its field's type (:func:`vau_r1.sections.build_section`), then its range.
        """
        values = {k: v for k, v in values.items() if k != "hydra"}
        return build_section(cls, values, "")

    def judge_config(self) -> Any:
        """The :class:`vau_r1.judge.JudgeConfig` named by ``judge`` (with ``judge_overrides``), or ``None``."""
        if self.judge is None:
            return None
        from vau_r1.eval.judge_cmd import resolve_judge_config

        return resolve_judge_config(self.judge, self.judge_overrides or {})

    @property
    def think(self) -> bool:
        """Whether the prompt asks for a ``<think>`` block."""
        return get_preset(self.task, self.prompt_preset).think

    @property
    def dataset_label(self) -> str:
        """``dataset``, else ``source``, else the annotation file's stem."""
        return self.dataset or self.source or Path(self.annotations).stem

    def fingerprint(self, video: dict[str, Any], weights: str) -> dict[str, Any]:
        """Settings that change the predictions; a resumed run must match the stored ones.

        Args:
            video: the resolved video sampling (``VideoConfig.to_dict()``).
            weights: the resolved weights (checkpoint or adapter folder, hub id): a run folder that gained a
                newer checkpoint is another model.
        """
        return {"model": weights, "task": self.task, "annotations": str(Path(self.annotations).resolve()),
                "prompt_preset": self.prompt_preset, "system_prompt": self.system_prompt, "video": video,
                "generation": self.generation.to_dict(), "model_load": self.model_load}  # fmt: skip


def resolve_video_config(cfg: EvalConfig, manifest: dict[str, Any] | None) -> tuple[str, VideoConfig]:
    """The video sampling of the run: ``(preset name used, config)``.

    ``video_preset`` is a file of ``vau_r1/configs/video/``, ``paper_eval`` (the paper's eval sampling of the
    task) or ``checkpoint`` (the sampling recorded in the checkpoint's manifest; ``paper_train`` for a
    model without one). ``video`` overrides single fields on top.

    Raises:
        ConfigError: unknown preset or override key, or an invalid value.
    """
    name = PAPER_EVAL_VIDEO[cfg.task] if cfg.video_preset == "paper_eval" else cfg.video_preset
    if name == "checkpoint":
        if manifest is not None and manifest.get("video"):
            base = dict(manifest["video"])
        else:
            logger.warning("video_preset=checkpoint but %s has no manifest; using %s", cfg.model, TRAIN_VIDEO_PRESET)
            name, base = TRAIN_VIDEO_PRESET, VideoConfig.from_preset(TRAIN_VIDEO_PRESET).to_dict()
    else:
        try:
            base = VideoConfig.from_preset(name).to_dict()
        except FileNotFoundError as error:
            raise ConfigError(f"video_preset={cfg.video_preset!r}: {error} (or paper_eval, checkpoint)") from error
    try:
        return name, VideoConfig.from_dict({**base, **(cfg.video or {})})
    except ValueError as error:
        raise ConfigError(f"video: {error}") from error
