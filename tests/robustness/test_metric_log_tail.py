"""A training run killed mid-write leaves a torn ``metrics.jsonl`` line; the resumed run's logger cuts it off."""

from __future__ import annotations

import json
from pathlib import Path

from vau_r1.engine.loggers import JsonlLogger


def test_a_resumed_logger_starts_after_the_last_whole_record(tmp_path: Path) -> None:
    whole = json.dumps({"step": 1, "train/loss": 0.5}) + "\n"
    (tmp_path / "metrics.jsonl").write_text(whole + '{"step": 2, "train/lo')  # killed inside step 2's write
    (tmp_path / "completions.jsonl").write_text('{"step": 1, "table": "completions"}')  # whole, no line break
    logger = JsonlLogger(tmp_path)
    logger.log({"train/loss": 0.25}, step=2)
    logger.log_table("completions", ["text"], [["<answer>A</answer>"]], step=2)
    logger.close()
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2] and metrics[1]["train/loss"] == 0.25
    tables = [json.loads(line) for line in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert [t["step"] for t in tables] == [1, 2]  # the whole unterminated record was kept
