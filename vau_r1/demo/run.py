"""``vau-r1 demo``: the whole pipeline on a laptop CPU — data, SFT, a perception gate, GRPO, a control, evaluation.

Stages (:func:`run_demo`), each the same entry point a user would call::

    1 data      four synthetic splits (vau_r1.demo.data): SFT + test, fresh clips, a gate split, a shifted test
    2 sft       vau-r1 train algorithm=sft from scratch on QA + TAG, answer-only targets, cosine schedule
    3 gate      QA on the gate split with every video swapped for another clip's (eval run probe=swap):
                GRPO starts only when SFT loses at least ``swap_margin`` points there (it reads the video)
    4 grpo      vau-r1 train (GRPO) from the SFT checkpoint on the fresh clips, Dr. GRPO advantages, rewards
                without a free lunch for a blind policy (temporal_iou normal_iou balanced on the fresh clips)
    5 control   vau-r1 train algorithm=sft from the same checkpoint on the same fresh clips, same peak LR and
                schedule as GRPO, about GRPO's wall time
    6 eval      SFT, SFT+GRPO and the control: QA and TAG on the test split (with the swap and frame-reversal
                probes) and on the shifted split (vau_r1.eval.pipeline; greedy; the training prompts)
    7 report    table.md / results.json / reward_curve.png (vau_r1.demo.report)

The stage configs are composed from ``vau_r1/configs/train.yaml`` and ``vau_r1/configs/eval/eval.yaml`` with Hydra
overrides
(:func:`sft_overrides`, :func:`grpo_overrides`, :func:`eval_overrides`). Each training run folder keeps its
overrides in ``overrides.txt``, so a stage can be rerun by hand: ``vau-r1 train $(cat overrides.txt)``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from vau_r1.demo import report as demo_report
from vau_r1.demo.data import CLIP, write_bpe_corpus, write_demo_data
from vau_r1.demo.options import SIZES, DemoOptions

__all__ = ["DemoOptions", "eval_overrides", "grpo_overrides", "run_demo", "sft_overrides"]

logger = logging.getLogger(__name__)

#: The trained tasks and their prompt preset (answer only, no <think>).
TASKS, PRESET = ("qa", "tag"), "default_no_think"
#: The models evaluated, in table order.
MODELS: tuple[str, ...] = ("sft", "sft_grpo", "sft_continued")


# ---------------------------------------------------------------------------------------------- stage configs


def _tiny_overrides(opts: DemoOptions, corpus: Path) -> list[str]:
    sizes = [f"model.tiny.{k}={v}" for k, v in SIZES[opts.size].items()]
    return [*sizes, f"model.tiny.seed={opts.seed}", f"model.tiny.bpe_corpus_files=[{corpus}]"]


def _common_train(opts: DemoOptions, run: str, data_root: Path, steps: int, batch: int, lr: float) -> list[str]:
    return [
        "model=tiny_random", "data=vau_bench", "video@data.video=tiny_cpu", "logger=none", f"run_name={run}",
        f"output_dir={opts.out_dir / 'runs' / run}", f"seed={opts.seed}",
        f"data.annotations={data_root / 'train.csv'}", f"data.video_root={data_root / 'videos'}",
        f"data.tasks=[{','.join(TASKS)}]", f"data.prompt_preset={PRESET}", "data.cache_videos=true",
        f"trainer.max_steps={steps}", f"trainer.per_device_batch_size={batch}", f"trainer.learning_rate={lr}",
        f"trainer.save_every={steps}", "trainer.keep_last=1", "trainer.cpu=true",
        f"trainer.torch_threads={opts.threads}", "trainer.log_completions_every=0",
        "overwrite=true",  # a rerun of the demo into the same --out starts its runs afresh
    ]  # fmt: skip


def _schedule(warmup_steps: int) -> list[str]:
    """Linear warmup over ``warmup_steps``, then cosine decay to 0 (every stage's schedule)."""
    return [f"trainer.warmup_steps={warmup_steps}", "trainer.lr_scheduler=cosine"]


def sft_overrides(opts: DemoOptions, data_root: Path, corpus: Path) -> list[str]:
    """Overrides of ``vau_r1/configs/train.yaml`` for SFT from scratch (warmup, then cosine decay to 0)."""
    steps = opts.sft_steps
    return [*_common_train(opts, "sft", data_root, steps, opts.sft_batch, opts.sft_lr), "algorithm=sft",
            "sft.think=false", *_schedule(min(50, steps // 10)), *_tiny_overrides(opts, corpus)]  # fmt: skip


def control_overrides(opts: DemoOptions, data_root: Path, init: Path) -> list[str]:
    """Continued SFT from ``init`` on the fresh clips: GRPO's peak LR and schedule, no re-warm."""
    steps = opts.control
    return [*_common_train(opts, "sft_continued", data_root, steps, opts.sft_batch, opts.rl_lr), "algorithm=sft",
            "sft.think=false", *_schedule(0), f"model.name_or_path={init}", "model.tiny=null"]  # fmt: skip


def grpo_overrides(opts: DemoOptions, data_root: Path, init: Path, normal_iou: float) -> list[str]:
    """GRPO from ``init`` (Dr. GRPO-style: no std scaling, no KL), the control's peak LR and schedule."""
    rewards = ("[{name:format_no_think,weight:1.0},{name:accuracy,weight:1.0},"
               f"{{name:temporal_iou,weight:1.0,options:{{normal_iou:{normal_iou:.4f}}}}}]")  # fmt: skip
    return [
        *_common_train(opts, "sft_grpo", data_root, opts.grpo_steps, opts.grpo_prompts, opts.rl_lr),
        "algorithm=grpo", f"model.name_or_path={init}", "model.tiny=null", f"rewards.funcs={rewards}",
        f"grpo.num_generations={opts.grpo_generations}", "grpo.max_completion_tokens=32", "grpo.top_k=0",
        "grpo.beta=0.0", "grpo.scale_rewards=none", "grpo.loss_type=dr_grpo", *_schedule(0),
    ]  # fmt: skip


def eval_overrides(opts: DemoOptions, model: str, task: str, split_root: Path, out: Path, **keys: Any) -> list[str]:
    """Overrides of ``vau_r1/configs/eval/eval.yaml``: training-matched prompts, tiny_cpu sampling, greedy decoding."""
    extra = [f"{key}={value}" for key, value in keys.items()]
    return [
        f"model={model}", f"task={task}", "protocol=matched_no_think", "video_preset=tiny_cpu",
        f"annotations={split_root / 'test.csv'}", f"video_root={split_root / 'videos'}", f"output_dir={out}",
        f"dataset=syn-{split_root.name}-{opts.seed}", "generation.max_new_tokens=32", f"batch_size={opts.eval_batch}",
        f"torch_threads={opts.threads}", "overwrite=true", f"progress={str(opts.progress).lower()}", *extra,
    ]  # fmt: skip


def compose(config_dir: str, name: str, overrides: list[str]) -> Any:
    """Compose ``name`` from ``config_dir`` with ``overrides`` (Hydra's compose API)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return hydra_compose(config_name=name, overrides=overrides)


# ---------------------------------------------------------------------------------------------- stages


def generate_data(opts: DemoOptions) -> dict[str, Path]:
    """Stage 1: the four splits and the tokenizer corpus (training splits only); returns their paths."""
    roots = write_demo_data(opts.out_dir / "data", opts.seed, opts.num_train, opts.num_grpo, opts.num_val,
                            opts.num_test)  # fmt: skip
    csvs = [roots["main"] / "train.csv", roots["fresh"] / "train.csv"]
    return {**roots, "corpus": write_bpe_corpus(csvs, TASKS, PRESET, opts.out_dir / "data" / "bpe_corpus.txt")}


def train(overrides: list[str]) -> tuple[Path, float]:
    """Run ``vau-r1 train`` in-process; returns the final checkpoint's ``model/`` folder and the wall seconds."""
    from vau_r1.apps import train as train_entry

    started = time.perf_counter()
    trainer = train_entry.run(compose(train_entry.CONFIG_DIR, "train", overrides))
    wall_s = time.perf_counter() - started
    (Path(trainer.cfg.output_dir) / "overrides.txt").write_text(" ".join(overrides) + "\n", encoding="utf-8")
    step = Path(trainer.cfg.output_dir) / "checkpoints" / f"step_{trainer.engine.step_count:06d}" / "model"
    if not step.is_dir():
        raise FileNotFoundError(f"{step} was not written; check {trainer.cfg.output_dir}")
    return step, wall_s


def evaluate(opts: DemoOptions, label: str, ckpt: Path, task: str, split: str, root: Path, **keys: Any) -> Any:
    """One ``vau-r1 eval run`` of ``ckpt`` on ``root``'s ``test.csv``; returns its report."""
    from vau_r1.apps import evaluate as eval_entry

    out = opts.out_dir / "eval" / label / f"{split}_{task}"
    cfg = compose(eval_entry.CONFIG_DIR, "eval", eval_overrides(opts, str(ckpt), task, root, out, **keys))
    return eval_entry.run(cfg)


def swap_gate(opts: DemoOptions, sft_ckpt: Path, val_root: Path) -> dict[str, Any]:
    """Stage 3: QA accuracy on the gate split with the right and with swapped videos, and the verdict."""
    report = evaluate(opts, "sft", sft_ckpt, "qa", "gate", val_root, probe="swap", probe_seed=opts.seed)
    clean, swapped = demo_report.probe_scores(report, "swap", "accuracy")
    gap = clean - swapped
    return {"clean": clean, "swapped": swapped, "gap": gap, "margin": opts.swap_margin,
            "passed": gap >= opts.swap_margin, "n": report.n}  # fmt: skip


def evaluate_model(opts: DemoOptions, label: str, ckpt: Path, roots: dict[str, Path]) -> dict[str, Any]:
    """Stage 6: QA and TAG on the test split (with the swap and reverse probes) and on the shifted split."""
    reports: dict[str, Any] = {}
    for task in TASKS:
        keys = _baseline_keys(task, roots)
        reports[f"test_{task}"] = evaluate(opts, label, ckpt, task, "test", roots["main"], probe="[swap,reverse]",
                                           probe_seed=opts.seed, **keys)  # fmt: skip
        reports[f"shift_{task}"] = evaluate(opts, label, ckpt, task, "shift", roots["shift"], **keys)
    return reports


def _baseline_keys(task: str, roots: dict[str, Path]) -> dict[str, Any]:
    """TAG: score normal videos too; the constant-span baseline takes the SFT training split's mean span."""
    if task != "tag":
        return {}
    return {"tag_normal_videos": "true", "baseline_annotations": roots["main"] / "train.csv"}


def normal_iou_for(train_csv: Path) -> float:
    """The ``normal_iou`` that pays "always Normal" what "always Anomaly + best constant span" earns on a split."""
    from vau_r1.data.annotations import load_annotations
    from vau_r1.rewards import balanced_normal_iou

    samples = load_annotations(train_csv).usable("tag", purpose="train")
    spans = [list(s.tag_target) for s in samples]
    return balanced_normal_iou(spans, [float(CLIP["duration_s"])] * len(spans))


def run_demo(opts: DemoOptions, stage_log: Any = None) -> dict[str, Any]:
    """Run every stage; write ``table.md``, ``results.json`` and ``reward_curve.png`` into ``opts.out_dir``.

    Args:
        opts: the settings.
        stage_log: ``fn(stage name, message)`` called at the start and end of each stage (the live display).

    Returns:
        The results (also in ``results.json``): settings, gate, per-model metrics, deltas, wall times.
    """
    say = stage_log or (lambda stage, message: logger.info("[%s] %s", stage, message))
    started, walls = time.perf_counter(), {}

    def timed(stage: str, message: str, fn: Any, *args: Any) -> Any:
        say(stage, message)
        t0 = time.perf_counter()
        result = fn(*args)
        walls[stage] = round(time.perf_counter() - t0, 1)
        say(stage, f"done in {walls[stage]:.0f} s")
        return result

    roots = timed("1 data", "writing the benchmark splits", generate_data, opts)
    sft_ckpt, _ = timed("2 sft", f"SFT from scratch, {opts.sft_steps} steps", train,
                        sft_overrides(opts, roots["main"], roots["corpus"]))  # fmt: skip
    gate = timed("3 gate", f"swap probe on {opts.num_val} gate clips (margin {opts.swap_margin:g})", swap_gate,
                 opts, sft_ckpt, roots["val"])  # fmt: skip
    ckpts, counts = {"sft": sft_ckpt}, {"sft": opts.sft_steps * opts.sft_batch}
    if gate["passed"]:
        normal_iou = normal_iou_for(roots["fresh"] / "train.csv")
        ckpts["sft_grpo"], _ = timed("4 grpo", f"GRPO from SFT on fresh clips, {opts.grpo_steps} steps", train,
                                     grpo_overrides(opts, roots["fresh"], sft_ckpt, normal_iou))  # fmt: skip
        ckpts["sft_continued"], _ = timed("5 control", f"continued SFT on the fresh clips, {opts.control} steps",
                                          train, control_overrides(opts, roots["fresh"], sft_ckpt))  # fmt: skip
        counts.update(sft_grpo=opts.grpo_steps * opts.grpo_prompts, sft_continued=opts.control * opts.sft_batch)
        gate["normal_iou"] = normal_iou
    else:
        say("3 gate", f"SFT does not read the video (gap {gate['gap']:.1f} < {opts.swap_margin:g}): no GRPO")
    reports = {label: timed(f"6 eval {label}", f"evaluating {label}", evaluate_model, opts, label, ckpt.parent,
                            roots) for label, ckpt in ckpts.items()}  # fmt: skip
    rows = [demo_report.model_row(label, by_task) for label, by_task in reports.items()]
    walls["total"] = round(time.perf_counter() - started, 1)
    baselines = demo_report.baseline_rows(reports["sft"])
    results = demo_report.build_results(opts.to_dict(), rows, baselines, walls, gate, counts)
    metrics_jsonl = opts.out_dir / "runs" / "sft_grpo" / "metrics.jsonl"
    paths = demo_report.write_outputs(results, opts.out_dir, metrics_jsonl if gate["passed"] else None)
    say("7 report", f"table {paths['md']}")
    return results
