"""``vau-r1 demo``: the whole pipeline on a laptop CPU — data, SFT, GRPO, a continued-SFT control, evaluation.

Stages (:func:`run_demo`), each the same entry point a user would call::

    1 data      write_benchmark: SFT clips + held-out test clips (seed s), fresh GRPO clips (seed s + 10000)
    2 base      evaluate the random-init model (QA, TAG) on the held-out test split
    3 sft       vau-r1 train algorithm=sft from scratch on QA + TAG, answer-only targets
    4 grpo      vau-r1 train (GRPO) from the SFT checkpoint on QA + TAG, fresh clips, Dr. GRPO advantages
    5 control   vau-r1 train algorithm=sft from the SFT checkpoint on the same fresh clips, about GRPO's wall time
    6 eval      SFT, SFT+GRPO and SFT-continued on the held-out test split (greedy, vau_r1.eval.pipeline)
    7 report    table.md / results.json / reward_curve.png (:mod:`vau_r1.demo_report`)

The stage configs are composed from ``configs/train.yaml`` and ``configs/eval/eval.yaml`` with Hydra overrides
(:func:`sft_overrides`, :func:`grpo_overrides`, :func:`eval_overrides`). Each training run folder keeps its
overrides in ``overrides.txt``, so a stage can be rerun by hand: ``vau-r1 train $(cat overrides.txt)``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vau_r1 import demo_report

logger = logging.getLogger(__name__)

#: Model size presets (vau_r1.model.tiny.TinyConfig fields). ``small`` is about 1.1M parameters.
SIZES: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vision_hidden_size": 64, "vision_intermediate_size": 128,
              "vision_depth": 2, "vision_num_heads": 2},
    "medium": {"hidden_size": 192, "intermediate_size": 512, "num_hidden_layers": 6, "num_attention_heads": 6,
               "num_key_value_heads": 2, "vision_hidden_size": 96, "vision_intermediate_size": 192,
               "vision_depth": 3, "vision_num_heads": 4},
}  # fmt: skip
#: Continued-SFT steps per GRPO step of the control: gives it about GRPO's wall time (measured with the defaults on
#: 2 shared CPU cores: 90 SFT steps 79 s, 30 GRPO steps 81 s) with a step count that does not depend on the load.
SFT_STEPS_PER_GRPO_STEP = 3
#: Offset of the fresh GRPO clips' seed, so they never repeat an SFT or test clip.
GRPO_SEED_OFFSET = 10_000
#: Clip settings of every split: 56x56, 8 s, 4 fps (sampled at 2 fps: 16 frames, 32 video tokens).
CLIP = {"width": 56, "height": 56, "duration_s": 8.0, "fps": 4.0, "span_resolution_s": 0.5, "appearance_cue": True}
#: The GRPO rewards of QA + TAG with answer-only prompts.
GRPO_REWARDS = "[{name:format_no_think,weight:1.0},{name:accuracy,weight:1.0},{name:temporal_iou,weight:1.0}]"
#: The models evaluated, in table order.
MODELS: tuple[str, ...] = ("base", "sft", "sft_grpo", "sft_continued")


@dataclass(frozen=True)
class DemoOptions:
    """Settings of one demo run (the ``vau-r1 demo`` options).

    Attributes:
        out_dir: output folder (data, runs, evaluations, table, plot).
        seed: seeds the data, the weight init and the training order.
        sft_steps: SFT steps from scratch (batch ``sft_batch``).
        grpo_steps: GRPO steps (``grpo_prompts`` prompts x ``grpo_generations`` completions each).
        control_steps: continued-SFT steps of the control; ``None``: ``SFT_STEPS_PER_GRPO_STEP * grpo_steps``.
        num_train: SFT clips (each a QA and a TAG example).
        num_grpo: fresh GRPO clips (never seen in SFT).
        num_test: held-out test clips.
        size: model size preset, a key of :data:`SIZES`.
        threads: torch CPU threads.
        sft_lr, grpo_lr: peak learning rates.
        sft_batch, grpo_prompts, grpo_generations: batch sizes.
        eval_batch: videos per generate call.
        progress: show the trainers' and evaluators' progress bars.
    """

    out_dir: Path = Path("outputs/demo")
    seed: int = 0
    sft_steps: int = 250
    grpo_steps: int = 30
    control_steps: int | None = None
    num_train: int = 400
    num_grpo: int = 300
    num_test: int = 100
    size: str = "small"
    threads: int = 1
    sft_lr: float = 3.0e-3
    grpo_lr: float = 2.0e-4
    sft_batch: int = 16
    grpo_prompts: int = 4
    grpo_generations: int = 8
    eval_batch: int = 50
    progress: bool = True

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size={self.size!r}; expected one of {sorted(SIZES)}")
        counts = {k: getattr(self, k) for k in ("sft_steps", "grpo_steps", "num_train", "num_grpo", "num_test")}
        bad = [f"{k}={v}" for k, v in counts.items() if v < 1]
        if bad or self.threads < 1:
            raise ValueError(f"demo options must be >= 1: {', '.join(bad) or f'threads={self.threads}'}")

    @classmethod
    def quick(cls, **changes: Any) -> DemoOptions:
        """The shortened demo of the tests: a minute or two on 2 CPU cores, same stages."""
        small = {"sft_steps": 30, "grpo_steps": 3, "num_train": 16, "num_grpo": 8, "num_test": 8, "sft_batch": 8,
                 "grpo_prompts": 4, "grpo_generations": 4, "sft_lr": 3.0e-3}  # fmt: skip
        return cls(**{**small, **changes})

    @property
    def control(self) -> int:
        """Continued-SFT steps of the control."""
        return self.control_steps if self.control_steps is not None else SFT_STEPS_PER_GRPO_STEP * self.grpo_steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (``out_dir`` as a string)."""
        return {**dataclasses.asdict(self), "out_dir": str(self.out_dir), "control_steps": self.control}


# ---------------------------------------------------------------------------------------------- stage configs


def _tiny_overrides(opts: DemoOptions) -> list[str]:
    return [f"model.tiny.{k}={v}" for k, v in SIZES[opts.size].items()] + [f"model.tiny.seed={opts.seed}"]


def _common_train(opts: DemoOptions, run: str, data_root: Path, steps: int, batch: int, lr: float) -> list[str]:
    return [
        "model=tiny_random", "data=vau_bench", "video@data.video=tiny_cpu", "logger=none", f"run_name={run}",
        f"output_dir={opts.out_dir / 'runs' / run}", f"seed={opts.seed}",
        f"data.annotations={data_root / 'train.csv'}",
        f"data.video_root={data_root / 'videos'}", "data.tasks=[qa,tag]", "data.prompt_preset=default_no_think",
        "data.cache_videos=true", f"trainer.max_steps={steps}", f"trainer.per_device_batch_size={batch}",
        f"trainer.learning_rate={lr}", f"trainer.save_every={steps}", "trainer.keep_last=1", "trainer.cpu=true",
        f"trainer.torch_threads={opts.threads}", "trainer.log_completions_every=0",
    ]  # fmt: skip


def sft_overrides(opts: DemoOptions, run: str, data_root: Path, steps: int, init: Path | None = None) -> list[str]:
    """Overrides of ``configs/train.yaml`` for SFT from scratch (``init=None``) or from checkpoint ``init``."""
    start = _tiny_overrides(opts) if init is None else [f"model.name_or_path={init}", "model.tiny=null"]
    schedule = ["trainer.warmup_steps=" + str(min(50, steps // 10)), "trainer.lr_scheduler=cosine"]
    return [*_common_train(opts, run, data_root, steps, opts.sft_batch, opts.sft_lr), "algorithm=sft",
            "sft.think=false", *schedule, *start]  # fmt: skip


def grpo_overrides(opts: DemoOptions, run: str, data_root: Path, init: Path) -> list[str]:
    """Overrides of ``configs/train.yaml`` for GRPO from checkpoint ``init`` (Dr. GRPO-style, no std scaling)."""
    return [
        *_common_train(opts, run, data_root, opts.grpo_steps, opts.grpo_prompts, opts.grpo_lr), "algorithm=grpo",
        f"model.name_or_path={init}", "model.tiny=null", f"rewards.funcs={GRPO_REWARDS}",
        f"grpo.num_generations={opts.grpo_generations}", "grpo.max_completion_tokens=32", "grpo.top_k=0",
        "grpo.beta=0.0", "grpo.scale_rewards=none", "grpo.loss_type=dr_grpo", "trainer.lr_scheduler=constant",
    ]  # fmt: skip


def eval_overrides(opts: DemoOptions, model: str, task: str, test_root: Path, out: Path) -> list[str]:
    """Overrides of ``configs/eval/eval.yaml``: training-matched prompts and tiny_cpu sampling, greedy decoding."""
    return [
        f"model={model}", f"task={task}", "protocol=matched_no_think", "video_preset=tiny_cpu",
        f"annotations={test_root / 'test.csv'}", f"video_root={test_root / 'videos'}", f"output_dir={out}",
        f"dataset=syn-test-{opts.seed}", "generation.max_new_tokens=32", f"batch_size={opts.eval_batch}",
        f"torch_threads={opts.threads}", "overwrite=true", f"progress={str(opts.progress).lower()}",
    ]  # fmt: skip


def compose(config_dir: str, name: str, overrides: list[str]) -> Any:
    """Compose ``name`` from ``config_dir`` with ``overrides`` (Hydra's compose API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return hydra_compose(config_name=name, overrides=overrides)


# ---------------------------------------------------------------------------------------------- stages


def generate_data(opts: DemoOptions) -> dict[str, Path]:
    """Stage 1: the SFT + test benchmark and the fresh GRPO clips; returns their roots."""
    from vau_r1.bench import write_benchmark

    main = write_benchmark(opts.out_dir / "data" / "main", num_train=opts.num_train, num_test=opts.num_test,
                           seed=opts.seed, **CLIP)  # fmt: skip
    fresh = write_benchmark(opts.out_dir / "data" / "fresh", num_train=opts.num_grpo, num_test=0,
                            seed=opts.seed + GRPO_SEED_OFFSET, prefix="fresh", **CLIP)  # fmt: skip
    return {"main": main.root, "fresh": fresh.root}


def train(overrides: list[str]) -> Path:
    """Run ``vau-r1 train`` in-process with ``overrides``; returns the final checkpoint's ``model/`` folder."""
    from vau_r1 import train as train_entry

    trainer = train_entry.run(compose(train_entry.CONFIG_DIR, "train", overrides))
    (Path(trainer.cfg.output_dir) / "overrides.txt").write_text(" ".join(overrides) + "\n", encoding="utf-8")
    step = Path(trainer.cfg.output_dir) / "checkpoints" / f"step_{trainer.step_count:06d}" / "model"
    if not step.is_dir():
        raise FileNotFoundError(f"{step} was not written; check {trainer.cfg.output_dir}")
    return step


def evaluate_model(opts: DemoOptions, label: str, ref: str, test_root: Path, **loaded: Any) -> dict[str, Any]:
    """Stage 2/6: QA and TAG on the held-out split; returns the row of :func:`vau_r1.demo_report.table_row`."""
    from vau_r1 import evaluate as eval_entry

    reports = {}
    for task in ("qa", "tag"):
        out = opts.out_dir / "eval" / label / task
        cfg = compose(eval_entry.CONFIG_DIR, "eval", eval_overrides(opts, ref, task, test_root, out))
        reports[task] = eval_entry.run(cfg, **loaded)
    return demo_report.table_row(label, reports["qa"], reports["tag"], opts.out_dir / "eval" / label / "qa")


def base_model(opts: DemoOptions) -> tuple[Any, Any]:
    """The random-init model SFT starts from (same sizes and seed) and its tokenizer."""
    from omegaconf import OmegaConf

    from vau_r1 import train as train_entry
    from vau_r1.model.builder import ModelConfig, load_model_and_processor

    cfg = compose(train_entry.CONFIG_DIR, "train", ["model=tiny_random", "run_name=base", *_tiny_overrides(opts)])
    return load_model_and_processor(ModelConfig(**OmegaConf.to_container(cfg.model, resolve=True)))


def run_demo(opts: DemoOptions, stage_log: Any = None) -> dict[str, Any]:
    """Run every stage; write ``table.md``, ``results.json`` and ``reward_curve.png`` into ``opts.out_dir``.

    Args:
        opts: the settings.
        stage_log: ``fn(stage name, message)`` called at the start and end of each stage (the live display).

    Returns:
        The results (also in ``results.json``): settings, per-model metrics, deltas, wall times in seconds.
    """
    say = stage_log or (lambda stage, message: logger.info("[%s] %s", stage, message))
    started = time.perf_counter()
    walls: dict[str, float] = {}

    def timed(stage: str, message: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        say(stage, message)
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        walls[stage] = round(time.perf_counter() - t0, 1)
        say(stage, f"done in {walls[stage]:.0f} s")
        return result

    roots = timed("1 data", "writing the benchmark", generate_data, opts)
    model, tokenizer = base_model(opts)
    rows = [timed("2 base", "evaluating the random-init model", evaluate_model, opts, "base", "tiny-random",
                  roots["main"], model=model, tokenizer=tokenizer)]  # fmt: skip
    sft_ckpt = timed("3 sft", f"SFT from scratch, {opts.sft_steps} steps", train,
                     sft_overrides(opts, "sft", roots["main"], opts.sft_steps))  # fmt: skip
    grpo_ckpt = timed("4 grpo", f"GRPO from SFT on fresh clips, {opts.grpo_steps} steps", train,
                      grpo_overrides(opts, "sft_grpo", roots["fresh"], sft_ckpt))  # fmt: skip
    control = sft_overrides(opts, "sft_continued", roots["fresh"], opts.control, init=sft_ckpt)
    ctrl_ckpt = timed("5 control", f"continued SFT on the fresh clips, {opts.control} steps", train, control)
    for label, ckpt in (("sft", sft_ckpt), ("sft_grpo", grpo_ckpt), ("sft_continued", ctrl_ckpt)):
        rows.append(timed(f"6 eval {label}", f"evaluating {label}", evaluate_model, opts, label, str(ckpt.parent),
                          roots["main"]))  # fmt: skip
    walls["total"] = round(time.perf_counter() - started, 1)
    results = demo_report.build_results(opts.to_dict(), rows, walls)
    metrics_jsonl = opts.out_dir / "runs" / "sft_grpo" / "metrics.jsonl"
    results["grpo_train_reward"] = demo_report.reward_change(metrics_jsonl)
    paths = demo_report.write_outputs(results, opts.out_dir, metrics_jsonl)
    say("7 report", f"table {paths['md']}, plot {paths['png']}")
    return results
