"""Frame-count and resolution rules of Qwen2/2.5-VL video input, as configuration.

The rules reproduce ``qwen_vl_utils.vision_process`` (``smart_nframes``, ``smart_resize``, the
per-frame pixel budget of ``fetch_video``; ``docs/paper.md`` §3), but every constant is a
:class:`VideoConfig` field, so train and eval settings live in config and in the run manifest.
Nothing here decodes video; :mod:`vau_r1.data.video` does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from vau_r1.data.backends import BACKENDS
from vau_r1.resources import config_dir

#: Frames per temporal patch of the Qwen2/2.5-VL vision encoder (``second_per_grid_ts = 2 / sample_fps``).
TEMPORAL_PATCH_SIZE = 2
#: ``qwen_vl_utils.VIDEO_TOTAL_PIXELS`` default: 90% of a 128k-token context, in pixels.
QWEN_DEFAULT_TOTAL_PIXELS = int(128000 * 28 * 28 * 0.9)
#: Repository folder holding the ``video`` config group (``vau_r1/configs/video/<name>.yaml``).
PRESET_DIR = config_dir("video")


@dataclass(frozen=True)
class VideoConfig:
    """How to sample and size a video; defaults are the qwen-vl-utils defaults.

    Exactly one of ``fps`` and ``nframes`` is set. ``min_frames``/``max_frames`` apply in fps mode only,
    as in qwen-vl-utils. Pixel counts are per frame except ``total_pixels``, the per-video budget
    (``None`` disables it). ``fallback_backends`` are tried, in order, on files ``backend`` cannot read.
    """

    fps: float | None = 2.0
    nframes: int | None = None
    min_frames: int = 4
    max_frames: int = 768
    frame_factor: int = 2
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    total_pixels: int | None = QWEN_DEFAULT_TOTAL_PIXELS
    image_factor: int = 28
    max_ratio: float = 200.0
    decode_timeout_s: float = 60.0
    max_retries: int = 0
    on_error: Literal["raise", "skip"] = "raise"
    backend: str = "decord"
    fallback_backends: tuple[str, ...] = ("pyav",)

    def __post_init__(self) -> None:
        if (self.fps is None) == (self.nframes is None):
            raise ValueError(
                f"video.fps={self.fps} and video.nframes={self.nframes}: set exactly one of them "
                "(to sample a fixed number of frames, set video.fps=null and video.nframes=N)"
            )
        if self.fps is not None:
            _require_number(self, "fps", 0.0)
            object.__setattr__(self, "fps", float(self.fps))
        if self.nframes is not None:
            _require_int(self, "nframes", minimum=self.frame_factor)
        for key, minimum in (("frame_factor", 1), ("min_frames", 1), ("image_factor", 1), ("max_retries", 0)):
            _require_int(self, key, minimum)
        _require_int(self, "max_frames", minimum=self.min_frames)
        _require_int(self, "min_pixels", minimum=1)
        _require_int(self, "max_pixels", minimum=self.min_pixels)
        if self.total_pixels is not None:
            _require_int(self, "total_pixels", minimum=1)
        _require_number(self, "max_ratio", 1.0, inclusive=True)
        _require_number(self, "decode_timeout_s", 0.0)
        _require(self.on_error in ("raise", "skip"), "on_error", self.on_error, "'raise' or 'skip'")
        _require(self.backend in BACKENDS, "backend", self.backend, f"one of {sorted(BACKENDS)}")
        fallbacks = self.fallback_backends
        ok = isinstance(fallbacks, (list, tuple)) and all(name in BACKENDS for name in fallbacks)
        _require(ok, "fallback_backends", fallbacks, f"a list of {sorted(BACKENDS)} (or [] for none)")
        object.__setattr__(self, "fallback_backends", tuple(fallbacks))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VideoConfig:
        """Build from a mapping (a preset file, a Hydra ``cfg.video``); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown video config key(s) {unknown}; valid keys are {sorted(known)}")
        return cls(**dict(values))

    @classmethod
    def from_preset(cls, name: str) -> VideoConfig:
        """Load the preset ``vau_r1/configs/video/<name>.yaml`` (``paper_train``, ``tiny_cpu``, ...)."""
        from omegaconf import OmegaConf

        path = PRESET_DIR / f"{name}.yaml"
        if not path.is_file():
            available = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
            raise FileNotFoundError(f"no video preset {name!r} at {path}; available presets: {available}")
        return cls.from_dict(OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {})

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON values (tuples as lists), for the run manifest and train/eval parity checks."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _require(ok: bool, key: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"video.{key}={value!r} is invalid: expected {expected}; fix video.{key} in the config")


def _require_int(config: VideoConfig, key: str, minimum: int) -> None:
    value = getattr(config, key)
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    _require(ok, key, value, f"an integer >= {minimum}")


def _require_number(config: VideoConfig, key: str, low: float, inclusive: bool = False) -> None:
    """A finite number ``> low`` (``>= low`` when ``inclusive``)."""
    value = getattr(config, key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= low if inclusive else value > low)
    _require(ok, key, value, f"a finite number {'>=' if inclusive else '>'} {low:g}")


# ---------------------------------------------------------------- sampling math (pure, no decoding)


def smart_nframes(config: VideoConfig, total_frames: int, video_fps: float) -> int:
    """Number of frames to sample, exactly as qwen-vl-utils ``smart_nframes``.

    fps mode: ``floor_f(min(max(duration_s * fps, ceil_f(min_frames)), floor_f(min(max_frames, total_frames)),
    total_frames))`` with ``f = frame_factor``; nframes mode: ``round_f(nframes)``.

    Raises:
        ValueError: the result is outside ``[frame_factor, total_frames]`` (video too short).

    >>> smart_nframes(VideoConfig(), total_frames=300, video_fps=30.0)  # 10 s at 2 fps
    20
    """
    factor = config.frame_factor
    if config.nframes is not None:
        nframes = round(config.nframes / factor) * factor
    else:
        min_frames = math.ceil(config.min_frames / factor) * factor
        max_frames = math.floor(min(config.max_frames, total_frames) / factor) * factor
        wanted = total_frames / video_fps * config.fps
        nframes = math.floor(min(max(wanted, min_frames), max_frames, total_frames) / factor) * factor
    if not factor <= nframes <= total_frames:
        raise ValueError(
            f"nframes should be in the interval [{factor}, {total_frames}] but got {nframes}: the video has too "
            f"few frames for frame_factor={factor}" + ("" if config.nframes is None else " (lower video.nframes)")
        )
    return nframes


def frame_indices(total_frames: int, nframes: int) -> list[int]:
    """``round(linspace(0, total_frames - 1, nframes))`` in float32 as qwen-vl-utils (deterministic).

    >>> frame_indices(48, 12)
    [0, 4, 9, 13, 17, 21, 26, 30, 34, 38, 43, 47]
    """
    return torch.linspace(0, total_frames - 1, nframes).round().long().tolist()


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: float = 4 * 28 * 28,
    max_pixels: float = 16384 * 28 * 28,
    max_ratio: float = 200.0,
) -> tuple[int, int]:
    """Frame size (h, w): multiples of ``factor``, ``min_pixels <= h*w <= max_pixels``, aspect kept (qwen rule).

    Raises:
        ValueError: ``max(h, w) / min(h, w) > max_ratio``.

    >>> smart_resize(360, 640, 28, 128 * 28 * 28, 768 * 28 * 28)
    (364, 644)
    """
    if max(height, width) / min(height, width) > max_ratio:
        raise ValueError(
            f"absolute aspect ratio must be at most {max_ratio}, got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def frame_pixel_budget(config: VideoConfig, nframes: int) -> tuple[int, float]:
    """Per-frame ``(min_pixels, max_pixels)`` for a clip of ``nframes`` (qwen-vl-utils ``fetch_video``).

    ``max = min(max_pixels, max(min(max_pixels, total_pixels / nframes * frame_factor), int(min_pixels * 1.05)))``.
    qwen-vl-utils uses its constant ``VIDEO_MAX_PIXELS`` (768*28*28) inside; here ``max_pixels`` takes that
    role too, which is identical whenever ``max_pixels <= 768*28*28`` (every paper preset). The outer ``min``
    keeps ``h*w <= max_pixels``. Without ``total_pixels`` the budget is just ``max_pixels``.

    >>> frame_pixel_budget(VideoConfig(min_pixels=16 * 28 * 28, total_pixels=3584 * 28 * 28), nframes=20)
    (12544, 280985.6)
    """
    if config.total_pixels is None:
        return config.min_pixels, config.max_pixels
    shared = min(config.max_pixels, config.total_pixels / nframes * config.frame_factor)
    return config.min_pixels, min(config.max_pixels, max(shared, int(config.min_pixels * 1.05)))


def clip_size(config: VideoConfig, nframes: int, height: int, width: int) -> tuple[int, int]:
    """Resized (h, w) of every frame of an ``nframes`` clip from a ``height`` × ``width`` video."""
    min_pixels, max_pixels = frame_pixel_budget(config, nframes)
    return smart_resize(height, width, config.image_factor, min_pixels, max_pixels, config.max_ratio)
