"""Scoring of an evaluated split and its comparison with a probed one (clean − probed gaps, span movement).

:func:`score_split` turns prediction records into one :class:`~vau_r1.eval.metrics.EvalResult` (TAG with normal
videos: ``miou``/``r@k`` over the anomalous rows, the paper's denominators, plus ``decision_accuracy`` over
all rows); :func:`compare` builds the :class:`ProbeResult` of one probe: its metrics, the gap per metric with
a paired bootstrap interval, the share of answers that changed, and for TAG how far the spans moved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vau_r1.data.schema import NORMAL_SPAN, VideoSample
from vau_r1.eval.baselines import compute_baselines
from vau_r1.eval.metrics import METRICS, EvalResult, tag_decision_accuracy, tag_metrics
from vau_r1.eval.probes import Probe
from vau_r1.eval.runner import PredictionStore
from vau_r1.eval.settings import EvalConfig
from vau_r1.eval.stages import probe_dir
from vau_r1.eval.stats import ci95_by_metric, paired_gap_ci95
from vau_r1.rewards import parsing

__all__ = ["ProbeResult", "build_evidence", "compare", "mirrored_samples", "score_split", "span_movement"]

Records = Sequence[dict[str, Any]]


@dataclass
class ProbeResult:
    """One probe of an evaluation (``EvalReport.probes[name]``).

    Attributes:
        name: ``swap``, ``reverse`` or ``shuffle``.
        seed: ``probe_seed``.
        metrics: the probed split's metrics (percentages, same keys as the clean ones).
        gap: clean − probed per metric, in points (≈ 0: the model does not use what the probe broke).
        gap_ci95: 95% paired bootstrap interval of each gap over the clips.
        ci95: 95% bootstrap interval of each probed metric.
        n: denominator of the first metric.
        counts: ``rows``, ``predicted``, ``failed``, ``missing``, ``generated_this_run``, ``compared``.
        changed_answers: percent of the rows predicted in both runs whose parsed answer changed.
        span: TAG only: span movement, see :func:`span_movement`.
        output_dir: the probe's predictions folder.
        failures: ``{"video", "error"}`` of the probed videos that failed.
    """

    name: str
    seed: int
    metrics: dict[str, float | None]
    gap: dict[str, float | None]
    gap_ci95: dict[str, list[float] | None] = field(default_factory=dict)
    ci95: dict[str, list[float] | None] = field(default_factory=dict)
    n: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    changed_answers: float | None = None
    span: dict[str, Any] = field(default_factory=dict)
    output_dir: str = ""
    failures: list[dict[str, Any]] = field(default_factory=list)


def _texts(records: Records) -> dict[str, str]:
    return {r["video"]: r["text"] for r in records if r.get("status") == "ok"}


def _merge(samples: Sequence[VideoSample], results: Sequence[EvalResult]) -> EvalResult:
    """One result with every metric; ``n`` and ``unmatched`` are the first's, ``missing`` the union."""
    first, missing = results[0], {v for r in results for v in r.missing}
    per_sample: dict[str, dict[str, float]] = {}
    for result in results:
        for video, scores in result.per_sample.items():
            per_sample.setdefault(video, {}).update(scores)
    metrics = {key: value for r in results for key, value in r.metrics.items()}
    return EvalResult(first.task, metrics, first.n, tuple(s.video for s in samples if s.video in missing),
                      first.unmatched, first.parser, per_sample)  # fmt: skip


def score_split(task: str, samples: Sequence[VideoSample], records: Records, *, parser: str = "strict",
                only_predicted: bool = False, decision: bool = False) -> EvalResult:  # fmt: skip
    """Metrics of the ``ok`` records of one split (``decision``: TAG's ``decision_accuracy`` too)."""
    texts = _texts(records)
    result = METRICS[task](samples, texts, parser=parser, only_predicted=only_predicted)
    if task != "tag" or not decision:
        return result
    return _merge(samples, [result, tag_decision_accuracy(samples, texts, parser, only_predicted)])


def _span(text: str | None, parser: str) -> tuple[float, float] | None:
    if not isinstance(text, str):
        return None
    span = parsing.parse_span(text) if parser == "strict" else parsing.parse_span_lenient(text)
    return None if span is None or tuple(span) == NORMAL_SPAN else span


def mirrored_samples(samples: Sequence[VideoSample], durations: dict[str, float]) -> list[VideoSample]:
    """Anomalous rows with the time-mirrored span ``[D - end, D - start]`` (``D``: the video's duration).

    Rows without a known duration, or whose mirrored span lies before 0, are left out.
    """
    out = []
    for s in samples:
        if s.span_s is not None and s.video in durations and durations[s.video] - s.span_s[0] > 0:
            d = durations[s.video]
            out.append(dataclasses.replace(s, span_s=(max(0.0, d - s.span_s[1]), d - s.span_s[0])))
    return out


def span_movement(samples: Sequence[VideoSample], clean: Records, probed: Records, *, parser: str = "strict",
                  mirrored: bool = False) -> dict[str, Any]:  # fmt: skip
    """How far TAG spans moved under a probe, on the videos where both runs predicted an anomaly span.

    Returns:
        ``mean_abs_centre_shift_s`` (mean |Δcentre| in seconds, ``None`` without pairs), ``n_span_pairs``;
        with ``mirrored`` (reverse) also ``mirrored_miou`` / ``clean_mirrored_miou``: the mIoU (percent) of
        the probed / clean predictions against the time-mirrored ground truth, over ``n_mirrored`` rows.
    """
    a, b = _texts(clean), _texts(probed)
    shifts = []
    for s in samples:
        one, two = _span(a.get(s.video), parser), _span(b.get(s.video), parser)
        if one is not None and two is not None:
            shifts.append(abs((one[0] + one[1]) / 2 - (two[0] + two[1]) / 2))
    out: dict[str, Any] = {"mean_abs_centre_shift_s": sum(shifts) / len(shifts) if shifts else None,
                           "n_span_pairs": len(shifts)}  # fmt: skip
    if mirrored:
        durations = {r["video"]: r["duration_s"] for r in [*clean, *probed] if r.get("duration_s")}
        rows = mirrored_samples(samples, durations)
        out.update(
            mirrored_miou=tag_metrics(rows, b, parser).metrics["miou"],
            clean_mirrored_miou=tag_metrics(rows, a, parser).metrics["miou"],
            n_mirrored=len(rows),
        )
    return out


def _changed(clean: Records, probed: Records) -> tuple[float | None, int]:
    """Percent of the videos predicted in both runs whose parsed answer (and TAG decision) differ."""
    ok = {r["video"]: r for r in clean if r.get("status") == "ok"}
    pairs = [(ok[r["video"]], r) for r in probed if r.get("status") == "ok" and r["video"] in ok]
    key = lambda r: (r.get("parsed"), r.get("anomaly"))  # noqa: E731
    changed = sum(key(x) != key(y) for x, y in pairs)
    return (100.0 * changed / len(pairs) if pairs else None), len(pairs)


def compare(name: str, seed: int, samples: Sequence[VideoSample], clean: tuple[EvalResult, Records],
            probed: tuple[EvalResult, Records], *, parser: str = "strict", resamples: int = 2000,
            bootstrap_seed: int = 0) -> ProbeResult:  # fmt: skip
    """The :class:`ProbeResult` of probe ``name``: ``clean`` and ``probed`` are ``(scores, records)``."""
    (base, base_records), (result, records) = clean, probed
    keys = list(result.metrics)
    gap = {k: None if base.metrics.get(k) is None or result.metrics[k] is None
           else base.metrics[k] - result.metrics[k] for k in keys}  # fmt: skip
    changed, compared = _changed(base_records, records)
    span = span_movement(samples, base_records, records, parser=parser, mirrored=name == "reverse") \
        if result.task == "tag" else {}  # fmt: skip
    failures = [{"video": r["video"], "error": r.get("error")} for r in records if r.get("status") != "ok"]
    counts = {"rows": len(samples), "predicted": len(records) - len(failures), "failed": len(failures),
              "missing": len(result.missing), "compared": compared}  # fmt: skip
    return ProbeResult(
        name, seed, dict(result.metrics), gap,
        paired_gap_ci95(base.per_sample, result.per_sample, keys, seed=bootstrap_seed, resamples=resamples),
        ci95_by_metric(result.per_sample, keys, seed=bootstrap_seed, resamples=resamples), result.n, counts,
        changed, span, failures=failures,
    )  # fmt: skip


def build_evidence(cfg: EvalConfig, samples: Sequence[VideoSample], clean: tuple[EvalResult, Records],
                   probes: Sequence[Probe], generated: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """The report's ``ci95``, ``probes`` and ``baselines`` (rank 0, once every folder is predicted).

    Args:
        cfg: the run's config (parser, bootstrap, baseline settings).
        samples: the evaluated rows.
        clean: ``(scores, merged records)`` of the clean split.
        probes: the probes run; their folders are merged here.
        generated: probe name → videos generated for it by this run.
    """
    boot = {"seed": cfg.bootstrap_seed, "resamples": cfg.bootstrap_resamples}
    probed: dict[str, ProbeResult] = {}
    for probe in probes:
        out = probe_dir(cfg.output_dir, probe.name)
        records = PredictionStore(out).merge(samples)
        scores = score_split(cfg.task, samples, records, parser=cfg.parser, only_predicted=cfg.only_predicted,
                             decision=cfg.tag_normal_videos)  # fmt: skip
        result = compare(probe.name, probe.seed, samples, clean, (scores, records), parser=cfg.parser,
                         resamples=boot["resamples"], bootstrap_seed=boot["seed"])  # fmt: skip
        result.output_dir, result.counts["generated_this_run"] = str(out), generated[probe.name]
        probed[probe.name] = result
    baselines = compute_baselines(cfg.task, samples, parser=cfg.parser, decision=cfg.tag_normal_videos,
                                  reference=cfg.baseline_annotations)  # fmt: skip
    return {"ci95": ci95_by_metric(clean[0].per_sample, list(clean[0].metrics), **boot), "probes": probed,
            "baselines": baselines}  # fmt: skip
