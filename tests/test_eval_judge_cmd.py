"""``vau-r1 eval judge``: reasoning predictions (paper CSV or JSONL) → VAU-Eval report, against a loopback judge."""

from __future__ import annotations

import csv
import json

import pytest
from test_judge_client import DUMMY_KEY, KEY_ENV, FakeJudgeServer, ok, scores_json

from vau_r1.bench import write_benchmark
from vau_r1.cli import main as cli_main
from vau_r1.data.annotations import load_annotations

# What the fake judge answers, keyed by the predicted description.
ANSWERS = {"good": scores_json(9, 8, 9, 8, 7), "poor": scores_json(2, 1, 6, 2, 1)}


def reply(body, hit):
    user = body["messages"][1]["content"]
    marker = next(name for name in ANSWERS if f"Description: {name} description" in user)
    return ok(f"```json\n{ANSWERS[marker]}\n```")


@pytest.fixture(scope="module")
def annotations(tmp_path_factory):
    """Three synthetic test rows, each with a ground-truth description and analysis."""
    return write_benchmark(tmp_path_factory.mktemp("syn"), num_train=1, num_test=3, duration_s=2.0).test_csv


@pytest.fixture
def judge_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, DUMMY_KEY)

    def write(base_url: str):
        path = tmp_path / "judge.yaml"
        path.write_text(f"base_url: {base_url}\nmodel: judge-test\napi_key_env: {KEY_ENV}\nmax_retries: 0\n")
        return path

    return write


def write_csv(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Video Name", "Description", "Analysis"])
        writer.writerows(rows)
    return path


def judge(capsys, *args):
    code = cli_main(["eval", "judge", *map(str, args), "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else captured.err)


def test_paper_csv_is_judged_cached_and_summarised(annotations, judge_yaml, tmp_path, capsys):
    videos = [s.video for s in load_annotations(annotations).samples]
    predictions = write_csv(tmp_path / "preds.csv", [(videos[0], "good description", "good analysis"),
                                                     (videos[1], "poor description", "poor analysis"),
                                                     (videos[2], "None", "None")])  # fmt: skip
    with FakeJudgeServer(reply) as server:
        args = ["--predictions", predictions, "--annotations", annotations, "--judge", judge_yaml(server.base_url)]
        code, summary = judge(capsys, *args)
        assert code == 0 and server.hits == 2  # the failed-inference row is skipped, never sent
        assert (summary["n_judged"], summary["n_skipped"], summary["judge_model"]) == (2, 1, "judge-test")
        assert summary["CLS"] == 5.5 and summary["Total"] == pytest.approx((41 + 12) / 2)
        code, again = judge(capsys, *args)
        assert code == 0 and server.hits == 2 and again["n_cached"] == 2 and again["Total"] == summary["Total"]
        code, renamed = judge(capsys, *args, "--set", "model=judge-other")  # another judge model: asked again
        assert code == 0 and server.hits == 4 and renamed["judge_model"] == "judge-other"
    rows = list(csv.DictReader((tmp_path / "judge" / "judge_rows.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok", "skipped"]


def test_jsonl_predictions_match_names_with_a_source_prefix(annotations, judge_yaml, tmp_path, capsys):
    videos = [s.video for s in load_annotations(annotations).samples]
    lines = [{"video": f"msad_{videos[0]}", "task": "reasoning", "text": "a", "description": "good description",
              "analysis": "good analysis"},
             {"video": videos[1], "task": "qa", "text": "B"},  # another task's record: ignored
             {"video": videos[2], "task": "reasoning", "status": "failed", "text": None,
              "error": "corrupt"}]  # fmt: skip
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with FakeJudgeServer(reply) as server:
        code, summary = judge(capsys, "--predictions", predictions, "--annotations", annotations, "--judge",
                              judge_yaml(server.base_url), "--output-dir", tmp_path / "out")  # fmt: skip
    assert code == 0 and server.hits == 1 and summary["n_judged"] == 1 and summary["n_skipped"] == 2
    assert summary["Total"] == 41.0 and (tmp_path / "out" / "judge_summary.json").is_file()


def test_missing_key_or_config_is_a_clear_error(annotations, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    videos = [s.video for s in load_annotations(annotations).samples]
    predictions = write_csv(tmp_path / "preds.csv", [(videos[0], "good description", "good analysis")])
    code, err = judge(capsys, "--predictions", predictions, "--annotations", annotations)  # judge/deepseek
    assert code == 2 and "DEEPSEEK_API_KEY" in err
    code, err = judge(capsys, "--predictions", predictions, "--annotations", annotations, "--judge", "nope")
    assert code == 2 and "no judge config 'nope'" in err and "deepseek" in err
