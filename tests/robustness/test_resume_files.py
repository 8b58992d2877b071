"""Resumable JSONL files after a kill: a torn last line (at any byte, inside a UTF-8 character) or any bad line.

Every file the project resumes from (the eval records ``parts/rank<r>.jsonl`` and ``predictions.jsonl``,
the judge cache) must let a rerun finish with exactly the predictions of an untorn run: the unusable line
is skipped with a warning naming file and line, the next append starts on a fresh line, and the row of
the skipped line is predicted again (no row lost, none twice).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from vau_r1.data.jsonl import append_jsonl, dumps_line, read_jsonl
from vau_r1.data.schema import VideoSample
from vau_r1.eval.runner import PredictionStore
from vau_r1.judge import JudgeCache

SAMPLES = [VideoSample(f"v{i}.mp4", "msad", i + 1) for i in range(5)]
#: Multi-byte text in every record: 2-byte (é), 3-byte (描述, —) and 4-byte (🎥) UTF-8 characters.
TEXT = "<think>描述 — é 🎥</think><answer>{}</answer>"


def record(sample: VideoSample) -> dict:
    """The record a deterministic fake model writes for ``sample``."""
    return {"video": sample.video, "task": "qa", "status": "ok", "text": TEXT.format(sample.row), "parsed": "A",
            "error": None, "num_frames": 4}  # fmt: skip


def resume(out: Path) -> tuple[list[dict], int]:
    """A rerun: predict every sample without an ``ok`` record, append, merge; returns (merged, predicted)."""
    store = PredictionStore(out)
    done = {video for video, r in store.load().items() if r["status"] == "ok"}
    pending = [s for s in SAMPLES if s.video not in done]
    store.append(record(s) for s in pending)
    appended = b"".join(dumps_line(record(s)) for s in pending)
    data = store.part.read_bytes()
    assert data.endswith(appended) and data[: len(data) - len(appended)][-1:] in (b"", b"\n"), "glued to a torn line"
    return store.merge(SAMPLES), len(pending)


@pytest.fixture
def untorn(tmp_path: Path) -> list[dict]:
    merged, predicted = resume(tmp_path / "untorn")
    assert predicted == len(SAMPLES)
    return merged


def killed_part(out: Path, written: int = 3) -> tuple[Path, bytes, bytes]:
    """A part holding ``written`` records, as a killed run leaves it; returns (path, head lines, last line)."""
    store = PredictionStore(out)
    store.append(record(s) for s in SAMPLES[:written])
    lines = store.part.read_bytes().splitlines(keepends=True)
    return store.part, b"".join(lines[:-1]), lines[-1]


def test_torn_last_line_at_every_byte_offset_resumes_to_the_untorn_predictions(
    tmp_path: Path, untorn: list[dict], caplog: pytest.LogCaptureFixture
) -> None:
    _, head, last = killed_part(tmp_path / "probe")
    assert len(last.decode()) < len(last) - 8  # the line holds multi-byte characters
    inside_char = 0
    for offset in range(len(last)):  # 0: the line never started; len - 1: only the line break is missing
        out = tmp_path / f"torn{offset}"
        part, _, _ = killed_part(out)
        part.write_bytes(head + last[:offset])
        try:
            last[:offset].decode()
        except UnicodeDecodeError:
            inside_char += 1
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            merged, predicted = resume(out)
        assert merged == untorn, f"offset {offset}"
        complete = offset == len(last) - 1  # the whole record is there, only "\n" is missing
        assert predicted == (2 if complete else 3), f"offset {offset}"  # the torn row is predicted again
        if 0 < offset < len(last) - 1:
            assert f"{part}:3: truncated last line" in caplog.text, f"offset {offset}"
    assert inside_char >= 6  # offsets that cut a UTF-8 character were among those tried


@pytest.mark.parametrize(
    "bad",
    [
        b"[1, 2]",  # JSON, not an object
        b'"a string"',
        b'{"text": "no video"}',  # an object without "video"
        b'{"video": 7, "status": "ok", "text": "x"}',  # "video" is not a name
        b'{"video": "v1.mp4", "status": "ok"}',  # an ok record without text
        b'{"video": "v1.mp4", "status": "done", "text": "x"}',  # unknown status
        b"\xff\xfe\x00 garbage",  # not UTF-8
        '{"video": "v1.mp4", "status": "ok", "text": "描'.encode()[:-1] + b'"}',  # cut inside a character
        b"[" * 100_000,  # nested too deeply for json
        b'{"video": "v1.mp4", "n": ' + b"9" * 5000 + b"}",  # an integer json refuses to read
    ],
)
def test_a_bad_line_is_skipped_named_and_its_row_predicted_again(
    tmp_path: Path, untorn: list[dict], bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "bad"
    part, head, last = killed_part(out)
    lines = head.splitlines(keepends=True)
    part.write_bytes(lines[0] + bad + b"\n" + last)  # line 2 (v1) replaced by the bad line
    with caplog.at_level(logging.WARNING):
        merged, predicted = resume(out)
    assert merged == untorn and predicted == 3  # v1 again, v3, v4
    assert f"{part}:2:" in caplog.text and "predicted again" in caplog.text


def test_torn_merged_file_is_resumed_and_rewritten_whole(tmp_path: Path, untorn: list[dict]) -> None:
    out = tmp_path / "merged"
    store = PredictionStore(out)
    store.append(record(s) for s in SAMPLES)
    store.merge(SAMPLES)
    data = store.merged.read_bytes()
    cut = data.rindex("🎥".encode()) + 2  # inside the 4-byte character of the last record
    store.merged.write_bytes(data[:cut])
    merged, predicted = resume(out)
    assert merged == untorn and predicted == 1
    assert [json.loads(line) for line in store.merged.read_text(encoding="utf-8").splitlines()] == untorn


def test_append_after_a_torn_tail_starts_on_a_fresh_line(tmp_path: Path) -> None:
    path = tmp_path / "file.jsonl"
    first, second, new = {"video": "a", "t": "é"}, {"video": "b", "t": "🎥"}, {"video": "c"}
    whole = dumps_line(first) + dumps_line(second)
    line_two = len(dumps_line(first))
    for cut in range(line_two, len(whole) + 1):
        path.write_bytes(whole[:cut])
        append_jsonl(path, [new], {"video": str})
        kept = [first, second] if cut >= len(whole) - 1 else [first]  # the torn second line is cut off
        expected = b"".join(dumps_line(r) for r in [*kept, new])
        assert path.read_bytes() == expected, f"cut at byte {cut}"


def test_lone_surrogate_is_written_escaped_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "file.jsonl"
    records = [{"video": "a", "text": "bad \ud800 char, fine é"}, {"video": "b", "text": "描述"}]
    append_jsonl(path, records)
    assert [line.record for line in read_jsonl(path).lines] == records
    assert "描述" in path.read_text(encoding="utf-8")  # non-ASCII stays readable where it can


def cache_line(video: str, status: str = "ok") -> dict:
    scores = {"CLS": 8, "KM": 7, "FLU": 9, "INF": 6, "FAC": 7} if status == "ok" else None
    return {"video": video, "key": f"k-{video}", "status": status, "scores": scores, "comments": {"c": "描述 🎥"},
            "stage": None if status == "ok" else "http", "reason": None if status == "ok" else "HTTP 500"}  # fmt: skip


def test_judge_cache_torn_at_every_byte_offset_keeps_the_other_results(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    lines = [dumps_line(cache_line(v)) for v in ("a.mp4", "b.mp4")] + [dumps_line(cache_line("c.mp4", "failed"))]
    head, last = b"".join(lines[:2]), lines[2]
    for offset in range(len(last)):
        path.write_bytes(head + last[:offset])
        cache = JudgeCache(path)
        complete = offset == len(last) - 1
        assert (len(cache), cache.failures("c.mp4", "k-c.mp4")[0]) == (2, int(complete)), f"offset {offset}"
        cache.append(cache_line("d.mp4"))
        again = JudgeCache(path)
        assert len(again) == 3 and again.get("d.mp4", "k-d.mp4") is not None, f"offset {offset}"
        assert not read_jsonl(path).skipped, f"offset {offset}: the append was glued to the torn line"


@pytest.mark.parametrize(
    "bad",
    [b"[]", b'{"video": "a.mp4"}', b'{"video": "a.mp4", "key": "k-a.mp4", "status": "ok"}', b"\xc3", b"[" * 50_000],
)
def test_judge_cache_bad_line_is_skipped_and_its_row_judged_again(
    tmp_path: Path, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.jsonl"
    path.write_bytes(bad + b"\n" + dumps_line(cache_line("b.mp4")))
    with caplog.at_level(logging.WARNING):
        cache = JudgeCache(path)
    assert len(cache) == 1 and cache.get("a.mp4", "k-a.mp4") is None
    assert f"{path}:1:" in caplog.text and "judged again" in caplog.text


# --- End to end: `vau-r1 eval run` with the tiny random model, killed, torn, resumed -------------------------------

#: A video name with 2-, 3- and 4-byte UTF-8 characters, so that the record written last holds them for sure.
WIDE_NAME = "syn_test_0002_é描述🎥.mp4"


@pytest.fixture(scope="module")
def wide_bench(tmp_path_factory: pytest.TempPathFactory):
    """4 synthetic test clips; the third (the last one written before the kill below) has a multi-byte name."""
    from vau_r1.bench import write_benchmark

    bench = write_benchmark(tmp_path_factory.mktemp("syn"), num_train=1, num_test=4, duration_s=2.0, fps=4.0)
    (bench.video_dir / "syn_test_0002.mp4").rename(bench.video_dir / WIDE_NAME)
    text = bench.test_csv.read_text(encoding="utf-8").replace("syn_test_0002.mp4", WIDE_NAME)
    bench.test_csv.write_text(text, encoding="utf-8")
    return bench


@pytest.fixture(scope="module")
def tiny_model():
    from vau_r1.model.builder import ModelConfig, load_model_and_processor

    return load_model_and_processor(ModelConfig(name_or_path="tiny-random", tiny={"seed": 0}))


@pytest.mark.slow  # about 25 s on 2 cores: the tiny model is loaded and the split evaluated 9 times
def test_killed_eval_run_torn_in_its_last_line_resumes_to_the_untorn_predictions(
    wide_bench, tiny_model, tmp_path: Path, one_torch_thread
) -> None:
    import shutil

    from test_eval_run import CountingGenerate, compose_eval, data_args, records

    from vau_r1.apps.evaluate import run

    model, tokenizer = tiny_model

    def evaluate(out: Path):
        cfg = compose_eval("model=tiny-random", "task=qa", f"output_dir={out}", *data_args(wide_bench))
        return run(cfg, model=model, tokenizer=tokenizer)

    evaluate(tmp_path / "untorn")
    untorn = records(tmp_path / "untorn")
    killed = tmp_path / "killed"
    with CountingGenerate(model, crash_after=3), pytest.raises(RuntimeError, match="injected crash"):
        evaluate(killed)
    lines = (killed / "parts" / "rank0.jsonl").read_bytes().splitlines(keepends=True)
    head, last = b"".join(lines[:-1]), lines[-1]
    wide = last.index("é".encode())  # offsets inside the 2-, 3- and 4-byte characters of the name, and around
    offsets = [1, wide + 1, wide + 3, wide + 7, len(last) // 2, len(last) - 2, len(last) - 1]
    for offset in offsets:
        out = tmp_path / f"torn{offset}"
        shutil.copytree(killed, out)
        (out / "parts" / "rank0.jsonl").write_bytes(head + last[:offset])
        with CountingGenerate(model) as counter:
            report = evaluate(out)
        assert records(out) == untorn, f"offset {offset}"
        assert counter.calls == (1 if offset == len(last) - 1 else 2), f"offset {offset}"  # torn row again
        assert report.n == 4 and report.counts["generated_this_run"] == counter.calls
