"""Write a synthetic VAU mini-benchmark: mp4 clips plus train/test CSVs in the 13-column VAU-Bench schema.

Layout::

    <root>/train.csv, <root>/test.csv      VAU-Bench columns (vau_r1.data.annotations.COLUMNS), in order
    <root>/videos/syn_train_0000.mp4 ...   one clip per row (see vau_r1.bench.scenes for the scene kinds)
    <root>/benchmark.json                  settings, generator version, counts and a content hash

Video names carry no ``msad_``/``ucf_``/``ecva_`` prefix, so :func:`~vau_r1.data.annotations.load_annotations`
gives every row ``source=None`` (load without ``source``; train without a ``data.sources`` filter). Normal rows
have ``0.0,0.0`` times; anomaly spans lie on a ``span_resolution_s`` grid inside the clip and last at least 1 s.

The same arguments give byte-identical CSVs and identical decoded frames (the mp4 bytes depend on the local
x264 build). An identical call into a finished root reuses it; a different one raises unless ``overwrite=True``.
Fresh clips (e.g. for GRPO after SFT) come from another ``seed`` into another root; an out-of-distribution test
set from ``style="shifted"`` (other colours and camera layout, same classes, markers and schema; see
:mod:`vau_r1.bench.styles`), e.g. with another ``duration_s`` as well.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vau_r1.bench.plan import SPLITS, BenchmarkConfig, plan_benchmark
from vau_r1.bench.scenes import render_scene
from vau_r1.data.annotations import COLUMNS

__all__ = ["GENERATOR_VERSION", "STAMP", "BenchmarkInfo", "write_benchmark", "write_frames"]

logger = logging.getLogger(__name__)

#: Bumped whenever the same arguments would give different files (2: shuffled distractors, ``style``).
GENERATOR_VERSION = 2
#: Name of the record that marks a finished benchmark.
STAMP = "benchmark.json"
# Single-threaded, no B-frames: the same frames always encode the same way on one x264 build.
_X264_OPTIONS = {"crf": "18", "preset": "ultrafast", "threads": "1", "bf": "0"}
# Settings added after version 1, with the value that an older stamp (which lacks them) was written with.
_ADDED_PARAMS = {"style": "default"}


@dataclass(frozen=True)
class BenchmarkInfo:
    """What :func:`write_benchmark` wrote (or found).

    Attributes:
        root: benchmark folder; ``train_csv``/``test_csv``/``video_dir`` lie in it.
        params: resolved settings, as stored in ``benchmark.json`` (:meth:`BenchmarkConfig.to_dict`).
        counts: ``{split: {class: clips}}``.
        content_sha256: hash of both CSVs and every mp4 (names and bytes), in a fixed order.
        reused: ``True`` when an identical earlier call's files were kept.
    """

    root: Path
    train_csv: Path
    test_csv: Path
    video_dir: Path
    params: dict[str, Any]
    counts: dict[str, dict[str, int]]
    content_sha256: str
    reused: bool


def write_frames(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Encode uint8 RGB frames ``[T, H, W, 3]`` (even H, W) to an H.264 mp4 at ``fps`` frames per second."""
    import av

    rate = Fraction(fps).limit_denominator(1001)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = dict(_X264_OPTIONS)
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts, frame.time_base = index, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def write_benchmark(
    root: str | Path, *, num_train: int = 200, num_test: int = 100, seed: int = 0, width: int = 64,
    height: int = 64, duration_s: float | tuple[float, float] = (6.0, 12.0), fps: float = 4.0,
    normal_fraction: float = 0.5, classes: Sequence[str] | None = None, appearance_cue: bool = True,
    span_resolution_s: float = 0.5, prefix: str = "syn", marker_px: int | None = None, style: str = "default",
    overwrite: bool = False,
) -> BenchmarkInfo:  # fmt: skip
    """Write (or reuse) a synthetic benchmark under ``root``; the layout is in the module docstring.

    Args:
        root: output folder (created).
        num_train, num_test: clips per split.
        seed: seeds everything; the same arguments give the same CSV bytes and decoded frames.
        width, height: frame size in pixels (even, at least 32).
        duration_s: clip length in seconds, fixed or a ``(min, max)`` range sampled on the span grid.
        fps: frame rate of the clips (at least 1).
        normal_fraction: share of normal clips in each split (rounded to a whole number of clips).
        classes: anomaly classes (``"Fire"``, ``"Traffic accident"``, …) or scene kinds (``"wrong_way"``) to
            render; ``None`` for all kinds of :data:`~vau_r1.bench.scenes.SCENE_KINDS`.
        appearance_cue: draw the class-coloured marker during each event (off: motion-only variant).
        span_resolution_s: grid of span boundaries and durations, in seconds (at most 1).
        prefix: first part of the video names, ``<prefix>_<split>_<index>.mp4``.
        marker_px: side of the marker square (default: a quarter of the short side, at least 14).
        style: ``"default"``, or ``"shifted"`` for an out-of-distribution look: other wall, ground, asphalt and
            car/box colours and a lower camera (lanes moved), with the same classes, marker colours and grid, and
            text/CSV schema (:data:`~vau_r1.bench.styles.STYLES`). The same seed gives the same events, spans and
            letters in both styles.
        overwrite: replace a benchmark written with other arguments (its listed files are deleted).

    Returns:
        The written or reused benchmark.

    Raises:
        ValueError: an unusable argument (the message names it).
        FileExistsError: ``root`` holds another benchmark or VAU CSVs, and ``overwrite`` is off.
    """
    config = BenchmarkConfig(num_train=num_train, num_test=num_test, seed=seed, width=width, height=height,
                             duration_s=duration_s, fps=fps, normal_fraction=normal_fraction, classes=classes,
                             appearance_cue=appearance_cue, span_resolution_s=span_resolution_s, prefix=prefix,
                             marker_px=marker_px, style=style)  # fmt: skip
    params = config.to_dict()
    root = Path(root)
    plans = plan_benchmark(config)
    names = [plan.row["Video Name"] for split in SPLITS for plan in plans[split]]
    stamp = _reusable_stamp(root, params, names, overwrite)
    if stamp is not None:
        return _info(root, params, stamp["counts"], stamp["content_sha256"], reused=True)
    _clear(root)
    root.mkdir(parents=True, exist_ok=True)  # a split with no clip still gets its CSV
    for split in SPLITS:
        for plan in plans[split]:
            write_frames(root / "videos" / plan.row["Video Name"], render_scene(plan.scene), config.fps)
        with (root / f"{split}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(plan.row for plan in plans[split])
    counts = {split: dict(sorted(Counter(p.scene.label for p in plans[split]).items())) for split in SPLITS}
    kind_counts = {split: dict(sorted(Counter(p.scene.kind for p in plans[split]).items())) for split in SPLITS}
    digest = _content_sha256(root, names)
    record = {"generator": "vau_r1.bench", "version": GENERATOR_VERSION, "params": params, "counts": counts,
              "kind_counts": kind_counts, "content_sha256": digest}  # fmt: skip
    (root / STAMP).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")  # last: marks completion
    logger.info("wrote %d clips to %s (%s)", len(names), root, counts)
    return _info(root, params, counts, digest, reused=False)


def _info(root: Path, params: dict, counts: dict, digest: str, reused: bool) -> BenchmarkInfo:
    return BenchmarkInfo(root, root / "train.csv", root / "test.csv", root / "videos", params, counts, digest, reused)


def _content_sha256(root: Path, names: Sequence[str]) -> str:
    """sha256 over both CSVs and every named mp4 (name and bytes), in a fixed order."""
    digest = hashlib.sha256()
    for path in [root / f"{split}.csv" for split in SPLITS] + [root / "videos" / name for name in names]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _reusable_stamp(root: Path, params: dict, names: Sequence[str], overwrite: bool) -> dict | None:
    """The stored record when ``root`` holds this exact, intact benchmark; raise on a foreign one."""
    stamp_path = root / STAMP
    if not stamp_path.is_file():
        found = [f"{split}.csv" for split in SPLITS if (root / f"{split}.csv").exists()]
        if found and not overwrite:
            raise FileExistsError(f"{root} holds {found} but no {STAMP}: not a benchmark written here. Choose an "
                                  "empty root, or pass overwrite=True to replace those files")  # fmt: skip
        return None
    stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    stored = {**_ADDED_PARAMS, **stamp.get("params", {})}
    if stored != json.loads(json.dumps(params)):
        changed = {key: (stored.get(key), params.get(key)) for key in sorted(set(stored) | set(params))
                   if stored.get(key) != params.get(key)}  # fmt: skip
        if not overwrite:
            raise FileExistsError(
                f"{root} holds a benchmark written with other arguments (stored → asked: {changed}); "
                "pass overwrite=True to replace it, or write into another root"
            )
        return None
    if stamp.get("version") != GENERATOR_VERSION:
        logger.warning("%s was written by generator version %s; regenerating with version %s",
                       root, stamp.get("version"), GENERATOR_VERSION)  # fmt: skip
        return None
    files = [root / f"{split}.csv" for split in SPLITS] + [root / "videos" / name for name in names]
    missing = [path.name for path in files if not path.is_file()]
    if missing or _content_sha256(root, names) != stamp.get("content_sha256"):
        logger.warning("%s: files changed since generation (missing: %s); regenerating", root, missing[:5])
        return None
    return stamp


def _clear(root: Path) -> None:
    """Remove the stamp, then the CSVs and every video they list (a partial write never looks finished)."""
    (root / STAMP).unlink(missing_ok=True)
    for split in SPLITS:
        table = root / f"{split}.csv"
        if table.is_file():
            with table.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    name = Path(row.get("Video Name") or "_").name  # never leave videos/
                    (root / "videos" / name).unlink(missing_ok=True)
            table.unlink()
