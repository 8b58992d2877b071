"""``vau-r1 data ...``: inspect VAU-Bench annotations and videos.

Examples::

    vau-r1 data check                                   # the packaged sample annotations
    vau-r1 data check --annotations test_msad.csv --source msad --json
    vau-r1 data check --annotations val.csv --videos /data/vau_videos

Exit codes of ``data check``: 0 all good, 1 a video is missing or does not decode,
2 the annotation file (or the video folder) cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vau_r1.data.schema import SOURCES


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 data`` and its ``check`` subcommand."""
    parser = subparsers.add_parser("data", help="inspect VAU-Bench annotations and videos")
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    check = commands.add_parser(
        "check",
        help="count usable rows per task, list skipped rows, optionally check the videos decode",
        description="Check a VAU-Bench annotation CSV: usable rows per task, every skipped row with its "
        "reason and, with --videos, that each referenced video exists and decodes.",
    )
    check.add_argument("--annotations", type=Path, help="VAU-Bench CSV (default: the packaged sample)")
    check.add_argument(
        "--source", choices=SOURCES, help="dataset of unprefixed video names in --annotations (test_msad.csv: msad)"
    )
    check.add_argument("--videos", type=Path, help="folder holding the video files (flat or msad/, ucf/, ecva/)")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    check.add_argument(
        "--decode-timeout-s", type=_positive_seconds, default=30.0, help="limit for probing one video (seconds)"
    )
    check.add_argument("--video-preset", default="paper_train",
                       help="vau_r1/configs/video/ preset whose rules the videos must meet, as training applies "
                       "them (default: %(default)s)")  # fmt: skip
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Run ``vau-r1 data check``; returns the exit code (0 ok, 1 bad videos, 2 unusable input)."""
    from vau_r1.data.annotations import AnnotationError, load_annotations, load_sample_annotations
    from vau_r1.data.check import check_table, format_report
    from vau_r1.data.video import VideoConfig

    try:
        if args.annotations is None:
            print("vau-r1 data check: no --annotations given; checking the packaged sample", file=sys.stderr)
            table = load_sample_annotations()
        else:
            table = load_annotations(args.annotations, source=args.source)
    except (AnnotationError, FileNotFoundError) as err:
        print(f"vau-r1 data check: {err}", file=sys.stderr)
        return 2
    if args.videos is not None and not args.videos.is_dir():
        print(f"vau-r1 data check: --videos {args.videos} is not a folder; pass the folder holding the videos",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        rules = VideoConfig.from_preset(args.video_preset)
    except (ValueError, FileNotFoundError) as err:
        print(f"vau-r1 data check: --video-preset: {err}", file=sys.stderr)
        return 2
    report = check_table(table, video_root=args.videos, decode_timeout_s=args.decode_timeout_s, video_config=rules)
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else format_report(report))
    return report.exit_code
