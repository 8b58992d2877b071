"""What a synthetic benchmark contains, decided without rendering: settings, per-clip scenes and CSV rows.

:class:`BenchmarkConfig` holds and checks the settings; :func:`plan_benchmark` turns them into one
:class:`ClipPlan` (scene + 13 CSV cells) per clip. Within a split the normal share is exact, anomaly classes
are balanced (the kinds of one class alternate) and the correct letter is balanced over A–D independently of
the class; the distractors are shuffled around it, so no option position tells the class. ``style`` (see
:mod:`vau_r1.bench.styles`) changes only the look: the same seed plans the same kinds, spans, letters and texts
(bar colour names) in every style. Everything is drawn from ``numpy`` generators seeded by ``(seed, split, clip)``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from vau_r1.bench.scenes import SCENE_KINDS, Scene, sample_scene
from vau_r1.bench.styles import STYLES
from vau_r1.bench.templates import clip_text, distractor_texts, format_s
from vau_r1.data.annotations import COLUMNS
from vau_r1.data.schema import OPTION_LETTERS, SOURCES, canonical_label

__all__ = ["MIN_SPAN_S", "SPLITS", "BenchmarkConfig", "ClipPlan", "plan_benchmark", "resolve_kinds"]

#: Split names, in writing order.
SPLITS: tuple[str, ...] = ("train", "test")
#: Shortest anomaly span, in seconds.
MIN_SPAN_S = 1.0
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


@dataclass(frozen=True)
class BenchmarkConfig:
    """Settings of a benchmark; the arguments of :func:`~vau_r1.bench.generator.write_benchmark` document them."""

    num_train: int = 200
    num_test: int = 100
    seed: int = 0
    width: int = 64
    height: int = 64
    duration_s: float | tuple[float, float] = (6.0, 12.0)
    fps: float = 4.0
    normal_fraction: float = 0.5
    classes: tuple[str, ...] | None = None
    appearance_cue: bool = True
    span_resolution_s: float = 0.5
    prefix: str = "syn"
    marker_px: int | None = None
    style: str = "default"

    def __post_init__(self) -> None:
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))
        low_s, high_s = self.duration_range_s
        side = min(self.width, self.height)
        problems = {
            "num_train/num_test": not (_count(self.num_train) and _count(self.num_test))
            or self.num_train + self.num_test == 0,
            "seed": not _count(self.seed),
            "width/height": not (_count(self.width) and _count(self.height)) or self.width % 2 or self.height % 2
            or side < 32,
            "marker_px": not 8 <= self.marker_side_px <= side // 2,
            "normal_fraction": not 0 <= self.normal_fraction <= 1,
            "span_resolution_s": not 0 < self.span_resolution_s <= MIN_SPAN_S,
            "fps": not (math.isfinite(self.fps) and self.fps * MIN_SPAN_S >= 1),
            "duration_s": not 2 * MIN_SPAN_S <= low_s <= high_s,
            "prefix": not _PREFIX.fullmatch(self.prefix) or self.prefix in SOURCES,
            "style": not (isinstance(self.style, str) and self.style in STYLES),
        }  # fmt: skip
        bad = [name for name, failed in problems.items() if failed]
        if bad:
            raise ValueError(
                f"benchmark settings: invalid {', '.join(bad)} in {self}. Use integer counts >= 0 (not both 0), "
                "an integer seed >= 0, even integer width/height >= 32, 8 <= marker_px <= half the short side, "
                "0 <= normal_fraction <= 1, 0 < span_resolution_s <= 1, fps >= 1, duration_s >= 2 (min <= max), "
                f"a prefix of letters, digits and '-' other than {list(SOURCES)}, and a style in {list(STYLES)}"
            )
        resolve_kinds(self.classes)

    @property
    def duration_range_s(self) -> tuple[float, float]:
        """``(min, max)`` clip length in seconds."""
        if isinstance(self.duration_s, int | float):
            return float(self.duration_s), float(self.duration_s)
        low_s, high_s = self.duration_s
        return float(low_s), float(high_s)

    @property
    def marker_side_px(self) -> int:
        """Marker side: ``marker_px``, else a quarter of the short side (one patch when it spans 4), >= 14."""
        return self.marker_px if self.marker_px is not None else max(14, min(self.width, self.height) // 8 * 2)

    @property
    def kinds(self) -> list[str]:
        """Anomaly scene kinds rendered, in :data:`~vau_r1.bench.scenes.SCENE_KINDS` order."""
        return resolve_kinds(self.classes)

    def to_dict(self) -> dict:
        """JSON-ready settings with defaults resolved (``classes`` → ``kinds``): equal dicts, equal benchmarks."""
        params = {**asdict(self), "duration_s": list(self.duration_range_s), "marker_px": self.marker_side_px}
        params.pop("classes")
        numbers = {key: float(params[key]) for key in ("fps", "normal_fraction", "span_resolution_s")}
        return {**params, **numbers, "kinds": self.kinds}


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def resolve_kinds(classes: Sequence[str] | None) -> list[str]:
    """Anomaly kinds named by ``classes`` (class labels in any spelling, or kind names); ``None``: all.

    >>> resolve_kinds(["traffic accident", "fire"])
    ['collision', 'wrong_way', 'fire']
    """
    if classes is None:
        return [kind for kind in SCENE_KINDS if kind != "normal"]
    wanted: set[str] = set()
    for name in classes:
        label = canonical_label(name)
        kinds = [name] if name in SCENE_KINDS else [k for k, c in SCENE_KINDS.items() if c == label]
        if not kinds or "normal" in kinds:
            valid = sorted({c for c in SCENE_KINDS.values() if c != "Normal"} | set(SCENE_KINDS) - {"normal"})
            raise ValueError(f"classes: {name!r} is not a rendered anomaly class or scene kind; use some of {valid} "
                             "(normal clips come from normal_fraction)")  # fmt: skip
        wanted.update(kinds)
    return [kind for kind in SCENE_KINDS if kind in wanted]


@dataclass(frozen=True)
class ClipPlan:
    """One planned clip: its scene (what ``render_scene`` draws) and its CSV row (``COLUMNS`` → text)."""

    split: str
    scene: Scene
    row: dict[str, str]


def plan_benchmark(config: BenchmarkConfig) -> dict[str, list[ClipPlan]]:
    """Every clip of the benchmark, per split (:data:`SPLITS`), without rendering any; fast."""
    sizes = {"train": config.num_train, "test": config.num_test}
    return {split: _plan_split(config, split, sizes[split]) for split in SPLITS}


def _plan_split(config: BenchmarkConfig, split: str, n: int) -> list[ClipPlan]:
    split_id = SPLITS.index(split)
    rng = np.random.default_rng([config.seed, split_id])
    kinds = _split_kinds(config, n, rng)
    offset = int(rng.integers(4))  # which letters get the extra clips when n is not a multiple of 4
    letters = [OPTION_LETTERS[(i + offset) % 4] for i in rng.permutation(n)]
    plans = []
    for index, (kind, letter) in enumerate(zip(kinds, letters, strict=True)):
        clip_seed = int(np.random.SeedSequence([config.seed, split_id, index]).generate_state(1)[0])
        num_frames, span_s = _timing(config, rng, anomalous=kind != "normal")
        scene = sample_scene(kind, width=config.width, height=config.height, fps=config.fps,
                             num_frames=num_frames, span_s=span_s, seed=clip_seed,
                             appearance_cue=config.appearance_cue, marker_px=config.marker_side_px,
                             style=config.style)  # fmt: skip
        name = f"{config.prefix}_{split}_{index:04d}.mp4"
        plans.append(ClipPlan(split, scene, _row(name, scene, letter, config.kinds, clip_seed)))
    return plans


def _split_kinds(config: BenchmarkConfig, n: int, rng: np.random.Generator) -> list[str]:
    """Kinds of a split's clips, shuffled: exact normal share, classes balanced, kinds alternating in a class."""
    n_normal = round(n * config.normal_fraction) if config.kinds else n
    labels = list(dict.fromkeys(SCENE_KINDS[kind] for kind in config.kinds))
    by_label = {label: [k for k in config.kinds if SCENE_KINDS[k] == label] for label in labels}
    offset, seen, kinds = int(rng.integers(max(len(labels), 1))), Counter(), ["normal"] * n_normal
    for index in range(n - n_normal):
        label = labels[(index + offset) % len(labels)]
        kinds.append(by_label[label][seen[label] % len(by_label[label])])
        seen[label] += 1
    return [kinds[i] for i in rng.permutation(n)]


def _timing(config: BenchmarkConfig, rng: np.random.Generator, anomalous: bool) -> tuple[int, tuple | None]:
    """``(num_frames, span_s)``: a duration on the span grid and, for an anomaly, a grid span of >= 1 s."""
    res, (low_s, high_s) = config.span_resolution_s, config.duration_range_s
    steps = np.arange(math.ceil(low_s / res - 1e-9), math.floor(high_s / res + 1e-9) + 1)
    duration_s = float(rng.choice(steps)) * res if len(steps) else low_s
    num_frames = round(duration_s * config.fps)
    if not anomalous:
        return num_frames, None
    total = math.floor(num_frames / config.fps / res + 1e-9)  # grid steps inside the clip
    shortest = math.ceil(MIN_SPAN_S / res - 1e-9)
    length = int(rng.integers(shortest, max(shortest, total // 2) + 1))
    start = int(rng.integers(1 if total - length >= 1 else 0, total - length + 1))  # not at t=0 when possible
    return num_frames, (round(start * res, 6), round((start + length) * res, 6))


def _row(name: str, scene: Scene, letter: str, kinds: Sequence[str], clip_seed: int) -> dict[str, str]:
    """The 13 CSV cells of one clip; the correct option sits at ``letter``, the shuffled distractors around it."""
    rng = np.random.default_rng([clip_seed, 1])
    text = clip_text(scene, rng)
    options = distractor_texts(scene.kind, kinds, rng)
    options.insert(OPTION_LETTERS.index(letter), text.answer)
    start, end = ("0.0", "0.0") if scene.span_s is None else (format_s(s) for s in scene.span_s)
    cells = [name, text.question, *options, letter, text.key_object, text.description, text.reasoning,
             scene.label, start, end]  # fmt: skip
    return dict(zip(COLUMNS, cells, strict=True))
