"""``vau-r1 eval judge``: VAU-Eval scores of a reasoning prediction file (docs/paper.md §8.5).

Predictions are either the paper's reasoning CSV (``Video Name,Description,Analysis``, as written by the
official inference or by ``vau-r1 eval run task=reasoning`` as ``predictions_reasoning.csv``) or this
library's JSONL (records with ``description`` and ``analysis``). Ground truth is the annotation CSV's
``Description`` / ``Reasoning``; rows without it are not judged. Results, the per-row table and the
judge cache go to the output folder (a rerun asks only about rows not yet judged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vau_r1.data.annotations import load_annotations
from vau_r1.data.jsonl import read_jsonl
from vau_r1.eval.reasoning import judge_records
from vau_r1.judge import COLUMNS, JudgeConfig, JudgeReport, load_judge_config, read_predictions_csv
from vau_r1.resources import config_dir

__all__ = ["JUDGE_CONFIG_DIR", "judge_file", "judge_table", "read_reasoning_predictions", "resolve_judge_config"]

logger = logging.getLogger(__name__)

#: ``vau_r1/configs/judge/`` of the repository: ``--judge deepseek`` means ``vau_r1/configs/judge/deepseek.yaml``.
JUDGE_CONFIG_DIR = config_dir("judge")


def resolve_judge_config(name_or_path: str, overrides: Sequence[str] | Mapping[str, Any] = ()) -> JudgeConfig:
    """Load a judge config by name (``deepseek``) or path, with overrides (``key=value`` strings or a mapping).

    Raises:
        FileNotFoundError: no such config; the message lists the named ones.
        ValueError: an override or key the judge config does not accept.
    """
    from omegaconf import OmegaConf

    path = Path(name_or_path)
    if not path.is_file():
        path = JUDGE_CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in JUDGE_CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no judge config {name_or_path!r}: give a YAML path or one of {names}")
    if isinstance(overrides, Mapping):
        return load_judge_config(path, **overrides)
    if bad := [item for item in overrides if "=" not in item]:
        raise ValueError(f"judge overrides must be key=value, got {bad}")
    values = OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides))) if overrides else {}
    return load_judge_config(path, **values)


def read_reasoning_predictions(path: str | Path) -> dict[str, dict[str, Any]]:
    """Video name → ``{"status", "description", "analysis"}`` from a reasoning CSV or JSONL file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a CSV without the paper's columns, or a JSONL line that is not UTF-8, not JSON or not an
            object with a string ``video`` (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prediction file {path} not found")
    if path.suffix.lower() == ".csv":
        pairs = read_predictions_csv(path)
        return {video: {"status": "ok", "description": d, "analysis": a} for video, (d, a) in pairs.items()}
    records: dict[str, dict[str, Any]] = {}
    expected = "one JSON object per line with a string 'video', 'description' and 'analysis'"
    for line in read_jsonl(path, {"video": str}, strict=True, expected=expected).lines:
        if line.record.get("task", "reasoning") == "reasoning":
            records.setdefault(line.record["video"], line.record)
    return records


def judge_file(
    predictions: str | Path,
    annotations: str | Path,
    config: JudgeConfig,
    output_dir: str | Path,
    source: str | None = None,
    client: Any = None,
) -> JudgeReport:
    """Judge a reasoning prediction file against an annotation CSV; writes the judge files to ``output_dir``."""
    table = load_annotations(annotations, source=source)
    samples = table.usable("reasoning")
    if len(samples) < len(table):
        logger.info("%s: %d of %d rows have a ground-truth description and analysis", annotations, len(samples),
                    len(table))  # fmt: skip
    return judge_records(samples, read_reasoning_predictions(predictions), config, output_dir, client)


def judge_table(report: JudgeReport, label: str, max_failed: int = 20) -> str:
    """The VAU-Eval columns of paper Table A as a Markdown table, the row counts and the failed rows.

    At most ``max_failed`` failed rows are listed; all of them are in ``judge_summary.json``.
    """
    values = " | ".join("n/a" if report.means[c] is None else f"{report.means[c]:.2f}" for c in COLUMNS)
    lines = [
        "| Predictions | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS), f"| {label} | {values} |",
        f"\njudged {report.n_judged}, failed {report.n_failed}, skipped {report.n_skipped} "
        f"(cached {report.n_cached}); judge {report.judge_model}, prompt {report.prompt_version}",
    ]  # fmt: skip
    failed = report.failed_rows
    if failed:
        lines.append(f"\nfailed rows ({len(failed)}; a rerun asks again, up to max_row_attempts runs):")
        lines += [f"- {r['video']}: {r['stage']}: {r['reason']} ({r['endpoint']})" for r in failed[:max_failed]]
        if len(failed) > max_failed:
            lines.append(f"- ... {len(failed) - max_failed} more in judge_summary.json")
    return "\n".join(lines)
