"""``vau-r1 eval ...``: scoring and evaluation commands.

``vau-r1 eval run`` generates predictions for a checkpoint and writes a report (Hydra overrides,
:mod:`vau_r1.apps.evaluate`)::

    vau-r1 eval run model=outputs/qa_grpo_qwen2_5_vl_3b task=qa protocol=paper_think source=msad \\
        annotations=test_msad.csv video_root=videos

``vau-r1 eval score`` scores a prediction file against a VAU-Bench annotation CSV::

    vau-r1 eval score --task qa --annotations test_msad.csv --source msad --predictions preds.jsonl
    (QA: accuracy over all usable rows and over rows with a valid prediction, each with its n)
    vau-r1 eval score --task tag --annotations test_msad.csv --source msad \\
        --predictions results/tag/<model>/output_msad_no_think.csv --json

``vau-r1 eval judge`` scores reasoning predictions with the VAU-Eval LLM judge::

    DEEPSEEK_API_KEY=... vau-r1 eval judge --predictions predictions_reasoning.csv --annotations test_msad.csv

``vau-r1 eval table`` puts several ``report.json`` in one paper-style table (``--pool`` adds their pooled row).
"""

from __future__ import annotations

import argparse
import json
import sys

from vau_r1.data.schema import SOURCES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 eval`` and its subcommands."""
    parser = subparsers.add_parser("eval", help="score predictions and evaluate checkpoints")
    commands = parser.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    commands.add_parser(
        "run",
        help="generate predictions for a model on a split and write a report (Hydra key=value overrides)",
        add_help=False,
    )
    register_score(commands)
    register_judge(commands)
    register_table(commands)


def register_score(commands: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 eval score``."""
    score = commands.add_parser(
        "score",
        help="score a prediction file (JSONL or official output CSV) against an annotation CSV",
        description=(
            "Metrics of one task for a prediction file. Predictions: this library's JSONL "
            "({video, text[, parsed, task]} per line) or an official VAU-R1 output CSV "
            "(Video Name + QA answer / Temporal Grounding / CLS answer). Values are percentages. QA reports "
            "both denominators, each with its n: all usable rows (the paper's; accuracy, n) and rows with a valid "
            "prediction (the upstream fix 3356ef3; accuracy_valid, n_valid)."
        ),
    )
    score.add_argument("--task", required=True, choices=("qa", "tag", "cls"), help="task to score")
    score.add_argument("--annotations", required=True, help="VAU-Bench annotation CSV (e.g. test_msad.csv)")
    score.add_argument("--predictions", required=True, help="prediction file: .jsonl or an official output .csv")
    score.add_argument("--source", choices=SOURCES, help="dataset of unprefixed video names (test CSVs)")
    score.add_argument(
        "--parser",
        choices=("strict", "lenient"),
        help="answer parser; default: strict for JSONL, lenient (official scripts) for official CSVs",
    )
    score.add_argument(
        "--only-predicted",
        action="store_true",
        help="divide by the rows that have a prediction instead of all usable rows (official scripts)",
    )
    score.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    score.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    """Run ``vau-r1 eval score``; exit code 0, or 2 on a bad file or argument."""
    from vau_r1.eval.score import score_predictions  # imported here so that ``vau-r1 --help`` stays fast

    try:
        result = score_predictions(
            args.task,
            args.annotations,
            args.predictions,
            source=args.source,
            parser=args.parser,
            only_predicted=args.only_predicted,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"vau-r1 eval score: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"{args.task} on {args.annotations} ({result.parser} parser), predictions {args.predictions}")
        print(result.summary())
    return 0


def register_judge(commands: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 eval judge``."""
    judge = commands.add_parser(
        "judge",
        help="VAU-Eval: score reasoning predictions (description + analysis) with an LLM judge",
        description=(
            "Judge each video's predicted description and analysis against the annotation CSV's Description and "
            "Reasoning (paper Table A: CLS, KM, FLU, INF, FAC, Total). Predictions: the paper's CSV "
            "(Video Name,Description,Analysis) or this library's JSONL. Judged rows are cached in the output folder."
        ),
    )
    judge.add_argument("--predictions", required=True, help="reasoning predictions: .csv (paper) or .jsonl")
    judge.add_argument("--annotations", required=True, help="VAU-Bench annotation CSV with the ground truth")
    judge.add_argument("--source", choices=SOURCES, help="dataset of unprefixed video names (test CSVs)")
    judge.add_argument("--judge", default="deepseek", help="judge config: a name in vau_r1/configs/judge/ or a YAML "
                       "path")
    judge.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="judge config overrides")
    judge.add_argument("--output-dir", help="where the judge writes (default: <predictions folder>/judge)")
    judge.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    judge.set_defaults(func=run_judge)


def run_judge(args: argparse.Namespace) -> int:
    """Run ``vau-r1 eval judge``; exit code 0, or 2 on a bad file, config or missing API key."""
    from pathlib import Path

    from vau_r1.eval.judge_cmd import judge_file, judge_table, resolve_judge_config
    from vau_r1.judge import MissingAPIKeyError

    output_dir = Path(args.output_dir) if args.output_dir else Path(args.predictions).parent / "judge"
    try:
        config = resolve_judge_config(args.judge, args.set)
        report = judge_file(args.predictions, args.annotations, config, output_dir, source=args.source)
    except (FileNotFoundError, ValueError, MissingAPIKeyError) as err:
        print(f"vau-r1 eval judge: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict()) if args.json else judge_table(report, Path(args.predictions).name))
    return 0


def register_table(commands: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 eval table``."""
    table = commands.add_parser(
        "table",
        help="put several eval reports (report.json) in paper-style Markdown tables",
        description="One table per task and think setting, one row per report; --pool adds the pooled row.",
    )
    table.add_argument("reports", nargs="+", help="report.json files or the folders holding them")
    table.add_argument("--pool", metavar="NAME", help="add a row pooling each model's reports, labelled NAME")
    table.set_defaults(func=run_table)


def run_table(args: argparse.Namespace) -> int:
    """Run ``vau-r1 eval table``; exit code 0, or 2 on an unreadable report."""
    from vau_r1.eval.report import markdown_table, pool_reports, read_report

    try:
        reports = [read_report(path) for path in args.reports]
    except (OSError, ValueError, TypeError) as err:
        print(f"vau-r1 eval table: error: {err}", file=sys.stderr)
        return 2
    groups: dict[tuple[str, bool], list] = {}
    for report in reports:
        groups.setdefault((report.task, report.think), []).append(report)
    for (task, think), group in groups.items():
        rows = list(group)
        if args.pool:
            for model in dict.fromkeys(r.model for r in group):
                rows.append(pool_reports([r for r in group if r.model == model], args.pool))
        print(f"\n{task} ({'w/' if think else 'w/o'} think)\n\n{markdown_table(rows)}")
    return 0
