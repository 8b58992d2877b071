"""``vau-r1 eval ...``: scoring and evaluation commands.

``vau-r1 eval score`` scores a prediction file against a VAU-Bench annotation CSV::

    vau-r1 eval score --task qa --annotations test_msad.csv --source msad --predictions preds.jsonl
    vau-r1 eval score --task tag --annotations test_msad.csv --source msad \\
        --predictions results/tag/<model>/output_msad_no_think.csv --json
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
    register_score(commands)


def register_score(commands: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 eval score``."""
    score = commands.add_parser(
        "score",
        help="score a prediction file (JSONL or official output CSV) against an annotation CSV",
        description=(
            "Metrics of one task for a prediction file. Predictions: this library's JSONL "
            "({video, text[, parsed, task]} per line) or an official VAU-R1 output CSV "
            "(Video Name + QA answer / Temporal Grounding / CLS answer). Values are percentages."
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
