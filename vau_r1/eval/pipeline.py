"""``vau-r1 eval run`` end to end: resolve → check parity → generate (resumable, sharded) → score → report.

Steps, in :func:`evaluate`:

1. resolve the model reference and its manifest (:mod:`vau_r1.eval.loading`), the video sampling
   (:func:`~vau_r1.eval.settings.resolve_video_config`) and the usable annotation rows of the task;
2. compare the video sampling and prompt preset with the checkpoint's training manifest and warn loudly
   on any difference (unless ``allow_mismatch``);
3. refuse to mix predictions made with other settings in one folder (``run.json``), unless ``overwrite``;
4. generate the videos not yet predicted, this rank's share only, appending records as it goes
   (:mod:`vau_r1.eval.runner`); the model is loaded only when something is left to generate;
5. with ``probe`` set: the same for each probe (:mod:`vau_r1.eval.probes`) in ``<output_dir>/probe_<name>/``
   (:mod:`vau_r1.eval.stages`; resumable too, and the clean predictions are reused);
6. on rank 0: merge the records, score them (:data:`vau_r1.eval.metrics.METRICS`, or the VAU-Eval judge for
   reasoning), add the 95% bootstrap intervals, the probes' gaps and the blind baselines
   (:func:`vau_r1.eval.analysis.build_evidence`) and write ``report.{md,json,csv}`` (:mod:`vau_r1.eval.report`,
   whose docstring says how to read them).

Programmatic use: ``report = evaluate(EvalConfig.from_dict({...}))`` (or :func:`vau_r1.apps.evaluate.run` on a
composed Hydra config) returns the :class:`~vau_r1.eval.report.EvalReport`: ``report.metrics``,
``report.ci95``, ``report.probes["swap"].metrics`` / ``.gap``, ``report.baselines["always_normal"].metrics``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState

from vau_r1.data.annotations import load_annotations
from vau_r1.data.schema import VideoSample
from vau_r1.engine.checkpoint import file_sha256, git_commit, package_versions
from vau_r1.eval.analysis import build_evidence, score_split
from vau_r1.eval.generation import generate_texts
from vau_r1.eval.loading import ModelRef, parity_differences, resolve_model_ref
from vau_r1.eval.probes import Probe
from vau_r1.eval.reasoning import judge_records, reasoning_records, write_reasoning_csv
from vau_r1.eval.report import EvalReport, write_report
from vau_r1.eval.runner import EvalItem, PredictionStore, task_record
from vau_r1.eval.settings import EvalConfig, resolve_video_config
from vau_r1.eval.stages import Generator, probe_dir
from vau_r1.model.families import family_of
from vau_r1.sections import ConfigError
from vau_r1.tasks import build_messages, get_preset

__all__ = ["check_parity", "evaluate", "load_samples", "make_predictor", "probe_dir"]

logger = logging.getLogger(__name__)


def check_parity(ref: ModelRef, video: dict[str, Any], cfg: EvalConfig) -> dict[str, Any]:
    """Compare the eval settings with the checkpoint's training; warn loudly on a difference."""
    differences = parity_differences(ref.manifest, video, cfg.prompt_preset)
    if differences:
        listing = "\n  ".join(differences)
        message = f"train/eval mismatch for {ref.label}: the evaluation differs from training in\n  {listing}"
        if cfg.allow_mismatch:
            logger.info("%s\n(allowed by allow_mismatch=true)", message)
        else:
            banner = "=" * 100
            logger.warning("\n%s\n%s\nScores may not reflect the trained model; set allow_mismatch=true if this "
                           "is intended (e.g. the paper's eval protocol).\n%s", banner, message, banner)  # fmt: skip
    return {"checked": differences is not None, "differences": differences or [], "allowed": cfg.allow_mismatch}


def _check_judge(cfg: EvalConfig) -> None:
    """Fail before generating when the configured judge cannot run (unknown config, missing API key)."""
    if cfg.judge is None:
        return
    if cfg.task != "reasoning":
        logger.warning("judge=%s is ignored: only task=reasoning is judged", cfg.judge)
        return
    from vau_r1.judge.client import read_api_key

    read_api_key(cfg.judge_config().api_key_env)


def load_samples(cfg: EvalConfig) -> list[VideoSample]:
    """Usable rows of the task (eval rules: the paper's denominators), at most ``max_samples``.

    TAG with ``tag_normal_videos`` also keeps the normal videos (mIoU / R@k still score the anomalous ones).

    Raises:
        ValueError: no row is usable.
    """
    table = load_annotations(cfg.annotations, source=cfg.source)
    normal_too = cfg.task == "tag" and cfg.tag_normal_videos  # the training rule: anomalous + normal videos
    samples = table.usable(cfg.task, purpose="train" if normal_too else "eval")[: cfg.max_samples]
    if not samples:
        raise ValueError(f"{cfg.annotations}: none of its {len(table)} rows is usable for task {cfg.task!r}")
    logger.info("%s: %d of %d rows usable for %s", cfg.annotations, len(samples), len(table), cfg.task)
    return samples


def make_predictor(cfg: EvalConfig, model: Any, tokenizer: Any) -> Callable[[list[EvalItem]], list[dict[str, Any]]]:
    """``predict(items) -> records`` for the task: one generation (qa/tag/cls) or two turns (reasoning)."""
    preset = get_preset(cfg.task, cfg.prompt_preset)
    family = family_of(model)

    def generate(messages_list: list, videos: list, keys: list[str]) -> list:
        return generate_texts(model, tokenizer, messages_list, videos, cfg.generation, family=family,
                              add_vision_id=preset.add_vision_id, keys=keys)  # fmt: skip

    if cfg.task == "reasoning":
        return lambda items: reasoning_records(items, generate, cfg.prompt_preset, cfg.system_prompt)

    def predict(items: list[EvalItem]) -> list[dict[str, Any]]:
        messages = [build_messages(item.sample, cfg.task, cfg.prompt_preset, video=str(item.path),
                                   duration_s=item.duration_s, system_prompt=cfg.system_prompt) for item in items]
        generations = generate(messages, [item.video for item in items], [item.sample.video for item in items])
        return [task_record(item, cfg.task, g) for item, g in zip(items, generations, strict=True)]  # fmt: skip

    return predict


def _score(cfg: EvalConfig, samples: list[VideoSample], records: list[dict[str, Any]], judge_client: Any):
    """``(per-sample scores or None, metrics, n, missing, judge summary)`` of the merged records."""
    if cfg.task != "reasoning":
        result = score_split(cfg.task, samples, records, parser=cfg.parser, only_predicted=cfg.only_predicted,
                             decision=cfg.tag_normal_videos)  # fmt: skip
        return result, result.metrics, result.n, list(result.missing), None
    ok = {r["video"]: r for r in records if r.get("status") == "ok"}
    missing = [s.video for s in samples if s.video not in ok]
    write_reasoning_csv(Path(cfg.output_dir) / "predictions_reasoning.csv", records)
    judge_config = cfg.judge_config()
    if judge_config is None:
        logger.info("no judge configured: score with `vau-r1 eval judge` or rerun with judge=deepseek")
        return None, dict.fromkeys(("CLS", "KM", "FLU", "INF", "FAC", "Total")), 0, missing, None
    report = judge_records(samples, ok, judge_config, Path(cfg.output_dir) / "judge", judge_client)
    return None, dict(report.means), report.n_judged, missing, report.to_dict()


def _build_probes(cfg: EvalConfig, samples: list[VideoSample]) -> list[Probe]:
    try:
        return [Probe.build(name, samples, cfg.probe_seed) for name in cfg.probes]
    except ValueError as error:
        raise ConfigError(f"probe={cfg.probe!r}: {error}") from error


def _settings(cfg: EvalConfig, video_preset: str, video: dict[str, Any]) -> dict[str, Any]:
    return {"prompt_preset": cfg.prompt_preset, "video_preset": video_preset, "video": video,
            "generation": cfg.generation.to_dict(), "batch_size": cfg.batch_size, "parser": cfg.parser,
            "only_predicted": cfg.only_predicted, "system_prompt": cfg.system_prompt, "probe": list(cfg.probes),
            "probe_seed": cfg.probe_seed, "tag_normal_videos": cfg.tag_normal_videos,
            "baseline_annotations": cfg.baseline_annotations, "bootstrap_resamples": cfg.bootstrap_resamples,
            "bootstrap_seed": cfg.bootstrap_seed}  # fmt: skip


def _provenance(cfg: EvalConfig, ref: ModelRef, state: PartialState, started: float, **extra: Any) -> dict[str, Any]:
    """Where the numbers come from: model, checkpoint, annotation file and hash, packages, commit, timing."""
    return {
        "model": cfg.model, "name_or_path": ref.name_or_path, "checkpoint": ref.checkpoint, "adapter": ref.adapter,
        "annotations": str(cfg.annotations), "annotations_sha256": file_sha256(cfg.annotations),
        "trained_task": ((ref.manifest or {}).get("config", {}).get("data") or {}).get("task"), **extra,
        "packages": package_versions(), "git_commit": git_commit(), "world_size": state.num_processes,
        "elapsed_s": round(time.monotonic() - started, 2), "created_at": datetime.now(timezone.utc).isoformat(),
    }  # fmt: skip


def evaluate(
    cfg: EvalConfig, *, model: Any = None, tokenizer: Any = None, judge_client: Any = None
) -> EvalReport | None:
    """Run one evaluation (see the module docstring); returns the report on rank 0, ``None`` elsewhere.

    Args:
        cfg: the validated config.
        model: an already loaded model (tests); by default loaded from ``cfg.model`` when needed.
        tokenizer: its tokenizer (with ``model``).
        judge_client: a ready judge client (tests), for reasoning with a judge.
    """
    started = time.monotonic()
    state = PartialState(cpu=not torch.cuda.is_available())  # gloo ranks under torchrun on a CPU machine
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    ref = resolve_model_ref(cfg.model)
    video_preset, video_config = resolve_video_config(cfg, ref.manifest)
    parity = check_parity(ref, video_config.to_dict(), cfg)
    samples = load_samples(cfg)
    probes = _build_probes(cfg, samples)
    _check_judge(cfg)
    fingerprint = cfg.fingerprint(video_config.to_dict(), ref.weights)
    generator = Generator(cfg, ref, video_config, state, model, tokenizer, make_predictor)
    generated = generator.run(samples, Path(cfg.output_dir), fingerprint, None)
    probe_generated = {p.name: generator.run(samples, probe_dir(cfg.output_dir, p.name),
                                             {**fingerprint, "probe": p.name}, p) for p in probes}  # fmt: skip
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    records = PredictionStore(cfg.output_dir).merge(samples)
    result, metrics, n, missing, judge = _score(cfg, samples, records, judge_client)
    failures = [{"video": r["video"], "error": r.get("error")} for r in records if r.get("status") != "ok"]
    counts = {"rows": len(samples), "predicted": len(records) - len(failures), "failed": len(failures),
              "missing": len(missing), "truncated": sum(bool(r.get("truncated")) for r in records),
              "generated_this_run": generated}  # fmt: skip
    if result is not None and "decision_accuracy" in metrics:
        counts["decision_rows"] = sum("decision_accuracy" in v for v in result.per_sample.values())
    evidence = {} if result is None else build_evidence(cfg, samples, (result, records), probes, probe_generated)
    provenance = _provenance(cfg, ref, state, started, checkpoint_generation_config=generator.generation_config)
    report = EvalReport(cfg.task, cfg.dataset_label, ref.label, cfg.think, metrics, n, counts, missing, failures,
                        _settings(cfg, video_preset, video_config.to_dict()), provenance, parity, judge,
                        denominators={} if result is None else dict(result.denominators), **evidence)  # fmt: skip
    paths = write_report(report, cfg.output_dir)
    logger.info("report written to %s", paths["md"])
    return report
