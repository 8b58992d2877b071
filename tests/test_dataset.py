"""Training examples from annotation rows: the mini split, the dataset, the failure policy, the collate."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from vau_r1.data.annotations import load_annotations
from vau_r1.data.mini_bench import space_fraction_reward, write_mini_bench
from vau_r1.data.video import VideoConfig, VideoError
from vau_r1.engine.distributed import ShardedBatchSampler
from vau_r1.tasks import reward_columns
from vau_r1.tasks.dataset import (
    Example,
    ExampleBatch,
    Skipped,
    VideoPromptDataset,
    collate_examples,
    load_training_samples,
)

TINY = VideoConfig.from_preset("tiny_cpu")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    return root, write_mini_bench(root, num_clips=6, duration_s=3.0)


def dataset(root, task="tag", on_error="raise", fps=2.0, **kwargs) -> VideoPromptDataset:
    config = VideoConfig.from_dict({**TINY.to_dict(), "on_error": on_error, "fps": fps})
    samples = load_training_samples(root / "train.csv", task, **kwargs)
    return VideoPromptDataset(samples, root / "videos", task, config)


def test_mini_bench_is_a_valid_vau_bench_split(mini):
    root, csv = mini
    table = load_annotations(csv)
    assert len(table) == 6 and {s.source for s in table.samples} == {"msad"}
    assert [s.is_normal for s in table.samples] == [True, False] * 3
    assert all(s.span_s is not None and 0 <= s.span_s[0] < s.span_s[1] <= 3.0 for s in table.samples[1::2])
    for task in ("qa", "tag", "cls"):
        assert len(table.usable(task, "train")) == 6
    assert len({s.answer for s in table.samples}) > 1  # the correct letter varies
    assert write_mini_bench(root, num_clips=6, duration_s=3.0) == csv  # same arguments: reused


def test_mini_bench_is_deterministic(tmp_path):
    a = write_mini_bench(tmp_path / "a", num_clips=2, duration_s=2.0)
    b = write_mini_bench(tmp_path / "b", num_clips=2, duration_s=2.0)
    assert a.read_bytes() == b.read_bytes()
    for name in ("msad_mini_000.mp4", "msad_mini_001.mp4"):
        assert (tmp_path / "a/videos" / name).read_bytes() == (tmp_path / "b/videos" / name).read_bytes()


@pytest.mark.parametrize("task", ["qa", "tag", "cls"])
def test_example_holds_messages_video_inputs_and_reward_columns(mini, task):
    root, _ = mini
    data = dataset(root, task, fps=1.5)
    example = data[1]
    assert isinstance(example, Example)
    (message,) = example.messages
    kinds = [part["type"] for part in message["content"]]
    assert sorted(kinds) == ["text", "video"]
    video_part = next(p for p in message["content"] if p["type"] == "video")
    assert video_part["video"].endswith(example.sample.video)
    assert example.columns == reward_columns(example.sample, task, duration_s=example.duration_s)
    assert example.duration_s == pytest.approx(3.0)
    # 3 s at 1.5 fps: 4 frames, sample_fps = 4/12*4 = 4/3, second_per_grid_ts = 2 / (4/3) = 1.5
    assert example.video.second_per_grid_ts == pytest.approx(1.5)
    t, h, w = example.video.video_grid_thw.reshape(-1).tolist()
    assert example.video.pixel_values_videos.shape[0] == t * h * w
    if task == "tag":
        assert "3.0 seconds" in message["content"][0]["text"]


def test_missing_or_corrupt_videos_are_skipped_not_substituted(tmp_path):
    csv = write_mini_bench(tmp_path, num_clips=3, duration_s=2.0)
    (tmp_path / "videos" / "msad_mini_000.mp4").unlink()
    (tmp_path / "videos" / "msad_mini_001.mp4").write_bytes(b"\x00" * 64)
    data = dataset(tmp_path, on_error="skip")
    items = [data[i] for i in range(3)]
    assert isinstance(items[0], Skipped) and items[0].cause == "missing"
    assert isinstance(items[1], Skipped) and items[1].video == "msad_mini_001.mp4"
    assert isinstance(items[2], Example)
    batch = collate_examples(items)
    assert [e.sample.video for e in batch.examples] == ["msad_mini_002.mp4"] and len(batch.skipped) == 2
    assert csv.is_file()


def test_on_error_raise_propagates_the_video_error(tmp_path):
    write_mini_bench(tmp_path, num_clips=1, duration_s=2.0)
    (tmp_path / "videos" / "msad_mini_000.mp4").unlink()
    with pytest.raises(VideoError, match="missing"):
        dataset(tmp_path, on_error="raise")[0]


def test_collate_keeps_order():
    items = [Skipped(0, "a.mp4", "corrupt"), "x", Skipped(2, "c.mp4", "timeout"), "y"]
    batch = collate_examples(items)  # type: ignore[arg-type]
    assert isinstance(batch, ExampleBatch) and batch.examples == ["x", "y"] and len(batch) == 2
    assert [s.index for s in batch.skipped] == [0, 2]


def test_sample_selection(mini):
    _, csv = mini
    assert len(load_training_samples(csv, "qa", max_samples=4)) == 4
    assert len(load_training_samples(csv, "tag", sources=["msad"])) == 6
    with pytest.raises(ValueError, match=r"from sources \['ecva'\]"):
        load_training_samples(csv, "tag", sources=["ecva"])


def test_dataloader_workers_give_the_same_batches(mini):
    root, _ = mini
    data = dataset(root)
    sampler = ShardedBatchSampler(len(data), 2, rank=0, world_size=1, seed=0)
    plain = DataLoader(data, batch_sampler=sampler.epoch_batches(0), collate_fn=collate_examples)
    workers = DataLoader(data, batch_sampler=sampler.epoch_batches(0), collate_fn=collate_examples, num_workers=2)
    for a, b in zip(plain, workers, strict=True):
        assert [e.sample.row for e in a.examples] == [e.sample.row for e in b.examples]
        assert torch.equal(a.examples[0].video.pixel_values_videos, b.examples[0].video.pixel_values_videos)


def test_debug_reward_is_dense():
    assert space_fraction_reward(["abc", "a b", "  "]) == [0.0, 1 / 3, 1.0]
