"""Anomaly reasoning (VAU-Eval input): two-turn inference with the video attached once, then the judge.

Turn 1 asks for a description of the video, turn 2 (text only, after the model's own description) for
the analysis (``docs/paper.md`` §4.4). The official inference re-attached the video to the second
turn, doubling the visual tokens (§10 item 31); :func:`vau_r1.tasks.build_reasoning_turns` builds the
chat with one copy, and the second turn's prompt re-uses the first turn's video inputs.

:func:`judge_records` pairs the predictions with the ground truth (``Description`` / ``Reasoning``
columns) and scores them with the VAU-Eval judge (:mod:`vau_r1.judge`), writing ``judge/`` beside the
predictions. :func:`write_reasoning_csv` writes the paper's ``Video Name,Description,Analysis`` CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vau_r1.data.schema import VideoSample
from vau_r1.eval.generation import Generation
from vau_r1.eval.metrics import match_predictions
from vau_r1.eval.runner import EvalItem
from vau_r1.judge import JudgeConfig, JudgeReport, judge_rows, rows_from_samples
from vau_r1.tasks import build_reasoning_turns

__all__ = ["GenerateFn", "judge_records", "reasoning_records", "write_reasoning_csv"]

#: ``(messages_list, videos, keys) -> generations``: one batched generation call.
GenerateFn = Callable[[list[list[dict[str, Any]]], list[Any], list[str]], list[Generation]]


def reasoning_records(
    items: Sequence[EvalItem], generate: GenerateFn, preset: str, system_prompt: str | None = None
) -> list[dict[str, Any]]:
    """Two batched generations (description, then analysis) for a batch of decoded videos.

    Args:
        items: decoded videos.
        generate: batched generation (see :data:`GenerateFn`).
        preset: reasoning prompt preset with a second turn (``default``, ``paper_eval_think``, ...).
        system_prompt: optional system message before the first turn.

    Returns:
        One ``ok`` record per item: ``description``, ``analysis``, ``text`` (= the analysis), token counts
        of both turns (``prompt_tokens``/``completion_tokens`` are the second turn's).
    """
    turns = [build_reasoning_turns(item.sample, preset, video=str(item.path), system_prompt=system_prompt)
             for item in items]  # fmt: skip
    videos = [item.video for item in items]
    keys = [item.sample.video for item in items]
    first = generate([t.first for t in turns], videos, keys)
    second = generate([t.history(g.text) for t, g in zip(turns, first, strict=True)], videos, keys)
    records = []
    for item, description, analysis in zip(items, first, second, strict=True):
        records.append({
            "video": item.sample.video, "task": "reasoning", "status": "ok", "text": analysis.text,
            "parsed": None, "description": description.text, "analysis": analysis.text, "error": None,
            **item.meta(), "description_tokens": description.completion_tokens,
            "prompt_tokens": analysis.prompt_tokens, "completion_tokens": analysis.completion_tokens,
            "truncated": description.truncated or analysis.truncated,
        })  # fmt: skip
    return records


def _texts(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    if record.get("status", "ok") != "ok":
        return None, None
    return record.get("description"), record.get("analysis")


def judge_records(
    samples: Sequence[VideoSample],
    records: Mapping[str, Mapping[str, Any]],
    config: JudgeConfig,
    output_dir: str | Path,
    client: Any = None,
) -> JudgeReport:
    """Judge reasoning predictions against the ground truth of ``samples``.

    Args:
        samples: annotation rows (their ``description`` / ``reasoning`` are the ground truth).
        records: video name → prediction record with ``description`` and ``analysis``; names are matched
            with or without the source prefix and extension (:func:`vau_r1.eval.metrics.match_predictions`).
        config: judge endpoint and policy.
        output_dir: the judge writes ``cache.jsonl``, ``judge_rows.csv`` and ``judge_summary.json`` here.
        client: a ready judge client (tests); by default one is built from ``config``.

    Returns:
        The judge report; a sample without a usable prediction is a ``skipped`` row.
    """
    found, _ = match_predictions(samples, {name: _texts(record) for name, record in records.items()})
    rows = rows_from_samples(samples, found)
    output_dir = Path(output_dir)
    return judge_rows(rows, config, output_dir / "cache.jsonl", output_dir=output_dir, client=client)


def write_reasoning_csv(path: str | Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write the paper's reasoning output CSV (``Video Name,Description,Analysis``); failed videos are blank."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Video Name", "Description", "Analysis"])
        for record in records:
            description, analysis = _texts(record)
            writer.writerow([record["video"], description or "", analysis or ""])
    return path
