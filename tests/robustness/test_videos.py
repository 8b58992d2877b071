"""Faults found in video decoding: valid kinds decord refuses, variable frame rate, a 4K clip's memory.

Every video is written here with PyAV. Kinds decord 0.6 cannot read (90°/270° rotation, 16×3000, AV1 in mp4
and webm, MPEG-TS, Theora, GIF, raw H.264) must load through the PyAV fallback, upright, logged and counted;
a kind whose encoder this PyAV lacks is skipped with the reason. Variable-frame-rate clips must carry the
frames' presentation times, and a 60 s 4K clip must decode in bounded memory (slow).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vau_r1.data.video import VideoConfig, VideoError, backend_counts, load_clip

av = pytest.importorskip("av", reason="PyAV writes the test videos")

TINY = VideoConfig(min_pixels=784, max_pixels=3136, total_pixels=None)
RED = (255, 0, 0)


def _image(width: int, height: int, index: int) -> np.ndarray:
    """Grey frame, red top-left quadrant (to check orientation), brightness changing with ``index``."""
    image = np.full((height, width, 3), 60 + 4 * index, dtype=np.uint8)
    image[: height // 2, : width // 2] = RED
    return image


def write_video(
    path: Path,
    codec: str,
    *,
    container_format: str | None = None,
    size: tuple[int, int] = (64, 48),
    frames: int = 16,
    rate: int = 8,
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    pts: list[int] | None = None,
) -> Path:
    """Encode ``frames`` frames; ``pts`` (in ms) gives explicit, possibly irregular presentation times."""
    try:
        av.codec.Codec(codec, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this PyAV/FFmpeg build has no {codec} encoder (codecs_available lacks it)")
    width, height = size
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if pts is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)  # counter-clockwise degrees, in the display matrix
        for index in range(len(pts) if pts is not None else frames):
            frame = av.VideoFrame.from_ndarray(_image(width, height, index), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[index], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


KINDS = {
    "rotated_90.mp4": {"codec": "libx264", "rotation": 90},
    "rotated_270.mp4": {"codec": "libx264", "rotation": -90},
    "tall_16x3000.mp4": {"codec": "libx264", "size": (16, 3000), "frames": 8},
    "av1.mp4": {"codec": "libsvtav1", "size": (64, 64)},
    "av1.webm": {"codec": "libsvtav1", "size": (64, 64)},
    "mpegts.ts": {"codec": "libx264", "container_format": "mpegts"},
    "theora.ogv": {"codec": "libtheora"},
    "animated.gif": {"codec": "gif", "pix_fmt": "rgb8"},
    "raw.h264": {"codec": "libx264", "container_format": "h264"},
}


def _red_corner(frame: np.ndarray) -> str:
    """Which quadrant of a [3, H, W] frame is red: ``top-left``, ``bottom-left``, ..."""
    height, width = frame.shape[1:]
    quads = {
        "top-left": frame[:, : height // 2, : width // 2], "top-right": frame[:, : height // 2, width // 2 :],
        "bottom-left": frame[:, height // 2 :, : width // 2], "bottom-right": frame[:, height // 2 :, width // 2 :],
    }  # fmt: skip
    redness = {name: float(q[0].mean() - q[1].mean()) for name, q in quads.items()}
    return max(redness, key=redness.get)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_valid_kinds_decord_refuses_load_through_pyav(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_video(tmp_path / name, **KINDS[name])
    before = backend_counts()
    with caplog.at_level(logging.WARNING, logger="vau_r1.data.video"):
        clip = load_clip(path, TINY)
    assert clip.backend == "pyav" and f"decord did not decode {path}" in caplog.text
    after = backend_counts()
    assert after.get("pyav", 0) == before.get("pyav", 0) + 1
    assert after.get("fallback", 0) == before.get("fallback", 0) + 1
    assert clip.frames.shape[0] == len(clip.frame_indices) >= 4 and clip.frames.shape[1] == 3
    assert list(clip.timestamps_s) == sorted(clip.timestamps_s) and clip.timestamps_s[0] == 0.0


@pytest.mark.parametrize(("rotation", "corner"), [(90, "bottom-left"), (-90, "top-right"), (180, "bottom-right")])
@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation: int, corner: str, backend: str) -> None:
    """A 64×48 frame with display rotation shows upright: 48×64 for ±90°, red quadrant moved accordingly."""
    path = write_video(tmp_path / "rotated.mp4", "libx264", rotation=rotation)
    clip = load_clip(path, VideoConfig(min_pixels=784, max_pixels=64 * 64, total_pixels=None, backend=backend))
    assert clip.original_size == ((48, 64) if rotation == 180 else (64, 48))
    assert all(_red_corner(frame.numpy()) == corner for frame in clip.frames)
    assert clip.backend == ("pyav" if rotation != 180 or backend == "pyav" else "decord")  # decord: 180° only


def test_unreadable_file_names_each_backend_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError) as info:
        load_clip(path, TINY)
    message = str(info.value)
    assert str(path) in message and "decord failed: RuntimeError: Error reading" in message
    assert "pyav failed: InvalidDataError" in message
    assert info.value.cause == "corrupt"  # FFmpeg itself says "Invalid data found"
    with pytest.raises(VideoError, match=r"\(unreadable\): no backend could read it: decord failed") as decord_only:
        load_clip(path, VideoConfig(fallback_backends=()))  # decord's error does not say the data is damaged
    assert "pyav" not in str(decord_only.value)


VFR_MS = [0, 40, 80, 120, 400, 440, 480, 900, 1000, 1500, 1540, 1580, 2000, 2100, 2200, 2600, 2640, 2680, 2720, 2990]


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_variable_frame_rate_timestamps_are_presentation_times(tmp_path: Path, backend: str) -> None:
    path = write_video(tmp_path / "vfr.mp4", "libx264", pts=VFR_MS, rate=25)
    clip = load_clip(path, VideoConfig(fps=4.0, min_pixels=784, max_pixels=3136, total_pixels=None, backend=backend))
    assert clip.backend == backend
    expected = [VFR_MS[i] / 1000 for i in clip.frame_indices]
    assert clip.timestamps_s == pytest.approx(expected, abs=1e-4)  # decord reports float32 seconds
    average_guess = [i / clip.video_fps for i in clip.frame_indices]  # the old index / avg_fps: 0.5 s off
    assert max(abs(a - b) for a, b in zip(average_guess, expected, strict=True)) > 0.4


def test_constant_frame_rate_timestamps_are_unchanged(tmp_path: Path) -> None:
    """CFR: presentation times within 1 ms of index / fps are reported as exactly that (bit-for-bit as before)."""
    path = write_video(tmp_path / "ntsc.mp4", "libx264", rate=30, frames=45)
    for backend in ("decord", "pyav"):
        clip = load_clip(path, VideoConfig(min_pixels=784, max_pixels=3136, total_pixels=None, backend=backend))
        assert clip.timestamps_s == tuple(i / clip.video_fps for i in clip.frame_indices)


def test_pyav_gives_decord_pixels_on_an_ordinary_file(tmp_path: Path) -> None:
    path = write_video(tmp_path / "plain.mp4", "libx264", size=(160, 120), frames=30)
    decord_clip, pyav_clip = (load_clip(path, VideoConfig(backend=name)) for name in ("decord", "pyav"))
    assert decord_clip.frame_indices == pyav_clip.frame_indices
    assert (decord_clip.frames == pyav_clip.frames).all()


# ---------------------------------------------------------------- memory (slow)

_MEASURE = """
import json, resource, sys
from vau_r1.data.video import VideoConfig, load_clip
import dataclasses
config = dataclasses.replace(VideoConfig.from_preset("paper_train"), backend=sys.argv[2], decode_timeout_s=900)
clip = load_clip(sys.argv[1], config)
usage = {who: resource.getrusage(getattr(resource, who)).ru_maxrss / 1024
         for who in ("RUSAGE_SELF", "RUSAGE_CHILDREN")}
print(json.dumps({"shape": list(clip.frames.shape), "backend": clip.backend, **usage}))
"""


@pytest.fixture(scope="module")
def clip_4k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of 3840×2160 at 2 fps, flat grey with a moving box: cheap to encode (~12 s), 120 frames."""
    path = tmp_path_factory.mktemp("4k") / "4k.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=2, options={"preset": "ultrafast", "crf": "35"})
        stream.width, stream.height, stream.pix_fmt = 3840, 2160, "yuv420p"
        base = np.full((2160, 3840, 3), 90, dtype=np.uint8)
        for index in range(120):
            image = base.copy()
            image[500:800, index * 29 : index * 29 + 300] = RED
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "reader"), [("pyav", "pyav"), ("decord", "pyav")])
def test_4k_minute_decodes_in_bounded_memory(clip_4k: Path, backend: str, reader: str) -> None:
    """Peak RSS of the loading process plus its decode worker stays under 1.5 GB (was 6.5 GB in one process).

    With ``backend=decord`` every frame of this 2 fps source is sampled, so decord (which decodes ahead of a
    slow consumer, ~2.6 GB here) declines it and its PyAV fallback reads it.
    """
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(clip_4k), backend], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["shape"] == [120, 3, 140, 280] and result["backend"] == reader
    assert result["RUSAGE_SELF"] + result["RUSAGE_CHILDREN"] < 1536, result


def test_decord_declines_a_dense_read_of_large_frames_only_when_a_fallback_exists(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-ahead rule on a small clip, with the limit lowered below its frames' size."""
    from vau_r1.data import backends

    path = write_video(tmp_path / "dense.mp4", "libx264", size=(160, 120), frames=12)
    dense = VideoConfig(min_pixels=784, max_pixels=3136, total_pixels=None, fps=24.0, max_frames=12)
    monkeypatch.setattr(backends, "READ_AHEAD_LIMIT_BYTES", 160 * 120 * 3)  # one frame
    with caplog.at_level(logging.WARNING, logger="vau_r1.data.video"):
        clip = load_clip(path, dense)
    assert clip.backend == "pyav" and "declined: 12 of 12 frames of 160x120 sampled" in caplog.text
    alone = load_clip(path, VideoConfig(**{**dense.to_dict(), "fallback_backends": []}))
    assert alone.backend == "decord" and (alone.frames == clip.frames).all()
    sparse = load_clip(path, VideoConfig(**{**dense.to_dict(), "fps": 2.0, "min_frames": 4}))
    assert sparse.backend == "decord"
