"""The ``shifted`` benchmark style: other colours and layout, the same markers, schema, events and determinism."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_bench import _decode, _flags

from vau_r1.bench import (
    MARKER_RGB,
    SCENE_KINDS,
    STYLES,
    BenchmarkConfig,
    BenchmarkInfo,
    plan_benchmark,
    render_scene,
    sample_scene,
    write_benchmark,
)
from vau_r1.data.annotations import COLUMNS, load_annotations
from vau_r1.data.paths import resolve_video
from vau_r1.data.video import VideoConfig, load_clip

#: 56x56 frames with a 14 px marker (one vision patch); the demo itself (vau_r1.demo.data.CLIP) uses 28 px.
DEMO = {"width": 56, "height": 56, "duration_s": 8.0, "fps": 4.0, "span_resolution_s": 0.5, "appearance_cue": True}
SHIFTED = {"num_train": 4, "num_test": 4, "seed": 7, "style": "shifted", **DEMO}


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> BenchmarkInfo:
    return write_benchmark(tmp_path_factory.mktemp("shifted") / "syn", **SHIFTED)


def _marker_frames(frames: np.ndarray, color: tuple[int, int, int], marker_px: int) -> list[int]:
    """Indices of the frames where at least half a marker's area has ``color`` (:func:`test_bench._flags`)."""
    return [i for i, flag in enumerate(_flags(np.ascontiguousarray(frames), color, marker_px)) if flag]


def _near(frames: np.ndarray, colors: list[tuple[int, int, int]], tolerance: int = 12) -> float:
    """Share of pixels within ``tolerance`` on every channel of one of ``colors``."""
    diff = np.abs(frames.astype(int)[..., None, :] - np.array(colors)[None, None, None])
    return float((diff <= tolerance).all(-1).any(-1).mean())


def _normal_frames(seed: int, style: str) -> tuple[np.ndarray, dict[str, int]]:
    scene = sample_scene("normal", width=56, height=56, fps=4.0, num_frames=8, span_s=None, seed=seed, style=style)
    return render_scene(scene), scene.rows


def test_shifted_clips_keep_the_csv_schema_and_load(shifted: BenchmarkInfo) -> None:
    assert shifted.params["style"] == "shifted" and shifted.params["marker_px"] == 14
    for path in (shifted.train_csv, shifted.test_csv):
        assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS)
        table = load_annotations(path)
        assert len(table) == 4 and {s.source for s in table.samples} == {None}
        for task in ("qa", "cls", "reasoning"):
            assert len(table.usable(task)) == 4, table.skipped(task)
        assert {s.anomaly_class for s in table.samples} <= {*MARKER_RGB, "Normal"}


def test_shifted_clips_show_the_class_marker_only_in_the_span(shifted: BenchmarkInfo) -> None:
    samples = load_annotations(shifted.train_csv).samples + load_annotations(shifted.test_csv).samples
    assert any(not s.is_normal for s in samples)
    for sample in samples:
        frames = _decode(resolve_video(shifted.video_dir, sample))
        assert frames.shape == (32, 56, 56, 3)
        for label, color in MARKER_RGB.items():
            seen = _marker_frames(frames, color, 14)
            if label != sample.anomaly_class:
                assert not seen, (sample.video, label)
                continue
            start_s, end_s = sample.span_s
            assert seen == [i for i in range(32) if start_s <= i / 4 + 1e-9 < end_s], (sample.video, sample.span_s)


def test_shifted_marker_fills_a_patch_after_the_tiny_model_preprocessing(shifted: BenchmarkInfo) -> None:
    sample = next(s for s in load_annotations(shifted.train_csv).samples if not s.is_normal)
    clip = load_clip(resolve_video(shifted.video_dir, sample), VideoConfig.from_preset("tiny_cpu"))
    frames = clip.frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert frames.shape[1:3] == (56, 56)
    seen = _marker_frames(frames, MARKER_RGB[sample.anomaly_class], 14)
    inside = [i for i, t_s in enumerate(clip.timestamps_s) if sample.span_s[0] <= t_s + 1e-9 < sample.span_s[1]]
    assert seen and seen == inside


def test_shifted_background_colours_differ_from_the_default_ones() -> None:
    look = {name: [*style.walls, *style.grounds, style.asphalt, style.shelf] for name, style in STYLES.items()}
    for seed in range(4):
        default, _ = _normal_frames(seed, "default")
        moved, _ = _normal_frames(seed, "shifted")
        assert _near(default, look["default"]) > 0.9 and _near(moved, look["shifted"]) > 0.9
        assert _near(moved, look["default"]) < 0.05 and _near(default, look["shifted"]) < 0.05
        assert np.abs(default.astype(int) - moved).max(-1).mean() > 30  # same seed: same objects, other pixels


def test_shifted_camera_puts_the_wall_and_lanes_lower() -> None:
    for seed in range(4):
        rows = {}
        for style in STYLES:
            frames, layout = _normal_frames(seed, style)
            asphalt = (np.abs(frames.astype(int) - np.array(STYLES[style].asphalt)) <= 10).all(-1)  # [T, H, W]
            median = np.median(frames[0].astype(int), axis=1)  # [H, 3]: the background colour of each row
            ground = np.abs(median - np.array(STYLES[style].grounds)[:, None]).max(-1).min(0) <= 10
            rows[style] = (int(np.argmax(ground)), float(np.nonzero(asphalt)[1].mean()))
            assert rows[style][0] == layout["horizon"]
        (horizon, lanes), (shifted_horizon, shifted_lanes) = rows["default"], rows["shifted"]
        assert shifted_horizon >= horizon + 4 and shifted_lanes >= lanes + 4, rows


def test_every_style_keeps_scene_colours_away_from_the_markers() -> None:
    for style in STYLES.values():
        colors = [*style.walls, *style.grounds, style.asphalt, style.shelf, *style.palette.values()]
        assert all(70 <= channel <= 190 for color in colors for channel in color), style
    assert not set(STYLES["default"].palette) & set(STYLES["shifted"].palette)  # colour names tell the style
    for kind in (k for k in SCENE_KINDS if k != "normal"):  # flames, fireballs and smoke on shifted backgrounds
        scene = sample_scene(kind, width=56, height=56, fps=4.0, num_frames=32, span_s=(2.5, 5.0), seed=3,
                             appearance_cue=False, style="shifted")  # fmt: skip
        frames = render_scene(scene)
        assert all(_near(frames, [color], 60) == 0 for color in MARKER_RGB.values()), kind


def test_same_seed_plans_the_same_events_in_both_styles() -> None:
    base = {"num_train": 40, "num_test": 20, "seed": 5}
    default, moved = plan_benchmark(BenchmarkConfig(**base)), plan_benchmark(BenchmarkConfig(**base, style="shifted"))
    changed_cells = set()
    for split in default:
        for a, b in zip(default[split], moved[split], strict=True):
            assert (b.scene.style, a.scene.kind, a.scene.span_s, a.scene.marker_xy) == (
                "shifted", b.scene.kind, b.scene.span_s, b.scene.marker_xy)  # fmt: skip
            assert dataclasses.replace(b.scene, style="default", wall_rgb=a.scene.wall_rgb,
                                       ground_rgb=a.scene.ground_rgb, box_color=a.scene.box_color,
                                       car_colors=a.scene.car_colors) == a.scene  # fmt: skip
            changed_cells |= {column for column in COLUMNS if a.row[column] != b.row[column]}
    assert changed_cells == {"Key Object", "Description", "Reasoning"}  # colour names only; options and letters kept


def test_shifted_style_is_deterministic_per_seed(shifted: BenchmarkInfo, tmp_path: Path) -> None:
    again = write_benchmark(tmp_path / "again", **SHIFTED)
    other = write_benchmark(tmp_path / "other", **{**SHIFTED, "seed": 8})
    assert again.content_sha256 == shifted.content_sha256 != other.content_sha256
    for split in ("train", "test"):
        assert (again.root / f"{split}.csv").read_bytes() == (shifted.root / f"{split}.csv").read_bytes()
    for name in sorted(p.name for p in shifted.video_dir.iterdir()):
        assert np.array_equal(_decode(again.video_dir / name), _decode(shifted.video_dir / name))
        assert not np.array_equal(_decode(other.video_dir / name), _decode(shifted.video_dir / name))


@pytest.mark.parametrize("style", ["foggy", "Shifted", "", None, ["shifted"]])
def test_an_unknown_style_is_refused_naming_the_key_and_the_choices(style: object, tmp_path: Path) -> None:
    allowed = re.escape("a style in ['default', 'shifted']")
    with pytest.raises(ValueError, match=rf"invalid style in .*{allowed}"):
        BenchmarkConfig(style=style)
    with pytest.raises(ValueError, match="invalid style"):
        write_benchmark(tmp_path / "bad", num_train=1, num_test=0, duration_s=4.0, style=style)
    assert not (tmp_path / "bad").exists()


def test_sample_scene_refuses_an_unknown_style() -> None:
    message = "unknown scene style 'foggy'; expected one of ['default', 'shifted']"
    with pytest.raises(ValueError, match=re.escape(message)):
        sample_scene("normal", width=56, height=56, fps=4.0, num_frames=8, span_s=None, seed=0, style="foggy")


def test_style_is_part_of_the_stamp(tmp_path: Path) -> None:
    root, tiny = tmp_path / "syn", {"num_train": 2, "num_test": 1, "duration_s": 4.0}
    first = write_benchmark(root, **tiny)
    with pytest.raises(FileExistsError, match="style"):
        write_benchmark(root, **tiny, style="shifted")
    moved = write_benchmark(root, **tiny, style="shifted", overwrite=True)
    assert not moved.reused and moved.content_sha256 != first.content_sha256
    rows = list(csv.DictReader((root / "train.csv").open(newline="", encoding="utf-8")))
    named = {word for row in rows for word in re.findall(r"\b(\w+) (?:box|car)\b", row["Description"])}
    assert named and named <= set(STYLES["shifted"].palette), named  # the texts name the shifted colours


def test_a_stamp_from_before_styles_is_regenerated_not_refused(tmp_path: Path) -> None:
    root, tiny = tmp_path / "syn", {"num_train": 2, "num_test": 1, "duration_s": 4.0}
    first = write_benchmark(root, **tiny)
    stamp = json.loads((root / "benchmark.json").read_text(encoding="utf-8"))
    del stamp["params"]["style"]
    stamp["version"] = 1
    (root / "benchmark.json").write_text(json.dumps(stamp), encoding="utf-8")
    again = write_benchmark(root, **tiny)  # version 1 wrote the default style: same arguments, older generator
    assert not again.reused and again.content_sha256 == first.content_sha256
    assert json.loads((root / "benchmark.json").read_text(encoding="utf-8"))["params"]["style"] == "default"
