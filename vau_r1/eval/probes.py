"""Input probes of ``vau-r1 eval run probe=...``: does the model use its video?

A metric is not evidence that a model looks at the video: always answering the "normal" option, or one
constant span, already scores well on VAU-Bench. A probe re-runs the same rows with the video broken and
the text unchanged; a model that uses its input loses points (the *gap*, clean − probed), a blind one
scores the same.

* ``swap`` — row ``i`` keeps its question, options, answer and stated duration but gets the video of row
  ``derangement(n, probe_seed)[i]`` (no row keeps its own video; rows of the evaluated split);
* ``reverse`` — each clip's sampled frames in reverse order;
* ``shuffle`` — each clip's sampled frames in a seeded random order with no frame in place.

``reverse`` and ``shuffle`` permute the decoded frames (:func:`permute_frames`) *before* they are
patchified, so timestamps, ``second_per_grid_ts``, the frame count and the prompt stay those of the clean
run. With Qwen's temporal patch of 2 a reversal therefore also reverses the two frames inside each patch.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.data.paths import resolve_video
from vau_r1.data.schema import VideoSample
from vau_r1.data.video import VideoClip, VideoConfig, load_clip, probe_video
from vau_r1.data.vision import video_inputs
from vau_r1.eval.stats import derangement

__all__ = ["FRAME_PROBES", "PROBES", "Probe", "frame_permutation", "permute_frames"]

#: Probes that reorder each clip's own frames.
FRAME_PROBES: tuple[str, ...] = ("reverse", "shuffle")
#: Every probe name of the ``probe`` key.
PROBES: tuple[str, ...] = ("swap", *FRAME_PROBES)


def _clip_seed(seed: int, video: str) -> int:
    """A per-clip seed: ``seed`` mixed with a CRC of the video name (stable across runs and resumes)."""
    return (seed * 1_000_003 + zlib.crc32(video.encode("utf-8"))) % 2**63


def frame_permutation(num_frames: int, kind: str, seed: int = 0) -> list[int]:
    """New order of ``num_frames`` sampled frames: ``frames[order]`` is the probed clip.

    ``reverse`` is ``[T-1, ..., 0]``; ``shuffle`` is a seeded derangement (no frame stays in place; one
    frame stays as it is).

    >>> frame_permutation(4, "reverse"), frame_permutation(1, "shuffle")
    ([3, 2, 1, 0], [0])

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind == "reverse":
        return list(range(num_frames))[::-1]
    if kind == "shuffle":
        return list(range(num_frames)) if num_frames < 2 else derangement(num_frames, seed)
    raise ValueError(f"unknown frame probe {kind!r}; expected one of {list(FRAME_PROBES)}")


def permute_frames(clip: VideoClip, order: Sequence[int]) -> VideoClip:
    """The clip with its frames in ``order``; timestamps, indices, fps and duration unchanged.

    Raises:
        ValueError: ``order`` is not a permutation of the clip's frames.
    """
    if sorted(order) != list(range(clip.frames.shape[0])):
        raise ValueError(f"order {list(order)} is not a permutation of {clip.frames.shape[0]} frames")
    return dataclasses.replace(clip, frames=clip.frames[list(order)])


@dataclass(frozen=True)
class Probe:
    """One probe over one evaluated split (picklable, for ``DataLoader`` workers).

    Attributes:
        name: one of :data:`PROBES`.
        seed: ``probe_seed``.
        donors: ``swap`` only: video → the row whose video it gets.
    """

    name: str
    seed: int = 0
    donors: dict[str, VideoSample] = field(default_factory=dict)

    @classmethod
    def build(cls, name: str, samples: Sequence[VideoSample], seed: int = 0) -> Probe:
        """The probe of ``samples`` (``swap``: a seeded derangement of the rows).

        Raises:
            ValueError: unknown name, or ``swap`` with a single row.
        """
        if name not in PROBES:
            raise ValueError(f"unknown probe {name!r}; expected one of {list(PROBES)}")
        if name != "swap":
            return cls(name, seed)
        if len(samples) < 2:
            raise ValueError(f"probe=swap needs at least 2 rows to exchange videos, got {len(samples)}")
        order = derangement(len(samples), seed)
        return cls(name, seed, {s.video: samples[j] for s, j in zip(samples, order, strict=True)})

    def record_fields(self, sample: VideoSample) -> dict[str, Any]:
        """Fields added to each probed record: ``probe``, plus ``probe_video`` (swap's donor) or ``probe_seed``."""
        if self.name == "swap":
            return {"probe": self.name, "probe_video": self.donors[sample.video].video}
        return {"probe": self.name, **({"probe_seed": self.seed} if self.name == "shuffle" else {})}

    def matches(self, record: dict[str, Any], sample: VideoSample) -> bool:
        """Whether a stored record was made by this probe (a resumed swap with other rows has other donors)."""
        return all(record.get(k) == v for k, v in self.record_fields(sample).items())

    def load(self, sample: VideoSample, video_root: str | Path, config: VideoConfig,
             video_processing: Mapping[str, Any] | None = None) -> tuple[Path, Any, float, int]:  # fmt: skip
        """``(path, video inputs, duration stated in the prompt, frames)`` of the probed video of ``sample``.

        ``video_processing``: keyword arguments of :func:`~vau_r1.data.vision.video_inputs` for the model
        (``None``: the Qwen2/2.5-VL processor's).

        Raises:
            FileNotFoundError, VideoError: the (own or donor) video cannot be found or decoded.
        """
        own, processing = resolve_video(video_root, sample), dict(video_processing or {})
        if self.name == "swap":
            path = resolve_video(video_root, self.donors[sample.video])
            clip = load_clip(path, config)
            info = probe_video(own, config.decode_timeout_s, config.backend, tuple(config.fallback_backends))
            duration = info.duration_s  # the row's own length
            return path, video_inputs(clip, **processing), duration, len(clip.timestamps_s)
        clip = load_clip(own, config)
        order = frame_permutation(clip.frames.shape[0], self.name, _clip_seed(self.seed, sample.video))
        return own, video_inputs(permute_frames(clip, order), **processing), clip.duration_s, len(clip.timestamps_s)
