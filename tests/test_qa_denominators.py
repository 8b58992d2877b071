"""QA accuracy under both denominators: all usable rows (the paper's) and rows with a valid prediction (upstream fix).

``eval score`` (the result object, the CLI's JSON and text) and ``eval run`` (report.json, report.md, report.csv,
pooling, ``eval table``) each carry both accuracies with their ``n``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_eval_probes import StubGenerate, compose_eval, seeing

from vau_r1.apps.evaluate import run
from vau_r1.bench import write_benchmark
from vau_r1.cli import main
from vau_r1.data.annotations import COLUMNS, load_annotations
from vau_r1.data.schema import VideoSample
from vau_r1.eval import write_predictions
from vau_r1.eval.denominators import DENOMINATOR_LABELS, pool_denominators
from vau_r1.eval.metrics import qa_accuracy
from vau_r1.eval.report import EvalReport, markdown_table, pool_reports, read_report, write_report
from vau_r1.model.builder import ModelConfig, load_model_and_processor

OPTIONS = ("A fight", "A fire", "No sign of anomaly", "A theft")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def qa(video: str, answer: str | None) -> VideoSample:
    return VideoSample(video=video, source="msad", row=1, question="What happens?", options=OPTIONS, answer=answer)


SAMPLES = [qa("v1.mp4", "A"), qa("v2.mp4", "B"), qa("v3.mp4", "C"), qa("v4.mp4", "D"), qa("v5.mp4", "A")]
PREDICTIONS = {
    "v1.mp4": "<answer>A</answer>",  # right
    "v2.mp4": "<answer>C</answer>",  # valid, wrong
    "v3.mp4": "It is a mystery",  # unparseable: wrong under the paper's rule, left out by the upstream fix
    "v4.mp4": "No sign of anomaly",  # full option text = C: valid, wrong
    # v5: no prediction at all
}


def test_both_denominators_of_qa_accuracy() -> None:
    result = qa_accuracy(SAMPLES, PREDICTIONS)
    both = result.denominators
    assert set(both) == set(DENOMINATOR_LABELS)
    assert (both["all_rows"]["correct"], both["all_rows"]["n"]) == (1, 5)
    assert (both["valid_predictions"]["correct"], both["valid_predictions"]["n"]) == (1, 3)  # v1, v2, v4
    assert both["all_rows"]["accuracy"] == pytest.approx(20.0) == result.metrics["accuracy"]
    assert both["valid_predictions"]["accuracy"] == pytest.approx(100 / 3)
    # only_predicted changes `accuracy` (rows with any prediction, 4) but not the two labelled blocks.
    only = qa_accuracy(SAMPLES, PREDICTIONS, only_predicted=True)
    assert only.n == 4 and only.metrics["accuracy"] == pytest.approx(25.0) and only.denominators == both
    # The parser decides what is valid: the official cleaner reads the "a" of "It is a mystery" as A.
    strict, lenient = (qa_accuracy(SAMPLES[:3], PREDICTIONS, parser=p).denominators for p in ("strict", "lenient"))
    assert (strict["valid_predictions"]["n"], lenient["valid_predictions"]["n"]) == (2, 3)
    # No valid prediction: no number, not a division by zero.
    empty = qa_accuracy(SAMPLES, {}).denominators
    assert empty["valid_predictions"] == {**empty["valid_predictions"], "accuracy": None, "n": 0}


def test_to_dict_and_summary_carry_both() -> None:
    result = qa_accuracy(SAMPLES, PREDICTIONS)
    out = result.to_dict()
    assert (out["n"], out["n_valid"]) == (5, 3)
    assert out["accuracy"] == pytest.approx(20.0) and out["accuracy_valid"] == pytest.approx(100 / 3)
    assert out["denominators"]["valid_predictions"]["label"] == DENOMINATOR_LABELS["valid_predictions"]
    json.dumps(out)  # JSON-ready
    text = result.summary()
    assert "over all_rows (n=5)" in text and "33.33% over valid_predictions (n=3)" in text


def write_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for sample in SAMPLES:
            writer.writerow([sample.video, "What happens?", *OPTIONS, sample.answer, "obj", "d.", "r.", "Fire", "1",
                             "2"])  # fmt: skip
    return path


def test_cli_eval_score_json_returns_both_accuracies_with_their_n(tmp_path: Path, capsys) -> None:
    annotations = write_csv(tmp_path / "test_tiny.csv")
    predictions = tmp_path / "preds.jsonl"
    write_predictions(predictions, [{"video": v, "text": t} for v, t in PREDICTIONS.items()])
    args = ["eval", "score", "--task", "qa", "--annotations", str(annotations), "--source", "msad",
            "--predictions", str(predictions)]  # fmt: skip
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["n"], out["n_valid"]) == (5, 3)
    assert out["accuracy"] == pytest.approx(20.0) and out["accuracy_valid"] == pytest.approx(100 / 3)
    assert {k: v["n"] for k, v in out["denominators"].items()} == {"all_rows": 5, "valid_predictions": 3}
    assert main(args) == 0
    assert "valid_predictions (n=3)" in capsys.readouterr().out


def test_pooling_is_exact_and_old_reports_still_read(tmp_path: Path) -> None:
    a = qa_accuracy(SAMPLES[:2], PREDICTIONS).denominators
    b = qa_accuracy(SAMPLES[2:], PREDICTIONS).denominators
    assert pool_denominators([a, b]) == qa_accuracy(SAMPLES, PREDICTIONS).denominators
    assert pool_denominators([a, {}]) == {}  # an older report without them: no pooled number
    old = EvalReport("qa", "msad", "m", False, {"accuracy": 50.0}, 2).to_dict()
    del old["denominators"]
    (tmp_path / "report.json").write_text(json.dumps(old))
    assert read_report(tmp_path).denominators == {}
    assert "valid predictions" not in markdown_table([read_report(tmp_path)])


def test_report_writers_label_both_with_their_n(tmp_path: Path) -> None:
    result = qa_accuracy(SAMPLES, PREDICTIONS)
    report = EvalReport("qa", "msad", "m", False, dict(result.metrics), result.n, denominators=result.denominators)
    paths = write_report(report, tmp_path)
    assert read_report(tmp_path).denominators == result.denominators  # report.json round trip
    md = paths["md"].read_text()
    assert "| all_rows | 20.00 | 5 |" in md and "| valid_predictions | 33.33 | 3 |" in md
    assert "| msad | m | 20.00 | 5 | 33.33 | 3 |" in md  # the paper-style row with the valid-only columns
    header, row = paths["csv"].read_text().splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert (values["accuracy"], values["n"], values["n_all_rows"], values["n_valid_predictions"]) == (
        str(result.metrics["accuracy"]), "5", "5", "3")  # fmt: skip
    assert float(values["accuracy_valid_predictions"]) == pytest.approx(100 / 3)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("syn"), num_train=2, num_test=6, duration_s=4.0, fps=4.0)


def some_invalid(answer):
    """The perfect stub with its ``A`` answers made unparseable and its ``B`` answers wrong (``C``)."""

    def wrapped(text, means):
        letter = answer(text, means)
        return {"<answer>A</answer>": "I cannot tell", "<answer>B</answer>": "<answer>C</answer>"}.get(letter, letter)

    return wrapped


# slow: a whole eval run of the tiny model on 6 clips, about 8 s.
@pytest.mark.slow
def test_eval_run_reports_both_in_json_markdown_and_csv(bench, tmp_path: Path) -> None:
    model, tokenizer = load_model_and_processor(ModelConfig(name_or_path="tiny-random", tiny={"seed": 0}))
    with StubGenerate(model, tokenizer, some_invalid(seeing(bench, "qa"))):
        report = run(compose_eval(bench, tmp_path, "qa", "batch_size=3"), model=model, tokenizer=tokenizer)
    answers = [s.answer for s in load_annotations(bench.test_csv).usable("qa", purpose="eval")]
    correct, valid = sum(a not in ("A", "B") for a in answers), sum(a != "A" for a in answers)
    assert 0 < valid < len(answers), "the split should hold A answers and others"
    saved = json.loads((tmp_path / "report.json").read_text())["denominators"]
    assert (saved["all_rows"]["correct"], saved["all_rows"]["n"]) == (correct, len(answers))
    assert (saved["valid_predictions"]["correct"], saved["valid_predictions"]["n"]) == (correct, valid)
    assert saved["all_rows"]["accuracy"] == pytest.approx(report.metrics["accuracy"])
    md = (tmp_path / "report.md").read_text()
    assert "## QA accuracy under both denominators" in md and DENOMINATOR_LABELS["valid_predictions"] in md
    assert f"| valid_predictions | {100 * correct / valid:.2f} | {valid} |" in md
    header, row = (tmp_path / "report.csv").read_text().splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert int(values["n_all_rows"]) == len(answers) and int(values["n_valid_predictions"]) == valid
    assert float(values["accuracy_valid_predictions"]) == pytest.approx(100 * correct / valid)
    pooled = pool_reports([report, report], "twice")  # the same split twice: the same shares, n doubled
    assert pooled.denominators["valid_predictions"]["n"] == 2 * valid
    assert f"| {100 * correct / valid:.2f} | {2 * valid} |" in markdown_table([pooled])
