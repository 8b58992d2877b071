"""The synthetic VAU mini-benchmark: schema, balance, event timing in decoded frames, determinism, reuse."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import inspect
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from vau_r1.bench import (
    MARKER_RGB,
    SCENE_KINDS,
    BenchmarkConfig,
    BenchmarkInfo,
    ClipPlan,
    event_frames,
    plan_benchmark,
    render_scene,
    sample_scene,
    write_benchmark,
)
from vau_r1.bench.plan import SPLITS
from vau_r1.bench.templates import EXTRA_DISTRACTORS, OPTIONS
from vau_r1.data.annotations import COLUMNS, load_annotations
from vau_r1.data.paths import resolve_video
from vau_r1.data.synthetic import event_flags
from vau_r1.data.video import VideoConfig, load_clip

SMALL = {"num_train": 12, "num_test": 8, "duration_s": (6.0, 8.0), "fps": 4.0, "seed": 3}
HEADERS = ("Specific Anomaly Type", "Location", "Key Evidence", "Detailed Explanation", "Cause and Effect",
           "Conclusion")  # fmt: skip


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkInfo:
    return write_benchmark(tmp_path_factory.mktemp("bench") / "syn", **SMALL)


def _decode(path: Path) -> np.ndarray:
    """Every frame, uint8 [T, H, W, 3], with PyAV (independent of the decord path)."""
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _flags(frames: np.ndarray, color: tuple[int, int, int], marker_px: int) -> list[bool]:
    """Frames where at least half a marker's area has ``color`` (±60 per channel)."""
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2)
    return event_flags(tensor, color, min_fraction=0.5 * marker_px**2 / (frames.shape[1] * frames.shape[2]))


def _assert_inside_span(flags: list[bool], times_s: list[float], span_s: tuple[float, float], fps: float) -> None:
    """The marker is seen in one run of frames whose first and last are within one frame of the span's."""
    seen = [i for i, flag in enumerate(flags) if flag]
    expected = [i for i, t_s in enumerate(times_s) if span_s[0] <= t_s + 1e-9 < span_s[1]]
    assert seen and seen == list(range(seen[0], seen[-1] + 1)), f"marker frames {seen}, span {span_s}"
    for got, want in ((seen[0], expected[0]), (seen[-1], expected[-1])):
        assert abs(times_s[got] - times_s[want]) <= 1 / fps + 1e-6, f"marker frames {seen}, span frames {expected}"


def _frames_digest(path: Path) -> str:
    return hashlib.sha256(_decode(path).tobytes()).hexdigest()


def test_csv_has_the_vau_bench_schema_and_every_row_loads(bench: BenchmarkInfo) -> None:
    for split, path, n in (("train", bench.train_csv, 12), ("test", bench.test_csv, 8)):
        assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS)
        raw = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
        table = load_annotations(path)  # no source: synthetic names carry none
        assert len(table) == len(raw) == n and {s.source for s in table.samples} == {None}
        for task in ("qa", "cls", "reasoning"):
            assert len(table.usable(task)) == n, table.skipped(task)
        assert len(table.usable("tag", "train")) == n  # normal rows train on [-1, -1]
        for sample, cells in zip(table.samples, raw, strict=True):
            assert sample.video.startswith(f"syn_{split}_") and resolve_video(bench.video_dir, sample).is_file()
            assert len(set(sample.options)) == 4 and sample.anomaly_class in {*MARKER_RGB, "Normal"}
            heads = re.findall(r"### ([A-Za-z ]+):", sample.reasoning)
            assert tuple(heads) == HEADERS and sample.reasoning.startswith(f"### {HEADERS[0]}: {sample.anomaly_class}")
            if sample.is_normal:
                assert (cells["Start Time"], cells["End Time"]) == ("0.0", "0.0") and sample.span_s is None
            else:
                start_s, end_s = sample.span_s
                assert end_s - start_s >= 1.0 and (start_s / 0.5).is_integer() and (end_s / 0.5).is_integer()
                assert end_s <= len(_decode(resolve_video(bench.video_dir, sample))) / 4.0


def test_options_name_one_event_per_class_and_the_answer_is_the_clip_class(bench: BenchmarkInfo) -> None:
    texts_of = {label: {t for k, c in SCENE_KINDS.items() if c == label for t in OPTIONS[k]} for label in
                {*SCENE_KINDS.values()}}  # fmt: skip
    for sample in load_annotations(bench.train_csv).samples + load_annotations(bench.test_csv).samples:
        classes = [next(c for c, texts in texts_of.items() if option in texts) for option in sample.options]
        assert len(set(classes)) == 4 and "Normal" in classes  # "no anomaly" always offered, never twice
        assert classes["ABCD".index(sample.answer)] == sample.anomaly_class


def test_classes_normals_and_letters_are_balanced() -> None:
    plans = plan_benchmark(BenchmarkConfig(num_train=400, num_test=202, normal_fraction=0.25))
    for split, n in (("train", 400), ("test", 202)):
        labels = Counter(plan.scene.label for plan in plans[split])
        assert labels.pop("Normal") == round(n * 0.25)
        assert set(labels) == set(MARKER_RGB) and max(labels.values()) - min(labels.values()) <= 1
        kinds = Counter(plan.scene.kind for plan in plans[split])
        assert abs(kinds["collision"] - kinds["wrong_way"]) <= 1  # two kinds share Traffic_accident
        letters = Counter(plan.row["Correct Option"] for plan in plans[split])
        assert set(letters) == set("ABCD") and max(letters.values()) - min(letters.values()) <= 1
        for label in ("Normal", "Fire"):  # the letter carries no class information
            per_class = Counter(p.row["Correct Option"] for p in plans[split] if p.scene.label == label)
            assert min(per_class[letter] for letter in "ABCD") >= 0.1 * sum(per_class.values())


def _letter_of(plan: ClipPlan, label: str) -> str | None:
    """Letter of the option naming an event of class ``label`` (``None`` when the clip offers none)."""
    class_of = {text: SCENE_KINDS[kind] for kind, texts in OPTIONS.items() for text in texts}
    return next((letter for i, letter in enumerate("ABCD", 1) if class_of.get(plan.row[f"Option {i}"]) == label), None)


def _position_rule(train: list[tuple[str, bool]], test: list[tuple[str, bool]]) -> tuple[float, float, float]:
    """A position-only classifier: each letter predicts the majority target it had in ``train``.

    Returns its ``test`` accuracy, chance (the share of the test majority target) and a tolerance of 3 binomial
    standard errors of chance over the test clips.
    """
    votes = {letter: Counter(target for pos, target in train if pos == letter) for letter in "ABCD"}
    rule = {letter: count.most_common(1)[0][0] if count else False for letter, count in votes.items()}
    accuracy = sum(rule[pos] == target for pos, target in test) / len(test)
    share = sum(target for _, target in test) / len(test)
    chance = max(share, 1 - share)
    return accuracy, chance, 3 * math.sqrt(chance * (1 - chance) / len(test))


def test_option_positions_do_not_reveal_the_class() -> None:
    """Where a class's option sits (e.g. "no anomaly" at A) predicts whether the clip is of that class at chance."""
    plans = plan_benchmark(BenchmarkConfig(num_train=400, num_test=400))
    for label in dict.fromkeys(SCENE_KINDS.values()):  # Normal first: every clip offers "no anomaly"
        train, test = ([(letter, plan.scene.label == label) for plan in plans[split]
                        if (letter := _letter_of(plan, label))] for split in SPLITS)  # fmt: skip
        assert len(test) >= (400 if label == "Normal" else 200)
        accuracy, chance, tolerance = _position_rule(train, test)
        assert accuracy <= chance + tolerance, (label, accuracy, chance, tolerance)


def test_no_anomaly_option_is_anywhere_in_anomalous_clips() -> None:
    """Among anomalous clips the "no anomaly" distractor sits at each letter a quarter of the time (3 SE)."""
    plans = plan_benchmark(BenchmarkConfig(num_train=400, num_test=400))
    anomalous = [plan for split in SPLITS for plan in plans[split] if plan.scene.kind != "normal"]
    where = Counter(_letter_of(plan, "Normal") for plan in anomalous)
    n = where.total()
    assert n == 400 and set(where) == set("ABCD"), where
    for letter in "ABCD":
        assert abs(where[letter] - n / 4) <= 3 * math.sqrt(n * 0.25 * 0.75), where


def test_written_split_letters_and_normals(bench: BenchmarkInfo) -> None:
    assert bench.counts["train"]["Normal"] == 6 and bench.counts["test"]["Normal"] == 4
    letters = Counter(sample.answer for sample in load_annotations(bench.train_csv).samples)
    assert sorted(letters.values()) == [3, 3, 3, 3]


def test_marker_is_visible_only_inside_the_span(bench: BenchmarkInfo) -> None:
    marker_px = bench.params["marker_px"]
    for path in (bench.train_csv, bench.test_csv):
        for sample in load_annotations(path).samples:
            frames = _decode(resolve_video(bench.video_dir, sample))
            times_s = [i / 4.0 for i in range(len(frames))]
            for label, color in MARKER_RGB.items():
                flags = _flags(frames, color, marker_px)
                if label == sample.anomaly_class:
                    _assert_inside_span(flags, times_s, sample.span_s, fps=4.0)
                else:
                    assert not any(flags), (sample.video, label)


def test_marker_survives_the_tiny_model_preprocessing(bench: BenchmarkInfo) -> None:
    config = VideoConfig.from_preset("tiny_cpu")  # 2 fps, 56x56 frames
    sample = next(s for s in load_annotations(bench.train_csv).samples if not s.is_normal)
    clip = load_clip(resolve_video(bench.video_dir, sample), config)
    frames = clip.frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    side = round(bench.params["marker_px"] * frames.shape[2] / 64)  # 16 px -> 14 px: one vision patch
    flags = _flags(frames, MARKER_RGB[sample.anomaly_class], side)
    _assert_inside_span(flags, list(clip.timestamps_s), sample.span_s, fps=clip.sample_fps)


@pytest.mark.parametrize("kind", [k for k in SCENE_KINDS if k != "normal"])
def test_motion_only_events_happen_in_the_span_without_a_marker(kind: str) -> None:
    scene = sample_scene(kind, width=64, height=64, fps=4.0, num_frames=32, span_s=(2.5, 5.0), seed=11,
                         appearance_cue=False)  # fmt: skip
    normal = dataclasses.replace(scene, kind="normal", span_s=None)
    frames, calm = render_scene(scene), render_scene(normal)
    changed = (frames != calm).any(axis=(1, 2, 3))
    inside = event_frames(scene)
    assert inside.sum() == 10 and changed[inside].mean() >= 0.75 and changed[inside][:4].any()
    if kind != "collision":  # the rear car of a collision is already speeding before the crash
        assert not changed[:10].any()
    for color in MARKER_RGB.values():
        assert not any(_flags(frames, color, 16))


def test_same_seed_same_csv_and_frames_other_seed_differs(tmp_path: Path) -> None:
    tiny = {"num_train": 4, "num_test": 2, "duration_s": 6.0}
    first, again = write_benchmark(tmp_path / "a", **tiny), write_benchmark(tmp_path / "b", **tiny)
    other = write_benchmark(tmp_path / "c", seed=1, **tiny)
    for split in ("train", "test"):
        assert (first.root / f"{split}.csv").read_bytes() == (again.root / f"{split}.csv").read_bytes()
        assert (first.root / f"{split}.csv").read_bytes() != (other.root / f"{split}.csv").read_bytes()
    names = sorted(p.name for p in first.video_dir.iterdir())
    assert names == sorted(p.name for p in other.video_dir.iterdir()) and len(names) == 6
    for name in names:
        digest = _frames_digest(first.video_dir / name)
        assert digest == _frames_digest(again.video_dir / name) != _frames_digest(other.video_dir / name)


def test_train_and_test_are_disjoint(bench: BenchmarkInfo) -> None:
    train, test = (load_annotations(path).samples for path in (bench.train_csv, bench.test_csv))
    assert not {s.video for s in train} & {s.video for s in test}
    digests = [_frames_digest(resolve_video(bench.video_dir, s)) for s in train + test]
    assert len(set(digests)) == len(digests)


def test_identical_call_reuses_other_call_raises_or_overwrites(tmp_path: Path) -> None:
    root, tiny = tmp_path / "syn", {"num_train": 3, "num_test": 1, "duration_s": 6.0}
    first = write_benchmark(root, **tiny)
    video = first.video_dir / "syn_train_0002.mp4"
    stamp_mtime = (root / "benchmark.json").stat().st_mtime_ns
    again = write_benchmark(root, **tiny)
    assert again.reused and not first.reused and again.content_sha256 == first.content_sha256
    assert (root / "benchmark.json").stat().st_mtime_ns == stamp_mtime
    with pytest.raises(FileExistsError, match="num_train"):
        write_benchmark(root, **{**tiny, "num_train": 2})
    smaller = write_benchmark(root, **{**tiny, "num_train": 2}, overwrite=True)
    assert not smaller.reused and sum(smaller.counts["train"].values()) == 2
    assert not video.exists()  # the replaced benchmark's extra clip is gone
    (smaller.video_dir / "syn_train_0000.mp4").unlink()  # a damaged benchmark is regenerated
    repaired = write_benchmark(root, **{**tiny, "num_train": 2})
    assert not repaired.reused and repaired.content_sha256 == smaller.content_sha256
    (root / "test.csv").unlink()
    assert not write_benchmark(root, **{**tiny, "num_train": 2}).reused and (root / "test.csv").is_file()


def test_foreign_csv_in_root_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("Video Name\n")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_benchmark(tmp_path, num_train=1, num_test=0, duration_s=6.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 63}, "width/height"),
        ({"prefix": "msad"}, "prefix"),
        ({"normal_fraction": 1.5}, "normal_fraction"),
        ({"duration_s": 1.0}, "duration_s"),
        ({"duration_s": (9.0, 7.0)}, "duration_s"),
        ({"seed": -1}, "seed"),
        ({"fps": 0.5}, "fps"),
        ({"span_resolution_s": 0.0}, "span_resolution_s"),
        ({"classes": ["cat"]}, "'cat' is not a rendered anomaly class"),
        ({"classes": ["Normal"]}, "normal_fraction"),
    ],
)
def test_invalid_settings_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BenchmarkConfig(**kwargs)


def test_class_selection_and_padding_distractors() -> None:
    assert BenchmarkConfig(classes=("Traffic accident", "fire")).kinds == ["collision", "wrong_way", "fire"]
    plans = plan_benchmark(BenchmarkConfig(num_train=8, num_test=0, classes=("Fire",), normal_fraction=0.5))
    for plan in plans["train"]:
        options = [plan.row[f"Option {i}"] for i in range(1, 5)]
        assert plan.scene.kind in ("fire", "normal") and len(set(options)) == 4
        assert sum(option in EXTRA_DISTRACTORS for option in options) == 2  # only one other class exists


def test_write_benchmark_defaults_match_the_config() -> None:
    params = inspect.signature(write_benchmark).parameters
    for field in dataclasses.fields(BenchmarkConfig):
        assert params[field.name].default == field.default, field.name
