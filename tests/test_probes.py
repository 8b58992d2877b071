"""Pure parts of the eval evidence: derangements, bootstrap intervals, frame permutations, blind baselines."""

from __future__ import annotations

import doctest

import pytest
import torch

import vau_r1.eval.baselines
import vau_r1.eval.probes
import vau_r1.eval.stats
from vau_r1.bench import write_benchmark
from vau_r1.data.annotations import load_annotations
from vau_r1.data.schema import VideoSample
from vau_r1.data.video import VideoClip, VideoConfig, load_clip
from vau_r1.data.vision import patchify, video_inputs
from vau_r1.eval.analysis import mirrored_samples, span_movement
from vau_r1.eval.baselines import compute_baselines, mean_span, normal_option_letter
from vau_r1.eval.probes import Probe, frame_permutation, permute_frames
from vau_r1.eval.stats import bootstrap_ci, ci95_by_metric, derangement, paired_gap_ci95

# -- derangement --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5, 17, 200])
def test_derangement_is_a_permutation_without_fixed_point(n: int) -> None:
    for seed in range(5):
        order = derangement(n, seed)
        assert sorted(order) == list(range(n)) and all(order[i] != i for i in range(n))
    assert derangement(n, 7) == derangement(n, 7)  # seeded


def test_derangement_of_three_draws_both_cycles_and_refuses_one() -> None:
    assert {tuple(derangement(3, seed)) for seed in range(40)} == {(1, 2, 0), (2, 0, 1)}  # the only two
    assert derangement(0, 0) == []
    with pytest.raises(ValueError, match="no derangement of 1"):
        derangement(1, 0)


# -- bootstrap ----------------------------------------------------------------------------------------


def test_bootstrap_of_a_constant_is_degenerate() -> None:
    assert bootstrap_ci([0.7] * 50, seed=3) == pytest.approx((0.7, 0.7))
    assert bootstrap_ci([]) is None and bootstrap_ci([1.0, 0.0], resamples=0) is None


def test_bootstrap_of_fifty_fifty_bernoulli_is_about_ten_points() -> None:
    lo, hi = bootstrap_ci([1.0, 0.0] * 50, seed=0, resamples=2000)  # sd of the mean: 0.05 -> +/- 1.96 * 5 points
    assert 0.38 <= lo <= 0.42 and 0.58 <= hi <= 0.62
    assert bootstrap_ci([1.0, 0.0] * 50, seed=0) == (lo, hi)


def test_ci_by_metric_is_in_percent_and_paired_gap_of_identical_runs_is_zero() -> None:
    per_sample = {f"v{i}": {"accuracy": float(i % 2), "miou": 0.25} for i in range(40)}
    ci = ci95_by_metric(per_sample, ["accuracy", "miou"], seed=1)
    assert ci["miou"] == pytest.approx([25.0, 25.0]) and ci["accuracy"][0] < 50.0 < ci["accuracy"][1]
    assert paired_gap_ci95(per_sample, per_sample, ["accuracy"]) == {"accuracy": [0.0, 0.0]}
    worse = {v: {"accuracy": 0.0} for v in per_sample}
    lo, hi = paired_gap_ci95(per_sample, worse, ["accuracy"], seed=1)["accuracy"]
    assert 30.0 < lo < 50.0 < hi < 70.0


# -- frame probes -------------------------------------------------------------------------------------


def _clip(num_frames: int = 6) -> VideoClip:
    frames = torch.arange(num_frames, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 28, 28).clone()
    return VideoClip(frames, tuple(i / 2 for i in range(num_frames)), tuple(range(num_frames)), 2.0,
                     num_frames / 2, 2.0, num_frames, "x.mp4", (28, 28))  # fmt: skip


def test_frame_permutations() -> None:
    assert frame_permutation(5, "reverse") == [4, 3, 2, 1, 0]
    order = frame_permutation(8, "shuffle", seed=4)
    assert sorted(order) == list(range(8)) and all(order[i] != i for i in range(8))
    assert frame_permutation(8, "shuffle", seed=4) == order != frame_permutation(8, "shuffle", seed=5)
    with pytest.raises(ValueError, match="unknown frame probe 'swap'"):
        frame_permutation(4, "swap")


def test_reversal_acts_on_frames_before_the_temporal_patches() -> None:
    clip = _clip(6)
    flipped = permute_frames(clip, frame_permutation(6, "reverse"))
    assert flipped.frames[:, 0, 0, 0].tolist() == [5, 4, 3, 2, 1, 0]
    assert flipped.timestamps_s == clip.timestamps_s and flipped.sample_fps == clip.sample_fps
    patches, grid = patchify(flipped.frames)  # values per patch: (C, temporal, py, px)
    first = patches[0].view(3, 2, 14, 14)[0, :, 0, 0].tolist()
    assert grid == (3, 2, 2) and first == [5.0, 4.0]  # the pair's frames are reversed too
    with pytest.raises(ValueError, match="not a permutation"):
        permute_frames(clip, [0, 0, 1, 2, 3, 4])


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("syn"), num_train=4, num_test=6, duration_s=4.0, fps=4.0)


def test_probe_loads_the_donor_video_with_the_rows_own_duration(bench) -> None:
    samples = load_annotations(bench.test_csv).samples
    config = VideoConfig.from_preset("tiny_cpu")
    swap = Probe.build("swap", samples, seed=0)
    assert sorted(d.video for d in swap.donors.values()) == sorted(s.video for s in samples)
    assert all(swap.donors[s.video] is not s for s in samples)
    sample = samples[0]
    donor = swap.donors[sample.video]
    path, video, duration, _ = swap.load(sample, bench.video_dir, config)
    expected = video_inputs(load_clip(bench.video_dir / donor.video, config)).pixel_values_videos
    assert path.name == donor.video and torch.equal(video.pixel_values_videos, expected) and duration == 4.0
    assert swap.record_fields(sample) == {"probe": "swap", "probe_video": donor.video}
    _, reversed_video, _, frames = Probe.build("reverse", samples).load(sample, bench.video_dir, config)
    clip = load_clip(bench.video_dir / sample.video, config)
    expected = video_inputs(permute_frames(clip, list(range(8))[::-1])).pixel_values_videos
    assert frames == 8 and torch.equal(reversed_video.pixel_values_videos, expected)
    assert not torch.equal(expected, video_inputs(clip).pixel_values_videos)
    with pytest.raises(ValueError, match="at least 2 rows"):
        Probe.build("swap", samples[:1])


# -- TAG span movement --------------------------------------------------------------------------------


def _tag(video: str, span: tuple[float, float] | None) -> VideoSample:
    return VideoSample(video, None, 1, span_s=span, is_normal=span is None)


def test_span_movement_and_the_mirrored_truth() -> None:
    samples = [_tag("a.mp4", (1.0, 3.0)), _tag("b.mp4", (6.0, 8.0)), _tag("n.mp4", None)]
    clean = [{"video": "a.mp4", "status": "ok", "text": "<glue>[1, 3]</glue>", "duration_s": 10.0},
             {"video": "b.mp4", "status": "ok", "text": "<glue>[6, 8]</glue>", "duration_s": 10.0},
             {"video": "n.mp4", "status": "ok", "text": "<glue>[-1, -1]</glue>", "duration_s": 10.0}]  # fmt: skip
    mirrored = [{**clean[0], "text": "<glue>[7, 9]</glue>"}, {**clean[1], "text": "<glue>[2, 4]</glue>"}, clean[2]]
    moved = span_movement(samples, clean, mirrored, mirrored=True)
    assert moved["mean_abs_centre_shift_s"] == pytest.approx((6.0 + 4.0) / 2) and moved["n_span_pairs"] == 2
    assert moved["mirrored_miou"] == pytest.approx(100.0) and moved["clean_mirrored_miou"] == 0.0
    assert moved["n_mirrored"] == 2  # the normal video has no span to mirror
    assert span_movement(samples, clean, clean)["mean_abs_centre_shift_s"] == 0.0
    assert [s.span_s for s in mirrored_samples(samples, {"a.mp4": 10.0})] == [(7.0, 9.0)]


# -- blind baselines ----------------------------------------------------------------------------------


def _qa(video: str, options: tuple[str, ...], answer: str) -> VideoSample:
    return VideoSample(video, None, 1, question="What happens?", options=options, answer=answer)  # type: ignore[arg-type]


def test_normal_option_letter_needs_exactly_one_match() -> None:
    assert normal_option_letter(_qa("v", ("A fire", "Normal activity", "A crash", "Abnormal"), "B")) == "B"
    assert normal_option_letter(_qa("v", ("A fire", "Normally busy", "A crash", "Abnormal"), "B")) is None
    assert normal_option_letter(_qa("v", ("No anomaly", "Normal", "A crash", "A fall"), "B")) is None


def test_qa_baselines_by_hand() -> None:
    opts = ("No anomaly occurs", "A fire", "A crash", "A fall")
    rows = [_qa("1", opts, "A"), _qa("2", opts, "A"), _qa("3", opts, "B"), _qa("4", opts, "C")]
    baselines = compute_baselines("qa", rows)
    assert baselines["always_normal_option"].metrics == {"accuracy": 50.0}
    best = baselines["best_constant_letter"]
    assert best.metrics == {"accuracy": 50.0} and best.detail["letter"] == "A" and best.n == 4
    unknown = compute_baselines("qa", [*rows, _qa("5", ("A", "B", "C", "D"), "D")])["always_normal_option"]
    assert unknown.metrics == {"accuracy": None} and "1 of 5 rows" in unknown.detail["omitted"]


def test_tag_baselines_by_hand(tmp_path) -> None:
    rows = [_tag("a", (0.0, 4.0)), _tag("b", (2.0, 6.0)), _tag("n1", None), _tag("n2", None)]
    assert mean_span(rows) == (1.0, 5.0)
    baselines = compute_baselines("tag", rows, decision=True)
    assert baselines["always_normal"].metrics == {"miou": 0.0, "r@0.3": 0.0, "r@0.5": 0.0, "r@0.7": 0.0,
                                                  "decision_accuracy": 50.0}  # fmt: skip
    span = baselines["always_anomaly_mean_span"]
    assert span.detail["span_s"] == [1.0, 5.0] and "evaluated split" in span.description
    assert span.metrics["miou"] == pytest.approx(100 * 0.6) and span.metrics["decision_accuracy"] == 50.0
    no_decision = compute_baselines("tag", rows)["always_normal"].metrics
    assert "decision_accuracy" not in no_decision and span.n == 2


def test_tag_baseline_reference_is_a_training_csv(bench) -> None:
    rows = load_annotations(bench.test_csv).usable("tag", purpose="train")
    train = load_annotations(bench.train_csv).usable("tag", purpose="eval")
    span = compute_baselines("tag", rows, reference=str(bench.train_csv))["always_anomaly_mean_span"]
    assert span.detail["span_s"] == pytest.approx(list(mean_span(train)), abs=1e-3)
    assert span.detail["reference"] == str(bench.train_csv) and str(bench.train_csv) in span.description
    assert span.metrics.keys() == {"miou", "r@0.3", "r@0.5", "r@0.7"}


@pytest.mark.parametrize("module", [vau_r1.eval.stats, vau_r1.eval.probes, vau_r1.eval.baselines])
def test_docstring_examples(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
