"""The contract between the decoding backends and their caller: what goes in, what comes out.

Kept apart from :mod:`vau_r1.data.backends` so each backend module (:mod:`vau_r1.data.pyav`) can use it
without importing the registry that imports the backends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Backend", "DecodedFrames", "FrameSelector", "FrameTransform", "PreferNextBackend", "upright"]


@dataclass(frozen=True, eq=False)
class DecodedFrames:
    """What a backend returns: the transformed selected frames and the stream facts used to select them.

    Attributes:
        frames: ``transform(frame)`` of each selected frame, in order.
        indices: the decoded frame indices, one per entry of ``frames``.
        timestamps_s: presentation time of each decoded frame, seconds after the stream's first frame.
        total_frames: frames in the stream.
        video_fps: average frame rate of the stream.
        size: (height, width) of the upright frames, in pixels.
    """

    frames: list[Any]
    indices: tuple[int, ...]
    timestamps_s: tuple[float, ...]
    total_frames: int
    video_fps: float
    size: tuple[int, int]


class PreferNextBackend(RuntimeError):
    """A backend that could read the file declines it because the next backend of the chain reads it better.

    The message says why (e.g. the memory the backend would need). Raised only when the caller said a next
    backend exists; the decode moves on to it, logged and counted as a fallback.
    """


#: ``select(total_frames, video_fps) -> indices``; it may raise :class:`VideoError` (e.g. too few frames).
FrameSelector = Callable[[int, float], Sequence[int]]
#: ``transform(frame)`` on each decoded uint8 RGB frame [H, W, 3] (upright), called as soon as it is decoded.
FrameTransform = Callable[[np.ndarray], Any]
#: ``backend(path, select, transform) -> DecodedFrames``.
Backend = Callable[[str, FrameSelector, FrameTransform], DecodedFrames]


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate an [H, W, 3] frame by ``rotation`` degrees counter-clockwise (a display-matrix angle).

    >>> upright(np.arange(4).reshape(2, 2, 1), 90)[..., 0].tolist()  # top-right corner goes to top-left
    [[1, 3], [0, 2]]
    """
    turns = round(rotation / 90) % 4
    return frame if turns == 0 else np.ascontiguousarray(np.rot90(frame, k=turns))
