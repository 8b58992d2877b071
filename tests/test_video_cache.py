"""The decode cache on disk (vau_r1.data.cache): exact hits, misses on any change, torn and corrupt entries,
concurrent writers, ``vau-r1 data cache`` and a training dataset that reads it on its second run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import vau_r1.data.cache as cache_module
from vau_r1.cli import main as cli_main
from vau_r1.data.cache import cache_counts, entry_dir, entry_key, file_fingerprint, load_clip_cached, sweep_partial
from vau_r1.data.config import DataConfig
from vau_r1.data.mini_bench import write_mini_bench
from vau_r1.data.synthetic import write_synthetic_video
from vau_r1.data.video import VideoClip, VideoConfig, load_clip
from vau_r1.engine.distributed import ShardedBatchSampler
from vau_r1.sections import ConfigError
from vau_r1.tasks.dataset import VideoPromptDataset, load_task_samples, resumable_batches

TINY = VideoConfig(fps=2.0, min_pixels=784, max_pixels=3136, total_pixels=None)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_synthetic_video(tmp_path_factory.mktemp("v") / "a.mp4", 3.0, 8.0, 64, 48, event=(1.0, 2.0))


@pytest.fixture(scope="module")
def decoded(video) -> VideoClip:
    return load_clip(video, TINY)


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return write_mini_bench(tmp_path_factory.mktemp("mini"), num_clips=2).parent  # returns the CSV


def counts_since(before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in cache_counts().items() if v - before.get(k, 0)}


def assert_same_clip(got: VideoClip, want: VideoClip) -> None:
    assert got.frames.dtype == want.frames.dtype == torch.float32 and torch.equal(got.frames, want.frames)
    for f in dataclasses.fields(VideoClip):
        if f.name != "frames":
            a, b = getattr(got, f.name), getattr(want, f.name)
            assert a == b and type(a) is type(b), f.name
            if isinstance(a, tuple):
                assert [type(x) for x in a] == [type(x) for x in b], f.name


def test_a_hit_equals_a_fresh_decode_bit_for_bit(video, decoded, tmp_path):
    before = cache_counts()
    assert_same_clip(load_clip_cached(video, TINY, tmp_path), decoded)  # miss: decodes and writes
    assert_same_clip(load_clip_cached(video, TINY, tmp_path), decoded)  # hit: read back
    assert counts_since(before) == {"miss": 1, "write": 1, "hit": 1}
    folder = entry_dir(tmp_path, entry_key(file_fingerprint(video), TINY))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["settings"]["video"]["fps"] == 2.0 and meta["source"]["size"] == video.stat().st_size


def test_settings_that_change_the_frames_miss_and_timeouts_do_not(video, tmp_path):
    load_clip_cached(video, TINY, tmp_path)
    before = cache_counts()
    other = dataclasses.replace(TINY, fps=4.0)
    assert_same_clip(load_clip_cached(video, other, tmp_path), load_clip(video, other))
    load_clip_cached(video, dataclasses.replace(TINY, decode_timeout_s=5.0, max_retries=2), tmp_path)
    assert counts_since(before) == {"miss": 1, "write": 1, "hit": 1}
    fingerprint = file_fingerprint(video)  # decord and PyAV can differ by a level: another entry
    assert entry_key(fingerprint, dataclasses.replace(TINY, backend="pyav")) != entry_key(fingerprint, TINY)


def test_a_changed_file_misses_and_a_copy_hits(video, tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(video.read_bytes())
    load_clip_cached(path, TINY, tmp_path / "c")
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(path.read_bytes())
    before = cache_counts()
    assert load_clip_cached(copy, TINY, tmp_path / "c").path == str(copy)  # same content: hit, its own path
    write_synthetic_video(path, 3.0, 8.0, 64, 48, event=(0.5, 1.5), seed=1)  # replaced in place
    assert_same_clip(load_clip_cached(path, TINY, tmp_path / "c"), load_clip(path, TINY))
    assert counts_since(before) == {"hit": 1, "miss": 1, "write": 1}


def _entry(video: Path, cache_dir: Path) -> Path:
    load_clip_cached(video, TINY, cache_dir)
    return entry_dir(cache_dir, entry_key(file_fingerprint(video), TINY))


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_a_corrupt_entry_is_logged_and_decoded_again(video, decoded, tmp_path, caplog, damage):
    folder = _entry(video, tmp_path)
    frames = folder / "frames.npy"
    data = bytearray(frames.read_bytes())
    if damage == "truncate":
        frames.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[-7] ^= 0x01  # one pixel one level off: same size and shape, only the CRC sees it
        frames.write_bytes(bytes(data))
    else:
        (folder / "meta.json").write_text('{"key": ')
    before = cache_counts()
    with caplog.at_level(logging.WARNING, logger="vau_r1.data.cache"):
        assert_same_clip(load_clip_cached(video, TINY, tmp_path), decoded)
    assert "corrupt" in caplog.text and counts_since(before) == {"corrupt": 1, "write": 1}
    load_clip_cached(video, TINY, tmp_path)
    assert counts_since(before) == {"corrupt": 1, "write": 1, "hit": 1}  # the rewritten entry is whole


def test_a_write_killed_before_its_rename_leaves_no_readable_entry(video, decoded, tmp_path, monkeypatch):
    def killed(src, dst):
        raise KeyboardInterrupt  # the process dies between writing the files and installing the entry

    monkeypatch.setattr(cache_module.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        load_clip_cached(video, TINY, tmp_path)
    monkeypatch.undo()
    before = cache_counts()
    assert_same_clip(load_clip_cached(video, TINY, tmp_path), decoded)
    assert counts_since(before) == {"miss": 1, "write": 1}  # the torn temporary folder was never read
    torn = [p for p in tmp_path.glob("??/.*") if ".tmp-" in p.name]
    assert len(torn) == 1 and sweep_partial(tmp_path) == 0  # a recent one may be a write in progress: kept
    assert sweep_partial(tmp_path, older_than_s=0.0) == 1 and not torn[0].exists()
    assert counts_since(before) == {"miss": 1, "write": 1} and load_clip_cached(video, TINY, tmp_path) is not None
    assert counts_since(before) == {"miss": 1, "write": 1, "hit": 1}  # the installed entry was not swept


def _load_in_child(video: str, cache_dir: str, barrier, results) -> None:
    torch.set_num_threads(1)  # the parent's OpenMP pool does not survive fork (as in DataLoader workers)
    barrier.wait()
    clip = load_clip_cached(video, TINY, cache_dir)
    results.put(clip.frames.sum().item())


def test_two_processes_writing_the_same_entry(video, decoded, tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_load_in_child, args=(str(video), str(tmp_path), barrier, results)) for _ in range(2)]
    for proc in procs:
        proc.start()
    sums = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert sums == [decoded.frames.sum().item()] * 2
    entries = [p for p in tmp_path.glob("*/*") if p.is_dir()]
    assert len(entries) == 1 and not entries[0].name.startswith(".")  # one entry, no temporary folder left
    before = cache_counts()
    assert_same_clip(load_clip_cached(video, TINY, tmp_path), decoded)
    assert counts_since(before) == {"hit": 1}


def test_data_cache_cli_writes_then_finds_every_video(mini, tmp_path, capsys):
    csv = tmp_path / "train.csv"
    lines = (mini / "train.csv").read_text().splitlines()
    csv.write_text("\n".join([*lines, lines[1].replace("msad_mini_000", "msad_gone")]) + "\n")
    args = ["data", "cache", "--annotations", str(csv), "--videos", str(mini / "videos"), "--video-preset",
            "tiny_cpu", "--cache-dir", str(tmp_path / "c"), "--json"]  # fmt: skip
    assert cli_main(args) == 1  # msad_gone.mp4 is missing
    first = json.loads(capsys.readouterr().out)
    assert (first["videos"], first["written"], first["cached"]) == (3, 2, 0)
    assert [f["video"] for f in first["failed"]] == ["msad_gone.mp4"] and "msad_gone" in first["failed"][0]["error"]
    assert cli_main(args) == 1
    second = json.loads(capsys.readouterr().out)
    assert (second["written"], second["cached"], len(second["failed"])) == (0, 2, 1)
    bad = ["data", "cache", "--annotations", str(csv), "--videos", str(csv), "--cache-dir", str(tmp_path)]
    assert cli_main(bad) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--videos" in err and "not a folder" in err


def test_training_data_reads_the_cache_on_its_second_run(mini, tmp_path, monkeypatch):
    pairs = load_task_samples(mini / "train.csv", ["tag"])
    samples = [s for s, _ in pairs]

    def run_once() -> list:
        data = VideoPromptDataset(samples, mini / "videos", "tag", TINY, video_cache_dir=tmp_path)
        sampler = ShardedBatchSampler(len(data), 2, rank=0, world_size=1, seed=0)
        batches = resumable_batches(data, sampler, consumed_batches=0)
        return [e.video.pixel_values_videos for _ in range(len(sampler)) for e in next(batches).examples]

    before = cache_counts()
    first = run_once()
    assert counts_since(before) == {"miss": 2, "write": 2}
    monkeypatch.setattr(cache_module, "load_clip", lambda *a, **k: pytest.fail("decoded despite the cache"))
    second = run_once()
    assert counts_since(before) == {"miss": 2, "write": 2, "hit": 2}
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_train_and_eval_pass_their_video_cache_dir_to_the_data(mini, tmp_path):
    from hydra import compose, initialize_config_dir

    from vau_r1.apps.train import build_dataset
    from vau_r1.eval.runner import VideoItems
    from vau_r1.recipes.config import RunConfig
    from vau_r1.resources import CONFIG_ROOT

    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("train", overrides=["experiment=debug_cpu", f"output_dir={tmp_path / 'run'}",
                                          f"data.video_cache_dir={tmp_path / 'vc'}"])  # fmt: skip
    run_cfg = RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True))

    class OneProcess:  # what build_dataset asks of an Accelerator
        is_main_process = True

        @contextlib.contextmanager
        def main_process_first(self):
            yield

    dataset, video_config = build_dataset(run_cfg, OneProcess())
    assert dataset.video_cache_dir == str(tmp_path / "vc")
    before = cache_counts()
    dataset[0]
    assert counts_since(before).get("write") == 1 and any((tmp_path / "vc").glob("??/*/frames.npy"))
    items = VideoItems([dataset.samples[0]], dataset.video_root, video_config, video_cache_dir=tmp_path / "vc")
    items[0]
    assert counts_since(before) == {"miss": 1, "write": 1, "hit": 1}  # eval's items read what training wrote


def test_eval_run_fills_then_reads_the_cache(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    from vau_r1.apps.evaluate import CONFIG_DIR, run
    from vau_r1.bench import write_benchmark
    from vau_r1.model.builder import ModelConfig, load_model_and_processor

    bench = write_benchmark(tmp_path / "syn", num_train=1, num_test=2, duration_s=2.0, fps=4.0)
    model, tokenizer = load_model_and_processor(ModelConfig(name_or_path="tiny-random", tiny={"seed": 0}))
    overrides = ["model=tiny-random", "task=qa", f"output_dir={tmp_path / 'out'}", f"annotations={bench.test_csv}",
                 f"video_root={bench.video_dir}", "video_preset=tiny_cpu", "generation.max_new_tokens=4",
                 "progress=false", "num_workers=0", f"video_cache_dir={tmp_path / 'vc'}",
                 "overwrite=true"]  # fmt: skip
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("eval", overrides=overrides)
    threads = torch.get_num_threads()
    before = cache_counts()
    first = run(cfg, model=model, tokenizer=tokenizer)
    assert counts_since(before) == {"miss": 2, "write": 2}
    monkeypatch.setattr(cache_module, "load_clip", lambda *a, **k: pytest.fail("decoded despite the cache"))
    second = run(cfg, model=model, tokenizer=tokenizer)
    torch.set_num_threads(threads)
    assert counts_since(before) == {"miss": 2, "write": 2, "hit": 2}
    assert second.counts["generated_this_run"] == 2 and second.metrics == first.metrics


def test_a_cache_dir_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(ConfigError, match=r"data\.video_cache_dir"):
        DataConfig(annotations="a.csv", video_root="v", task="qa", video_cache_dir=str(file))
