"""Prediction files and ``vau-r1 eval score``: formats, defaults, errors, and the real MSAD test split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from vau_r1.cli import main
from vau_r1.data.annotations import COLUMNS, load_annotations
from vau_r1.eval import read_predictions, score_predictions, write_predictions

# Four rows: two anomalies with spans, one normal video, one anomaly without a span (-1/-1).
ROWS = [
    ("Assault_2.mp4", "A", "Assault", "0.5", "6.5"),
    ("Fire_1.mp4", "B", "Fire", "10", "20"),
    ("MSAD_normal_testing_1.mp4", "A", "Normal", "0", "0"),
    ("Robbery_3.mp4", "C", "Robbery", "-1", "-1"),
]


@pytest.fixture
def annotations(tmp_path: Path) -> Path:
    path = tmp_path / "test_tiny.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for video, letter, label, start, end in ROWS:
            options = ["Physical fight", "Fire", "Nothing unusual", "A theft"]
            text = ["obj", "A description.", "### Specific Anomaly Type: x"]
            writer.writerow([video, "What happens?", *options, letter, *text, label, start, end])
    return path


def write_official(path: Path, column: str, rows: dict[str, str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Video Name", column])
        writer.writerows(rows.items())
    return path


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["eval", "score", *args])
    out, err = capsys.readouterr()
    return code, out, err


# -- prediction files -------------------------------------------------------------------------------


def test_jsonl_round_trip_task_filter_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    records = [
        {"video": "a.mp4", "text": "<answer>B</answer>", "parsed": "B", "task": "qa"},
        {"video": "a.mp4", "text": "<glue>[1, 2]</glue>", "task": "tag"},  # other task: ignored for qa
        {"video": "b.mp4", "text": None, "parsed": "C"},  # no text: parsed value used
        {"video": "a.mp4", "text": "<answer>D</answer>", "task": "qa"},  # duplicate: first kept
    ]
    assert write_predictions(path, records) == 4
    read = read_predictions(path, "qa")
    assert read.kind == "jsonl"
    assert read.values == {"a.mp4": "<answer>B</answer>", "b.mp4": "C"}
    assert read_predictions(path, "tag").values == {"a.mp4": "<glue>[1, 2]</glue>", "b.mp4": "C"}


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", r"preds\.jsonl:2: not valid JSON"),  # broken line, reported with its number
        ('["a", "b"]', r"preds\.jsonl:2: a JSON list, not an object; expected one JSON object per line"),
        ('{"text": "A"}', r"preds\.jsonl:2: no key 'video'; expected .* a string 'video'"),  # no video
        ('{"video": 3, "text": "A"}', r"preds\.jsonl:2: video='3' has the wrong type"),  # not a name
        ('{"video": "b.mp4", "te', r"preds\.jsonl:2: not valid JSON"),  # torn line
        ('{"video": "b.mp4"}', r"preds\.jsonl:2: .*neither 'text' nor 'parsed'"),  # nothing to score
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "preds.jsonl"
    path.write_text('{"video": "a.mp4", "text": "A"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        read_predictions(path, "qa")


def test_jsonl_bytes_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    path.write_bytes('{"video": "a.mp4", "text": "A"}\n{"video": "b.mp4", "text": "ä'.encode()[:-1] + b'"}\n')
    with pytest.raises(ValueError, match=r"preds\.jsonl:2: not UTF-8"):
        read_predictions(path, "qa")


def test_official_csv_and_kind_sniffing(tmp_path: Path) -> None:
    csv_path = write_official(tmp_path / "output.csv", "CLS answer", {"a.mp4": "<answer> Normal </answer>"})
    assert read_predictions(csv_path, "cls").kind == "official_csv"
    with pytest.raises(ValueError, match="no column 'QA answer'"):
        read_predictions(csv_path, "qa")  # a CLS output cannot be scored as QA
    sniffed = tmp_path / "preds.txt"
    sniffed.write_text('{"video": "a.mp4", "text": "B"}\n', encoding="utf-8")
    assert read_predictions(sniffed, "qa").kind == "jsonl"
    with pytest.raises(FileNotFoundError):
        read_predictions(tmp_path / "missing.jsonl", "qa")
    with pytest.raises(ValueError, match="Cannot score task 'reasoning'"):
        read_predictions(sniffed, "reasoning")


# -- scoring ------------------------------------------------------------------------------------------


def test_score_defaults_strict_for_jsonl_lenient_for_official(annotations: Path, tmp_path: Path) -> None:
    answers = {"Assault_2.mp4": "It is a fight, so a", "Fire_1.mp4": "B", "MSAD_normal_testing_1": "A"}
    official = write_official(tmp_path / "output_msad.csv", "QA answer", answers)
    jsonl = tmp_path / "preds.jsonl"
    write_predictions(jsonl, [{"video": video, "text": text} for video, text in answers.items()])
    lenient = score_predictions("qa", annotations, official, source="msad")
    strict = score_predictions("qa", annotations, jsonl, source="msad")
    assert (lenient.parser, strict.parser) == ("lenient", "strict")
    assert lenient.metrics["accuracy"] == pytest.approx(75.0)  # official cleaner reads the trailing "a" as A
    assert strict.metrics["accuracy"] == pytest.approx(50.0)  # a sentence is no answer
    assert lenient.missing == ("Robbery_3.mp4",) and lenient.n == 4
    forced = score_predictions("qa", annotations, official, source="msad", parser="strict", only_predicted=True)
    assert forced.n == 3 and forced.metrics["accuracy"] == pytest.approx(200 / 3)


def test_cli_tag_json(annotations: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    preds = write_official(
        tmp_path / "output_tag.csv",
        "Temporal Grounding",
        {"Assault_2": "<glue>[0.5, 6.5]</glue>", "Fire_1": "<glue>[15.0, 25.0]</glue>"},
    )
    args = ["--task", "tag", "--annotations", str(annotations), "--predictions", str(preds), "--json"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0
    result = json.loads(out)
    assert result["n"] == 2 and result["missing"] == 0  # normal and -1/-1 rows are not grounding targets
    assert result["miou"] == pytest.approx(100 * (1 + 1 / 3) / 2)
    assert (result["r@0.3"], result["r@0.5"], result["r@0.7"]) == (100.0, 50.0, 50.0)


def test_cli_cls_table(annotations: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    preds = tmp_path / "preds.jsonl"
    write_predictions(
        preds,
        [
            {"video": "Assault_2.mp4", "text": "<think>x</think><answer>Fighting</answer>"},
            {"video": "Fire_1.mp4", "text": "<think>x</think><answer>fire</answer>"},
            {"video": "MSAD_normal_testing_1.mp4", "text": "<think>x</think><answer>Normal</answer>"},
        ],
    )
    code, out, _ = run_cli(capsys, "--task", "cls", "--annotations", str(annotations), "--predictions", str(preds))
    assert code == 0
    assert "binary_accuracy  75.00%" in out and "multi_accuracy   50.00%" in out and "missing=1" in out


def test_cli_errors_exit_2(annotations: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_cli(capsys, "--task", "qa", "--annotations", str(annotations), "--predictions", "nope.jsonl")
    assert code == 2 and "nope.jsonl not found" in err
    with pytest.raises(SystemExit):  # argparse rejects an unknown task
        main(["eval", "score", "--task", "reasoning", "--annotations", "a", "--predictions", "b"])


# -- real data --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["official_csv", "jsonl"])
def test_constant_answer_a_on_msad_test(
    vau_bench_dir: Path, tmp_path: Path, kind: str, capsys: pytest.CaptureFixture
) -> None:
    """The answer-position sanity baseline of docs/paper.md §2.3: always "A" scores 164/240 = 68.33%."""
    csv_path = vau_bench_dir / "test_msad.csv"
    videos = [sample.video for sample in load_annotations(csv_path, source="msad").samples]
    if kind == "official_csv":  # official InternVL-style names: no .mp4
        preds = write_official(tmp_path / "out.csv", "QA answer", {v.removesuffix(".mp4"): "A" for v in videos})
    else:
        preds = tmp_path / "preds.jsonl"
        write_predictions(preds, [{"video": v, "text": "<think>…</think><answer>A</answer>"} for v in videos])
    args = ["--task", "qa", "--annotations", str(csv_path), "--source", "msad", "--predictions", str(preds), "--json"]
    code, out, _ = run_cli(capsys, *args)
    result = json.loads(out)
    assert code == 0 and result["n"] == 240 and result["missing"] == 0
    # 163 rows hold "A" plus one full-text "A. No sign of anomaly" → 164/240.
    assert result["accuracy"] == pytest.approx(100 * 164 / 240)
    assert f"{result['accuracy']:.2f}" == "68.33"
