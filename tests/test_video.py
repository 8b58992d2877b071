"""VideoConfig, the qwen-vl-utils sampling math, load_clip on synthetic videos, and the failure policy."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from vau_r1.data import video
from vau_r1.data.synthetic import event_flags, expected_event_flags, write_synthetic_video
from vau_r1.data.video import (
    PRESET_DIR,
    SkipStats,
    VideoConfig,
    VideoError,
    frame_indices,
    frame_pixel_budget,
    load_clip,
    load_clip_or_skip,
    probe_video,
    smart_nframes,
    smart_resize,
)

EVENT = (2.0, 4.0)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s, 8 fps (48 frames), 64×48, red square during [2, 4) s."""
    return write_synthetic_video(tmp_path_factory.mktemp("v") / "event.mp4", 6.0, 8.0, 64, 48, event=EVENT)


# ---------------------------------------------------------------- config


def test_config_defaults_are_qwen_vl_utils_defaults() -> None:
    config = VideoConfig()
    assert (config.fps, config.nframes, config.min_frames, config.max_frames, config.frame_factor) == (
        2.0,
        None,
        4,
        768,
        2,
    )
    assert (config.min_pixels, config.max_pixels, config.image_factor) == (128 * 28 * 28, 768 * 28 * 28, 28)
    assert config.total_pixels == int(128000 * 28 * 28 * 0.9) == 90316800
    assert (config.max_ratio, config.on_error, config.backend, config.max_retries) == (200.0, "raise", "decord", 0)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"nframes": 8}, "video.nframes"),  # fps keeps its default: both set
        ({"fps": None}, "video.fps"),  # neither set
        ({"fps": -1.0}, "video.fps"),
        ({"fps": "2"}, "video.fps"),  # a string from a hand-edited file
        ({"max_ratio": 0.5}, "video.max_ratio"),
        ({"fps": None, "nframes": 1}, "video.nframes"),  # below frame_factor
        ({"max_pixels": 100, "min_pixels": 200}, "video.max_pixels"),
        ({"max_frames": 2}, "video.max_frames"),  # below min_frames
        ({"min_frames": True}, "video.min_frames"),  # a bool is not a count
        ({"total_pixels": 0}, "video.total_pixels"),
        ({"decode_timeout_s": 0}, "video.decode_timeout_s"),
        ({"max_retries": -1}, "video.max_retries"),
        ({"on_error": "ignore"}, "video.on_error"),
        ({"backend": "opencv"}, "video.backend"),
        ({"fallback_backends": ["opencv"]}, "video.fallback_backends"),
        ({"fallback_backends": "pyav"}, "video.fallback_backends"),  # a string, not a list
    ],
)
def test_config_validation_names_key_and_fix(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named) as info:
        VideoConfig(**kwargs)
    assert "fix" in str(info.value) or "set" in str(info.value)


def test_config_int_fps_becomes_float_and_round_trips() -> None:
    config = VideoConfig(fps=1, total_pixels=None)
    assert isinstance(config.fps, float)
    assert VideoConfig.from_dict(config.to_dict()) == config


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown video config key\(s\) \['max_pixel'\].*valid keys"):
        VideoConfig.from_dict({"max_pixel": 10})


def test_paper_presets_match_the_spec() -> None:
    train = VideoConfig.from_preset("paper_train")
    assert (train.fps, train.total_pixels, train.min_pixels, train.max_pixels) == (
        2.0,
        3584 * 28 * 28,
        16 * 28 * 28,
        768 * 28 * 28,
    )
    qa = VideoConfig.from_preset("paper_eval_qa")
    assert (qa.fps, qa.max_pixels, qa.min_pixels, qa.total_pixels) == (1.0, 768 * 28 * 28, 128 * 28 * 28, 90316800)
    tag = VideoConfig.from_preset("paper_eval_tag")
    assert (tag.fps, tag.max_pixels, tag.min_pixels, tag.total_pixels) == (2.0, 768 * 28 * 28, 256 * 28 * 28, 90316800)
    tiny = VideoConfig.from_preset("tiny_cpu")
    assert tiny.max_pixels <= 56 * 56 and tiny.fps == 2.0


def test_unknown_preset_lists_available() -> None:
    with pytest.raises(FileNotFoundError, match="paper_train"):
        VideoConfig.from_preset("paper_trian")


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
def test_preset_files_document_every_field_and_compose_in_hydra(preset: str) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    lines = (PRESET_DIR / f"{preset}.yaml").read_text().splitlines()
    keys = [(i, line.split(":")[0]) for i, line in enumerate(lines) if line and not line.startswith(("#", " "))]
    assert [k for _, k in keys] == [f.name for f in dataclasses.fields(VideoConfig)]
    assert all(lines[i - 1].startswith("#") for i, _ in keys), "each key needs a comment line above it"
    with initialize_config_dir(config_dir=str(PRESET_DIR.parent), version_base=None):
        cfg = compose(overrides=[f"+video={preset}"])
    assert VideoConfig.from_dict(OmegaConf.to_container(cfg.video)) == VideoConfig.from_preset(preset)


# ---------------------------------------------------------------- sampling math (hand-computed)


@pytest.mark.parametrize(
    ("kwargs", "total_frames", "video_fps", "expected"),
    [
        ({}, 300, 30.0, 20),  # 10 s × 2 fps
        ({}, 48, 8.0, 12),  # 6 s × 2 fps
        ({}, 10, 30.0, 4),  # 0.33 s: min_frames floor
        ({}, 3, 30.0, 2),  # max_frames = floor2(min(768, 3)) = 2
        ({}, 108000, 30.0, 768),  # 1 h: max_frames cap
        ({"fps": 1.0}, 251, 25.0, 10),  # 10.04 → floor2 → 10
        ({}, 259, 25.0, 20),  # 20.72 → 20
        ({"min_frames": 5, "fps": 0.1}, 300, 30.0, 6),  # ceil2(5) = 6 beats 1 wanted frame
        ({"max_frames": 7}, 300, 30.0, 6),  # floor2(7) = 6
        ({"fps": None, "nframes": 7}, 100, 30.0, 8),  # round(3.5) = 4 → 8 (Python rounding, as qwen)
        ({"fps": None, "nframes": 5}, 100, 30.0, 4),  # round(2.5) = 2 → 4
        ({"fps": None, "nframes": 16}, 16, 30.0, 16),
    ],
)
def test_smart_nframes_hand_computed(kwargs: dict, total_frames: int, video_fps: float, expected: int) -> None:
    assert smart_nframes(VideoConfig(**kwargs), total_frames, video_fps) == expected


@pytest.mark.parametrize(("kwargs", "total_frames"), [({}, 1), ({"fps": None, "nframes": 16}, 10)])
def test_smart_nframes_raises_like_qwen_when_bounds_cannot_hold(kwargs: dict, total_frames: int) -> None:
    with pytest.raises(ValueError, match=rf"nframes should be in the interval \[2, {total_frames}\]"):
        smart_nframes(VideoConfig(**kwargs), total_frames, 30.0)


@pytest.mark.parametrize(
    ("total_frames", "nframes", "expected"),
    [
        (48, 12, [0, 4, 9, 13, 17, 21, 26, 30, 34, 38, 43, 47]),
        (48, 8, [0, 7, 13, 20, 27, 34, 40, 47]),  # 47/7 = 6.714 per step
        (10, 4, [0, 3, 6, 9]),
        (10, 3, [0, 4, 9]),  # 4.5 rounds half to even, as torch.round in qwen-vl-utils
        (5, 2, [0, 4]),
    ],
)
def test_frame_indices_hand_computed(total_frames: int, nframes: int, expected: list[int]) -> None:
    assert frame_indices(total_frames, nframes) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((360, 640, 28, 128 * 28 * 28, 768 * 28 * 28), (364, 644)),  # round to 28s, within budget
        ((1080, 1920, 28, 128 * 28 * 28, 768 * 28 * 28), (560, 1008)),  # beta = sqrt(2073600/602112)
        ((48, 64, 28, 128 * 28 * 28, 768 * 28 * 28), (280, 392)),  # upscaled to the min_pixels floor
        ((48, 64, 28, 784, 3136), (56, 56)),
        ((10, 10, 28, 784, 3136), (28, 28)),  # max(factor, round(...)) keeps one block
        ((1080, 1920, 28, 12544, 13171), (84, 140)),  # floor branch may end below min_pixels (qwen rule)
    ],
)
def test_smart_resize_hand_computed(args: tuple, expected: tuple[int, int]) -> None:
    assert smart_resize(*args) == expected


def test_smart_resize_rejects_extreme_aspect_ratio() -> None:
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2500)
    assert smart_resize(10, 2500, max_ratio=300) is not None


def test_frame_pixel_budget_hand_computed() -> None:
    train = VideoConfig.from_preset("paper_train")
    assert frame_pixel_budget(train, 20) == (12544, 2809856 / 20 * 2)  # 280985.6: the total budget binds
    assert frame_pixel_budget(train, 1000) == (12544, 13171)  # int(12544 * 1.05): the floor binds
    assert frame_pixel_budget(VideoConfig(), 20) == (100352, 602112)  # max_pixels binds
    assert frame_pixel_budget(VideoConfig(total_pixels=None), 4000) == (100352, 602112)


# ---------------------------------------------------------------- loading synthetic videos


def test_fps_mode_clip(clip_path: Path) -> None:
    clip = load_clip(clip_path, VideoConfig())
    frames = clip.frames
    assert frames.dtype == torch.float32 and frames.shape == (12, 3, 280, 392)
    assert torch.equal(frames, frames.round()) and frames.min() >= 0 and frames.max() <= 255
    assert clip.frame_indices == (0, 4, 9, 13, 17, 21, 26, 30, 34, 38, 43, 47)
    assert clip.timestamps_s == tuple(i / 8.0 for i in clip.frame_indices)
    assert all(a < b for a, b in zip(clip.timestamps_s, clip.timestamps_s[1:], strict=False))
    assert clip.timestamps_s[0] >= 0 and clip.timestamps_s[-1] < clip.duration_s == 6.0
    assert (clip.video_fps, clip.total_frames, clip.original_size) == (8.0, 48, (48, 64))
    assert clip.sample_fps == pytest.approx(12 / 48 * 8.0) and clip.second_per_grid_ts == pytest.approx(1.0)


def test_nframes_mode_clip(clip_path: Path) -> None:
    clip = load_clip(clip_path, VideoConfig(fps=None, nframes=8))
    assert clip.frame_indices == (0, 7, 13, 20, 27, 34, 40, 47)
    assert clip.sample_fps == pytest.approx(8 / 48 * 8.0)


def _assert_event_matches(clip: video.VideoClip, event: tuple[float, float] | None, color=(255, 0, 0)) -> None:
    """Event visible exactly where timestamps fall in the window; a mismatch may only touch a boundary."""
    seen, expected = event_flags(clip.frames, color), expected_event_flags(clip.timestamps_s, event)
    wrong = [i for i, (s, e) in enumerate(zip(seen, expected, strict=True)) if s != e]
    boundaries = [i for i in range(1, len(expected)) if expected[i] != expected[i - 1]]
    assert all(any(abs(i - b) <= 1 for b in boundaries) for i in wrong), (seen, expected)
    assert sum(seen) >= sum(expected) - 2


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_event_visible_exactly_in_its_window(tmp_path: Path, codec: str) -> None:
    path = write_synthetic_video(tmp_path / "e.mp4", 6.0, 8.0, 64, 48, event=(1.5, 3.0), codec=codec, seed=2)
    clip = load_clip(path, VideoConfig(fps=4.0))
    assert expected_event_flags(clip.timestamps_s, (1.5, 3.0)).count(True) >= 4
    _assert_event_matches(clip, (1.5, 3.0))


def test_event_with_ntsc_frame_rate(tmp_path: Path) -> None:
    path = write_synthetic_video(tmp_path / "ntsc.mp4", 4.0, 30000 / 1001, 64, 48, event=(1.0, 2.0), color=(0, 255, 0))
    clip = load_clip(path, VideoConfig(fps=2.0, min_pixels=784, max_pixels=3136, total_pixels=None))
    assert clip.video_fps == pytest.approx(29.97, abs=0.01) and len(clip.frame_indices) == 8
    _assert_event_matches(clip, (1.0, 2.0), color=(0, 255, 0))


def test_normal_video_shows_no_event(tmp_path: Path) -> None:
    clip = load_clip(write_synthetic_video(tmp_path / "n.mp4", 4.0, 8.0, 64, 48), VideoConfig())
    assert not any(event_flags(clip.frames))


@pytest.mark.parametrize(
    "config",
    [
        VideoConfig(),
        VideoConfig.from_preset("paper_train"),
        VideoConfig(min_pixels=784, total_pixels=12 * 3136 // 2),  # total budget binds: 3136 px a frame
        VideoConfig(min_pixels=784, max_pixels=2000, total_pixels=None),  # max_pixels binds
        VideoConfig(min_pixels=784, total_pixels=784),  # min_pixels floor binds
    ],
)
def test_pixel_budget_respected(tmp_path_factory: pytest.TempPathFactory, config: VideoConfig) -> None:
    path = tmp_path_factory.getbasetemp() / "budget.mp4"
    if not path.exists():
        write_synthetic_video(path, 6.0, 8.0, 160, 120, event=EVENT)
    clip = load_clip(path, config)
    nframes, (height, width) = clip.frames.shape[0], clip.frames.shape[-2:]
    _, max_pixels = frame_pixel_budget(config, nframes)
    assert height % 28 == 0 and width % 28 == 0 and height * width <= max_pixels
    floor_binds = max_pixels == int(config.min_pixels * 1.05)
    if config.total_pixels is not None and not floor_binds:
        assert nframes * height * width / config.frame_factor <= config.total_pixels * (1 + 1e-9)
    assert nframes % 2 == 0 and config.min_frames <= nframes <= config.max_frames


def test_loading_is_deterministic(clip_path: Path) -> None:
    first, second = load_clip(clip_path), load_clip(clip_path)
    assert first.frame_indices == second.frame_indices and torch.equal(first.frames, second.frames)


def test_probe_video(clip_path: Path) -> None:
    assert probe_video(clip_path) == video.VideoInfo(num_frames=48, fps=8.0, duration_s=6.0, width=64, height=48)


# ---------------------------------------------------------------- failure policy


def _assert_video_error(path: Path, cause: str, config: VideoConfig | None = None) -> VideoError:
    with pytest.raises(VideoError) as info:
        load_clip(path, config or VideoConfig())
    err = info.value
    assert isinstance(err, RuntimeError) and err.cause == cause
    assert str(path) in str(err) and "Fix:" in str(err)
    return err


def test_missing_file(tmp_path: Path) -> None:
    _assert_video_error(tmp_path / "nope.mp4", "missing")
    _assert_video_error(tmp_path, "missing")  # a folder is not a video


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.mp4"
    path.write_bytes(
        torch.randint(0, 256, (5000,), generator=torch.Generator().manual_seed(0)).byte().numpy().tobytes()
    )
    err = _assert_video_error(path, "corrupt")
    assert "decord failed" in str(err)


def test_truncated_mp4(tmp_path: Path, clip_path: Path) -> None:
    data = clip_path.read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    _assert_video_error(path, "corrupt")


def test_empty_file_and_zero_frame_stream(tmp_path: Path) -> None:
    import av

    (tmp_path / "empty.mp4").touch()
    _assert_video_error(tmp_path / "empty.mp4", "empty")
    zero = tmp_path / "zero.mp4"
    with av.open(str(zero), "w") as container:  # a valid container whose video stream has no frames
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    assert zero.stat().st_size > 0
    err = _assert_video_error(zero, "unreadable")  # no stream at all: not called corrupt
    assert "decord failed" in str(err) and "pyav failed" in str(err) and "no video stream" in str(err)


def test_zero_frames_reported_by_backend(monkeypatch: pytest.MonkeyPatch, clip_path: Path) -> None:
    def no_frames(path: str, select: video.FrameSelector, transform: video.FrameTransform) -> video.DecodedFrames:
        select(0, 25.0)  # what a reader with an empty index sees
        raise AssertionError("select must refuse zero frames")

    monkeypatch.setitem(video.BACKENDS, "decord", no_frames)
    _assert_video_error(clip_path, "no_frames")


def test_too_short_video(tmp_path: Path) -> None:
    one_frame = write_synthetic_video(tmp_path / "one.mp4", duration_s=0.125, fps=8.0)
    _assert_video_error(one_frame, "too_short")


class _HangingBackend:
    """A decoder that hangs (30 s), logging ``start <pid> <live pids of earlier calls>`` to a file per call.

    It runs in the decode worker process, so calls are counted through the file, not in memory.
    """

    def __init__(self, log: Path) -> None:
        self.log = log

    def __call__(self, path: str, select: video.FrameSelector, transform: video.FrameTransform) -> None:
        earlier = [int(line.split()[1]) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        alive = [pid for pid in earlier if _alive(pid)]
        with self.log.open("a") as handle:
            handle.write(f"start {os.getpid()} {alive}\n")
        time.sleep(30.0)
        raise RuntimeError("released")

    def pids(self) -> list[int]:
        return [int(line.split()[1]) for line in self.log.read_text().splitlines()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("max_retries", [0, 2])
def test_decoder_hang_is_killed_and_retries_never_overlap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_path: Path, max_retries: int
) -> None:
    hanging = _HangingBackend(tmp_path / "calls.log")
    monkeypatch.setitem(video.BACKENDS, "decord", hanging)
    start = time.monotonic()
    config = VideoConfig(decode_timeout_s=0.5, max_retries=max_retries)
    err = _assert_video_error(clip_path, "timeout", config)
    with pytest.raises(VideoError, match=r"within 0\.5 s"):
        probe_video(clip_path, timeout_s=0.5)
    assert time.monotonic() - start < 10.0, "a hang must not block for long"
    assert len(hanging.pids()) == max_retries + 2 and "decode_timeout_s" in str(err)  # +1 for the probe
    assert not any(_alive(pid) for pid in hanging.pids()), "a timed-out decode must be stopped"
    assert all(line.endswith(" []") for line in hanging.log.read_text().splitlines()), "attempts overlapped"


def test_crashing_decoder_falls_back(monkeypatch: pytest.MonkeyPatch, clip_path: Path) -> None:
    def segfault(path: str, select: video.FrameSelector, transform: video.FrameTransform) -> None:
        os.kill(os.getpid(), signal.SIGSEGV)

    monkeypatch.setitem(video.BACKENDS, "decord", segfault)
    clip = load_clip(clip_path, VideoConfig())
    assert clip.backend == "pyav" and clip.frames.shape[0] == 12
    with pytest.raises(VideoError, match=r"decord failed: WorkerDied: .*signal 11"):
        load_clip(clip_path, VideoConfig(fallback_backends=()))


def test_retry_recovers_from_one_transient_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_path: Path
) -> None:
    real, calls = video.BACKENDS["decord"], tmp_path / "calls"

    def flaky(path: str, select: video.FrameSelector, transform: video.FrameTransform) -> video.DecodedFrames:
        with calls.open("a") as handle:  # runs in the decode worker: count through a file
            handle.write("x")
        if calls.read_text() == "x":
            raise OSError("transient read error")
        return real(path, select, transform)

    monkeypatch.setitem(video.BACKENDS, "decord", flaky)
    no_fallback = {"fallback_backends": ()}
    assert load_clip(clip_path, VideoConfig(max_retries=1, **no_fallback)).frames.shape[0] == 12
    assert calls.read_text() == "xx"
    calls.unlink()
    with pytest.raises(VideoError, match="transient read error"):
        load_clip(clip_path, VideoConfig(max_retries=0, **no_fallback))
    assert calls.read_text() == "x"


def test_skip_policy_counts_and_never_substitutes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stats, config = SkipStats(), VideoConfig(on_error="skip")
    (tmp_path / "empty.mp4").touch()
    with caplog.at_level(logging.WARNING, logger="vau_r1.data.video"):
        assert load_clip_or_skip(tmp_path / "missing.mp4", config, stats) is None
        assert load_clip_or_skip(tmp_path / "empty.mp4", config, stats) is None
    assert stats.counts == {"missing": 1, "empty": 1} and stats.total == 2
    assert stats.paths == [str(tmp_path / "missing.mp4"), str(tmp_path / "empty.mp4")]
    assert stats.as_metrics() == {"video/skipped": 2, "video/skipped/empty": 1, "video/skipped/missing": 1}
    assert "missing.mp4" in caplog.text and "(missing)" in caplog.text
    with pytest.raises(VideoError):
        load_clip_or_skip(tmp_path / "missing.mp4", VideoConfig(on_error="raise"), stats)
    assert stats.total == 2
    other = SkipStats()
    other.record(VideoError("x.mp4", "timeout", "slow", "fix"))
    stats.update(other)
    assert stats.counts["timeout"] == 1 and stats.total == 3


def test_skip_policy_returns_the_clip_when_it_loads(clip_path: Path) -> None:
    stats = SkipStats()
    clip = load_clip_or_skip(clip_path, VideoConfig(on_error="skip"), stats)
    assert clip is not None and clip.path == str(clip_path) and stats.total == 0


def test_probe_failures(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="missing"):
        probe_video(tmp_path / "nope.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError, match="corrupt"):
        probe_video(tmp_path / "bad.mp4")


def test_register_backend_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        video.register_backend("decord", video.BACKENDS["decord"])


def test_video_error_survives_pickling() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(VideoError("a.mp4", "timeout", "slow", "raise the limit")))
    assert (err.path, err.cause, str(err)) == (
        "a.mp4",
        "timeout",
        "cannot load video a.mp4 (timeout): slow. Fix: raise the limit",
    )


def test_probe_with_unknown_backend(clip_path: Path) -> None:
    with pytest.raises(ValueError, match="registered backends"):
        probe_video(clip_path, backend="torchcodec")


@pytest.mark.parametrize(
    "config",
    [VideoConfig(), VideoConfig.from_preset("paper_train"), VideoConfig(min_pixels=784, total_pixels=8 * 3136)],
)
def test_frames_bitwise_equal_to_one_batch_decode_and_resize(clip_path: Path, config: VideoConfig) -> None:
    """Decoding sampled frames one by one and resizing each equals qwen-vl-utils' get_batch + stacked resize."""
    import decord

    reader = decord.VideoReader(str(clip_path))
    indices = frame_indices(len(reader), smart_nframes(config, len(reader), reader.get_avg_fps()))
    raw = torch.from_numpy(reader.get_batch(indices).asnumpy()).permute(0, 3, 1, 2)
    expected = video.resize_frames(raw, video.clip_size(config, len(indices), raw.shape[-2], raw.shape[-1]))
    clip = load_clip(clip_path, config)
    assert clip.backend == "decord" and clip.frame_indices == tuple(indices)
    assert clip.frames.dtype == expected.dtype and torch.equal(clip.frames, expected)
    assert clip.frames.stride() == expected.stride()  # same memory layout too
    assert clip.timestamps_s == tuple(i / reader.get_avg_fps() for i in indices)
