"""judge_rows end to end against the loopback server: skipping, failures, aggregation, cache and resume."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from test_judge_client import DUMMY_KEY, KEY_ENV, FakeJudgeServer, Reply, error, make_config, ok, scores_json

from vau_r1.data.schema import VideoSample
from vau_r1.judge import (
    COLUMNS,
    JudgeCache,
    JudgeRow,
    MissingAPIKeyError,
    RowResult,
    aggregate,
    judge_rows,
    read_predictions_csv,
    rows_from_samples,
)

# What the fake judge answers, chosen by a marker in the predicted description.
ANSWERS: dict[str, Reply] = {
    "GOOD_A": ok(f"```json\n{scores_json(8, 7, 9, 6, 7)}\n```"),
    "GOOD_B": ok(scores_json(6, 5, 8, 7, 4, total=40)),  # bare JSON, wrong total (true sum 30)
    "GOOD_C": ok(f"Result:\n```json\n{scores_json(10, 9, 10, 8, 9)}\n```"),
    "BROKEN": ok('```json\n{"classification_score": 8,, }\n```'),
    "DOWN": error(500),
}


def answer(body: dict[str, Any], hit: int) -> Reply:
    user = body["messages"][1]["content"]
    return next(reply for marker, reply in ANSWERS.items() if f"pred {marker}" in user)


def row(video: str, marker: str, gt_analysis: str | None = "GT analysis", analysis: str | None = "pred analysis"):
    return JudgeRow(video, f"GT description of {video}", gt_analysis, f"pred {marker}", analysis)


ROWS = [
    row("a.mp4", "GOOD_A"),
    row("b.mp4", "GOOD_B"),
    row("c.mp4", "DOWN"),
    row("d.mp4", "BROKEN"),
    row("e.mp4", "GOOD_A", gt_analysis="-1"),  # unannotated ground truth
    row("f.mp4", "GOOD_A", analysis="None"),  # failed inference
    row("g.mp4", "GOOD_A", analysis=float("nan")),  # empty pandas cell
    row("a.mp4", "GOOD_C"),  # duplicate video name
]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, DUMMY_KEY)


def test_failing_endpoint_run_finishes_and_aggregates(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeJudgeServer(answer) as server:
        report = judge_rows(ROWS, make_config(server.base_url), tmp_path / "cache.jsonl", output_dir=tmp_path)
    # a, b, d: one request each; c: 1 + max_retries(2) requests on HTTP 500.
    assert server.hits == 6
    assert (report.n_judged, report.n_failed, report.n_skipped, report.n_total_mismatch) == (2, 2, 4, 1)
    by_video = {(r.video, r.status): r for r in report.rows}
    assert by_video["c.mp4", "failed"].stage == "http" and by_video["c.mp4", "failed"].attempts == 3
    assert by_video["d.mp4", "failed"].stage == "parse" and "invalid JSON" in by_video["d.mp4", "failed"].reason
    assert by_video["d.mp4", "failed"].raw.startswith("```json")
    assert by_video["b.mp4", "ok"].total == 30 and by_video["b.mp4", "ok"].judge_total == 40
    skipped = [r.reason for r in report.rows if r.status == "skipped"]
    assert skipped == ["missing text: gt_analysis='-1'", "missing text: analysis='None'",
                       "missing text: analysis=nan", "duplicate video name (first row kept)"]  # fmt: skip
    expected = {"CLS": 7.0, "KM": 6.0, "FLU": 8.5, "INF": 6.5, "FAC": 5.5}
    assert {c: report.means[c] for c in expected} == expected
    assert report.means["Total"] == pytest.approx(sum(expected.values())) == pytest.approx(33.5)
    summary = json.loads((tmp_path / "judge_summary.json").read_text())
    assert list(summary)[:6] == list(COLUMNS) and summary["n_judged"] == 2
    with (tmp_path / "judge_rows.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["status"] for r in table] == [r.status for r in report.rows] and table[1]["Total"] == "30"
    assert DUMMY_KEY not in caplog.text and DUMMY_KEY not in (tmp_path / "cache.jsonl").read_text()


def test_resume_asks_only_about_unfinished_rows(tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.jsonl"
    with FakeJudgeServer(answer) as server:
        config = make_config(server.base_url, max_row_attempts=2)
        first = judge_rows(ROWS, config, cache_path)
        hits_first = server.hits
        second = judge_rows(ROWS, config, cache_path)
        hits_second = server.hits - hits_first
        third = judge_rows(ROWS, config, cache_path)
    # Run 2: a and b come from the cache; c (3 requests) and d (1) are retried.
    assert hits_second == 4 and second.n_cached == 2
    assert second.means == first.means and second.n_failed == 2
    # Run 3: c and d failed in 2 runs already -> no request at all, still reported as failed.
    assert server.hits == hits_first + hits_second
    assert third.n_failed == 2 and all("not asked again" in r.reason for r in third.rows if r.status == "failed")
    assert third.means == first.means


def test_changed_prediction_is_judged_again(tmp_path: Path) -> None:
    with FakeJudgeServer(answer) as server:
        judge_rows([row("a.mp4", "GOOD_A")], make_config(server.base_url), tmp_path / "c.jsonl")
        report = judge_rows([row("a.mp4", "GOOD_C")], make_config(server.base_url), tmp_path / "c.jsonl")
    assert server.hits == 2 and report.means["CLS"] == 10 and report.n_cached == 0


def test_truncated_last_line_is_ignored_and_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache_path = tmp_path / "cache.jsonl"
    rows = [row("a.mp4", "GOOD_A"), row("b.mp4", "GOOD_B")]
    with FakeJudgeServer(answer) as server:
        judge_rows(rows, make_config(server.base_url), cache_path)
        text = cache_path.read_text()
        cache_path.write_text(text[: len(text) - 40])  # a run killed in the middle of the second line
        with caplog.at_level(logging.WARNING):
            report = judge_rows(rows, make_config(server.base_url), cache_path)
    assert "truncated last line" in caplog.text
    assert server.hits == 3 and report.n_judged == 2 and report.n_cached == 1
    lines = cache_path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["status"] == "ok" for line in lines)
    assert len(JudgeCache(cache_path)) == 2


def test_concurrent_run_writes_one_valid_line_per_row(tmp_path: Path) -> None:
    rows = [row(f"v{i}.mp4", "GOOD_A" if i % 2 else "GOOD_C") for i in range(8)]
    with FakeJudgeServer(answer) as server:
        report = judge_rows(rows, make_config(server.base_url, concurrency=4), tmp_path / "cache.jsonl")
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    assert server.hits == 8 and report.n_judged == 8 and len(lines) == 8
    assert sorted(json.loads(line)["video"] for line in lines) == sorted(r.video for r in rows)
    assert [r.video for r in report.rows] == [r.video for r in rows]  # input order kept
    assert report.means["Total"] == pytest.approx((37 + 46) / 2)


def test_missing_key_fails_before_any_request_but_cached_run_needs_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_path = tmp_path / "cache.jsonl"
    with FakeJudgeServer(answer) as server:
        judge_rows([row("a.mp4", "GOOD_A")], make_config(server.base_url), cache_path)
        monkeypatch.delenv(KEY_ENV)
        cached = judge_rows([row("a.mp4", "GOOD_A")], make_config(server.base_url), cache_path)
        with pytest.raises(MissingAPIKeyError, match=KEY_ENV):
            judge_rows([row("b.mp4", "GOOD_B")], make_config(server.base_url), cache_path)
    assert server.hits == 1 and cached.n_judged == 1 and cached.n_cached == 1


def test_aggregate_without_judged_rows() -> None:
    report = aggregate([RowResult("x.mp4", "skipped", reason="missing text")], "m", "paper-x")
    assert report.means == dict.fromkeys(COLUMNS) and report.n_skipped == 1 and report.n_judged == 0
    assert report.to_dict()["Total"] is None


def test_total_is_sum_of_column_means() -> None:
    results = [RowResult(f"{i}", "ok", scores=dict(zip(COLUMNS[:5], s, strict=True)))
               for i, s in enumerate([(1, 2, 3, 4, 5), (10, 0, 7, 3, 9), (6, 6, 6, 6, 6)])]  # fmt: skip
    means = aggregate(results, "m", "v").means
    assert means["Total"] == pytest.approx(sum(means[c] for c in COLUMNS[:5]))
    assert means["Total"] == pytest.approx(sum(r.total for r in results) / 3)


def test_rows_from_samples_and_prediction_csv(tmp_path: Path) -> None:
    pred_csv = tmp_path / "output_msad.csv"
    pred_csv.write_text('Video Name,Description,Analysis\nAssault_2.mp4,"A man, running.",Fight.\n')
    samples = [VideoSample("Assault_2.mp4", "msad", 1, description="GT d", reasoning="GT r"),
               VideoSample("Fire_1.mp4", "msad", 2, description="GT d2", reasoning="GT r2")]  # fmt: skip
    rows = rows_from_samples(samples, read_predictions_csv(pred_csv))
    assert rows[0] == JudgeRow("Assault_2.mp4", "GT d", "GT r", "A man, running.", "Fight.")
    assert rows[1].missing_field() == "description=None"
    (tmp_path / "bad.csv").write_text("Video,Description\n")
    with pytest.raises(ValueError, match=r"missing columns \['Analysis', 'Video Name'\]"):
        read_predictions_csv(tmp_path / "bad.csv")
