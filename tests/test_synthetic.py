"""The synthetic video writer: known length, rate and size, frame-accurate events, determinism."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from vau_r1.data.synthetic import event_flags, expected_event_flags, write_synthetic_video


def _decode_all(path: Path) -> tuple[torch.Tensor, float]:
    """Every frame with PyAV (independent of decord) as float [T, 3, H, W], and the stream's average rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        rate = float(stream.average_rate)
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float(), rate


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_known_length_rate_size_and_event_frames(tmp_path: Path, codec: str) -> None:
    path = write_synthetic_video(tmp_path / "v.mp4", 5.0, 10.0, 64, 48, event=(1.2, 2.5), codec=codec)
    frames, rate = _decode_all(path)
    assert frames.shape == (50, 3, 48, 64) and rate == 10.0
    # frame i shows the square iff 1.2 <= i / 10 < 2.5: frames 12..24, frame-accurate
    assert event_flags(frames) == expected_event_flags([i / 10 for i in range(50)], (1.2, 2.5))
    assert sum(event_flags(frames)) == 13


def test_ntsc_rate_and_custom_colour(tmp_path: Path) -> None:
    path = write_synthetic_video(tmp_path / "v.mp4", 2.0, 30000 / 1001, 96, 64, event=(0.5, 1.0), color=(0, 0, 255))
    frames, rate = _decode_all(path)
    assert frames.shape == (60, 3, 64, 96) and Fraction(rate).limit_denominator(1001) == Fraction(30000, 1001)
    expected = expected_event_flags([i * 1001 / 30000 for i in range(60)], (0.5, 1.0))
    assert event_flags(frames, color=(0, 0, 255)) == expected and not any(event_flags(frames, color=(255, 0, 0)))


def test_normal_video_has_no_event_and_grey_background(tmp_path: Path) -> None:
    frames, _ = _decode_all(write_synthetic_video(tmp_path / "n.mp4", 2.0, 8.0))
    assert not any(event_flags(frames))
    assert (frames.max(dim=1).values - frames.min(dim=1).values).max() <= 12  # R ≈ G ≈ B everywhere
    assert frames[0].std() > 3  # not a flat image: gradient + noise


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    def write(name: str, seed: int) -> bytes:
        return write_synthetic_video(tmp_path / name, 2.0, 8.0, event=(0.5, 1.5), seed=seed).read_bytes()

    assert write("a.mp4", 0) == write("b.mp4", 0)
    assert write("c.mp4", 1) != write("a.mp4", 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 63}, "even sizes"),
        ({"height": 8}, "even sizes"),
        ({"codec": "vp9"}, "not supported"),
        ({"event": (3.0, 2.0)}, "start_s < end_s"),
        ({"fps": 0}, "must be positive"),
    ],
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_synthetic_video(tmp_path / "bad.mp4", **kwargs)
