"""``vau-r1 eval ...``: scoring and evaluation commands."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 eval`` and its subcommands."""
    parser = subparsers.add_parser("eval", help="score predictions and evaluate checkpoints")
    parser.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
