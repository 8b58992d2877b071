"""Judge faults against the loopback OpenAI-compatible server: each ends as a recorded failure or a success.

One bad reply must never abort a judge run: invalid JSON bodies, HTTP 500, 429 with ``Retry-After``, a
hang past the client timeout, deeply nested JSON (body or content), an empty ``choices`` list, a reply
without the score format, a connection refused, an unexpected client error. Every run writes its report
(listing the failed rows with stage, reason and endpoint), and a rerun retries failed rows a bounded
number of times.
"""

from __future__ import annotations

import csv
import json
import socket
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_judge_client import (
    DUMMY_KEY,
    KEY_ENV,
    FakeJudgeServer,
    Reply,
    chat_body,
    error,
    make_config,
    ok,
    scores_json,
)

from vau_r1.cli import main as cli_main
from vau_r1.data.jsonl import read_jsonl
from vau_r1.judge import FAILURE_STAGES, Completion, JudgeRow, judge_rows

ANNOTATION_HEADER = ("Video Name,Question,Option 1,Option 2,Option 3,Option 4,Correct Option,Key Object,Description,"
                     "Reasoning,Anomaly Class,Start Time,End Time\n")  # fmt: skip
GOOD = ok(f"```json\n{scores_json(8, 7, 9, 6, 7)}\n```")
NESTED = '{"classification_score": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"
SURROGATE = json.loads(scores_json(6, 6, 6, 6, 6))
SURROGATE["comments"] = {"fluency": "odd \ud800 char"}

#: marker in the predicted description → (reply to its n-th request, expected status, expected stage)
FAULTS: dict[str, tuple[Any, str, str | None]] = {
    "GOOD": (lambda n: GOOD, "ok", None),
    "INVALID_JSON": (lambda n: (200, {}, '{"choices": [{"message": ', 0.0), "failed", "reply"),
    "EMPTY_BODY": (lambda n: (200, {}, "", 0.0), "failed", "reply"),
    "HTTP_500": (lambda n: error(500), "failed", "http"),
    "RATE_LIMITED_ONCE": (lambda n: error(429, {"Retry-After": "0.05"}) if n == 1 else GOOD, "ok", None),
    "RATE_LIMITED": (lambda n: error(429, {"Retry-After": "0.05"}), "failed", "http"),
    "HANG": (lambda n: (*GOOD[:3], 1.5), "failed", "timeout"),  # the client gives up after timeout_s=0.5
    "NESTED_BODY": (lambda n: (200, {}, '{"choices": ' + "[" * 50_000 + "]" * 50_000 + "}", 0.0), "failed", "reply"),
    "NESTED_CONTENT": (lambda n: ok(NESTED), "failed", "parse"),
    "EMPTY_CHOICES": (lambda n: (200, {}, json.dumps({"id": "x", "object": "chat.completion", "created": 0,
                                                      "model": "m", "choices": []}), 0.0), "failed", "reply"),
    "NOT_SCORES": (lambda n: ok("A fine description; I would give it 8/10."), "failed", "parse"),
    "HUGE_NUMBER": (lambda n: ok('{"classification_score": ' + "9" * 5000 + "}"), "failed", "parse"),
    "SURROGATE": (lambda n: (200, {}, chat_body(json.dumps(SURROGATE)), 0.0), "ok", None),
}  # fmt: skip


class Answers:
    """The fake judge's answers, by the marker in the prompt; counts requests per marker (thread-safe)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any], hit: int) -> Reply:
        user = body["messages"][1]["content"]
        marker = next(m for m in sorted(FAULTS, key=len, reverse=True) if f"pred {m}" in user)
        with self._lock:
            self.hits[marker] += 1
            n = self.hits[marker]
        return FAULTS[marker][0](n)


def row(marker: str) -> JudgeRow:
    return JudgeRow(f"{marker.lower()}.mp4", "GT description", "GT analysis", f"pred {marker}", "pred analysis")


ROWS = [row(marker) for marker in FAULTS]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, DUMMY_KEY)


def config(base_url: str, **overrides: Any):
    values = {"timeout_s": 0.5, "max_retries": 2, "retry_after_max_s": 0.1, "concurrency": 4, **overrides}
    return make_config(base_url, **values)


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "judge_summary.json").read_text())


def test_every_fault_is_a_recorded_failure_or_a_success_and_the_report_is_written(tmp_path: Path) -> None:
    answers = Answers()
    with FakeJudgeServer(answers) as server:
        report = judge_rows(ROWS, config(server.base_url), tmp_path / "cache.jsonl", output_dir=tmp_path)
    by_video = {r.video: r for r in report.rows}
    for marker, (_, status, stage) in FAULTS.items():
        result = by_video[row(marker).video]
        assert (result.status, result.stage) == (status, stage), (marker, result.reason)
        assert result.endpoint == server.base_url and (status == "ok" or result.reason)
    assert answers.hits["HTTP_500"] == answers.hits["RATE_LIMITED"] == 3  # 1 + max_retries, then given up
    assert answers.hits["RATE_LIMITED_ONCE"] == 2 and answers.hits["INVALID_JSON"] == 1
    assert by_video["surrogate.mp4"].comments == {"fluency": "odd \ud800 char"}
    failed = {video for video, r in by_video.items() if r.status == "failed"}
    listed = summary(tmp_path)["failed_rows"]
    assert {r["video"] for r in listed} == failed and report.n_failed == len(failed) == 10
    assert all(r["stage"] in FAILURE_STAGES and r["reason"] and r["endpoint"] == server.base_url for r in listed)
    with (tmp_path / "judge_rows.csv").open(encoding="utf-8") as handle:
        table = {r["video"]: r for r in csv.DictReader(handle)}
    assert {v for v, r in table.items() if r["status"] == "failed"} == failed
    assert table["invalid_json.mp4"]["stage"] == "reply" and table["invalid_json.mp4"]["endpoint"] == server.base_url
    cache = read_jsonl(tmp_path / "cache.jsonl")
    assert not cache.skipped and len(cache.lines) == len(ROWS)  # the surrogate reply was cached readably too


def test_rerun_retries_failed_rows_a_bounded_number_of_times(tmp_path: Path) -> None:
    answers = Answers()
    rows = [row(m) for m in ("GOOD", "INVALID_JSON", "NESTED_CONTENT", "EMPTY_CHOICES", "HTTP_500")]
    with FakeJudgeServer(answers) as server:
        cfg = config(server.base_url, max_row_attempts=2)
        runs = []
        for _ in range(3):
            before = sum(answers.hits.values())
            report = judge_rows(rows, cfg, tmp_path / "cache.jsonl", output_dir=tmp_path)
            runs.append((sum(answers.hits.values()) - before, report.n_judged, report.n_failed))
            assert summary(tmp_path)["n_failed"] == 4
    # run 1: 1 + 1 + 1 + 1 + 3 requests; run 2: the four failed rows again; run 3: nothing is asked.
    assert runs == [(7, 1, 4), (6, 1, 4), (0, 1, 4)]
    assert all("not asked again" in r.reason for r in report.rows if r.status == "failed")


def test_connection_refused_fails_every_row_and_writes_the_report(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the block ends
    url = f"http://127.0.0.1:{port}/v1"
    report = judge_rows(ROWS[:3], config(url, max_retries=1), tmp_path / "cache.jsonl", output_dir=tmp_path)
    assert report.n_failed == 3 and all(r.stage == "http" and "connection" in r.reason.lower() for r in report.rows)
    assert [r["endpoint"] for r in summary(tmp_path)["failed_rows"]] == [url] * 3


class ExplodingClient:
    """A client whose request raises ``error`` for rows whose description holds ``marker``."""

    def __init__(self, error: BaseException, marker: str = "INVALID_JSON") -> None:
        self.error, self.marker, self.asked = error, marker, 0

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        self.asked += 1
        if f"pred {self.marker}" in messages[1]["content"]:
            raise self.error
        return Completion(f"```json\n{scores_json()}\n```", 1)


def test_an_unexpected_client_error_is_an_internal_failure(tmp_path: Path) -> None:
    rows = [row("GOOD"), row("INVALID_JSON"), row("HTTP_500")]
    report = judge_rows(rows, config("http://127.0.0.1:9/v1"), tmp_path / "c.jsonl", output_dir=tmp_path,
                        client=ExplodingClient(KeyError("choices")))  # fmt: skip
    assert [(r.status, r.stage) for r in report.rows] == [("ok", None), ("failed", "internal"), ("ok", None)]
    assert "KeyError" in summary(tmp_path)["failed_rows"][0]["reason"]


class Stop(BaseException):
    """Stands in for Ctrl-C arriving while a row is being judged."""


def test_a_stopped_run_still_writes_its_report_and_the_rerun_finishes(tmp_path: Path) -> None:
    rows = [row("GOOD"), row("INVALID_JSON"), row("HTTP_500"), row("NOT_SCORES")]
    cfg = config("http://127.0.0.1:9/v1", concurrency=1)
    with pytest.raises(Stop):
        judge_rows(rows, cfg, tmp_path / "c.jsonl", output_dir=tmp_path, client=ExplodingClient(Stop()))
    stopped = summary(tmp_path)  # the rows answered before the stop are reported, the others "interrupted"
    failed = {r["video"]: r["stage"] for r in stopped["failed_rows"]}
    assert failed[row("INVALID_JSON").video] == "interrupted" and set(failed.values()) == {"interrupted"}
    cache = [json.loads(line) for line in (tmp_path / "c.jsonl").open()]  # the worker may have begun more rows
    assert 1 <= len(cache) <= 3 and all(line["status"] == "ok" for line in cache)
    cached = len(cache)
    assert stopped["n_judged"] == cached and cached + len(failed) == 4  # every answered row is in the report
    again = ExplodingClient(KeyError("never"), marker="nothing")
    report = judge_rows(rows, cfg, tmp_path / "c.jsonl", output_dir=tmp_path, client=again)
    assert again.asked == 4 - cached and report.n_judged == 4 and summary(tmp_path)["failed_rows"] == []


def test_eval_judge_command_reports_failed_rows_instead_of_crashing(tmp_path: Path, capsys) -> None:
    videos = ["a.mp4", "b.mp4"]
    annotations = tmp_path / "test.csv"
    annotations.write_text(ANNOTATION_HEADER + "".join(f"{v},What happens?,a,b,c,d,A,a car,GT description,"
                                                       "GT analysis,Normal,0.0,0.0\n" for v in videos))  # fmt: skip
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text("".join(json.dumps({"video": v, "description": f"pred {m}", "analysis": "a"}) + "\n"
                                   for v, m in zip(videos, ("GOOD", "INVALID_JSON"), strict=True)))  # fmt: skip
    with FakeJudgeServer(Answers()) as server:
        judge = tmp_path / "judge.yaml"
        judge.write_text(f"base_url: {server.base_url}\nmodel: judge-test\napi_key_env: {KEY_ENV}\nmax_retries: 0\n")
        args = ["eval", "judge", "--predictions", str(predictions), "--annotations", str(annotations),
                "--judge", str(judge), "--output-dir", str(tmp_path / "out")]  # fmt: skip
        code = cli_main([*args, "--json"])
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert code == 0 and out["n_judged"] == 1 and out["n_failed"] == 1
        assert out["failed_rows"][0]["video"] == videos[1] and out["failed_rows"][0]["stage"] == "reply"
        assert cli_main(args) == 0  # the rerun asks about the failed row again and lists it in the table
    table = capsys.readouterr().out
    assert "failed 1" in table and "failed rows (1; " in table and f"- {videos[1]}: reply: " in table
