"""``vau-r1 data ...``: inspect VAU-Bench annotations and videos.

Examples::

    vau-r1 data check                                   # the packaged sample annotations
    vau-r1 data check --annotations test_msad.csv --source msad --json
    vau-r1 data check --annotations val.csv --videos /data/vau_videos
    vau-r1 data cache --annotations train.csv --videos /data/vau_videos --cache-dir /scratch/vc --workers 8
    vau-r1 data cache experiment=qa_grpo_qwen2_5_vl_3b data.annotations=train.csv data.video_root=videos \
        data.video_cache_dir=/scratch/vc          # the run's own sampling settings (data.video)

Exit codes of ``data check`` and ``data cache``: 0 all good, 1 a video is missing or does not decode,
2 the annotation file (or the video folder, or the config) cannot be used.
"""

from __future__ import annotations

import argparse
import dataclasses
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
    _register_cache(commands)


def _register_cache(commands: argparse._SubParsersAction) -> None:
    cache = commands.add_parser(
        "cache",
        help="decode every video once into the decode cache (data.video_cache_dir) that training and eval read",
        description="Decode each video referenced by a VAU-Bench CSV once, with the given sampling settings, into "
        "the decode cache (vau_r1.data.cache); report how many entries were written, were already cached, "
        "or failed and why. Either pass --annotations/--videos/--video-preset, or training overrides "
        "(e.g. experiment=... data.annotations=...) whose data.* settings are used.",
    )
    cache.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="training config overrides (vau-r1 train syntax); their data section gives the CSV, "
                       "the videos, the sampling (data.video) and the cache (data.video_cache_dir)")  # fmt: skip
    cache.add_argument("--annotations", type=Path, help="VAU-Bench CSV (default: data.annotations of the overrides)")
    cache.add_argument(
        "--source", choices=SOURCES, help="dataset of unprefixed video names in --annotations (test_msad.csv: msad)"
    )
    cache.add_argument("--videos", type=Path, help="folder holding the video files (default: data.video_root)")
    cache.add_argument("--video-preset", help="vau_r1/configs/video/ preset to sample with, without overrides "
                       "(default: paper_train)")  # fmt: skip
    cache.add_argument("--cache-dir", type=Path, help="the decode cache folder (default: data.video_cache_dir)")
    cache.add_argument("--workers", type=_positive_int, default=1, help="decoding processes (default: %(default)s)")
    cache.add_argument("--decode-timeout-s", type=_positive_seconds, help="limit for decoding one video (seconds; "
                       "default: the sampling settings' decode_timeout_s)")  # fmt: skip
    cache.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    cache.set_defaults(func=run_cache)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return int(text)


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


class _BadInput(ValueError):
    """Input ``vau-r1 data cache`` cannot use; the message names the argument and the fix."""


def _train_data(overrides: list[str]) -> dict:
    """The resolved ``data`` section of the training config composed from ``overrides``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from vau_r1.commands.preflight import explain
    from vau_r1.resources import CONFIG_ROOT

    def composed(values: list[str]):
        with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
            return compose(config_name="train", overrides=values)

    try:
        cfg = composed(overrides)
        return OmegaConf.to_container(cfg, resolve=True)["data"]
    except (HydraException, OmegaConfBaseException) as error:
        raise _BadInput(f"overrides: {explain(error, overrides, composed)}") from error


def _cache_inputs(args: argparse.Namespace) -> tuple:
    """``(table, video_root, video_config, cache_dir)`` from the flags and, when given, the training overrides."""
    from vau_r1.data.annotations import AnnotationError, load_annotations
    from vau_r1.data.video import VideoConfig

    if args.overrides and args.video_preset is not None:
        raise _BadInput("--video-preset with overrides: the overrides' data.video is used; set video=<preset> "
                        "among the overrides instead")  # fmt: skip
    data = _train_data(args.overrides) if args.overrides else {}
    annotations = args.annotations or data.get("annotations")
    videos = args.videos or data.get("video_root")
    cache_dir = args.cache_dir or data.get("video_cache_dir")
    needed = ((annotations, "--annotations", "data.annotations"), (videos, "--videos", "data.video_root"),
              (cache_dir, "--cache-dir", "data.video_cache_dir"))  # fmt: skip
    for value, flag, key in needed:
        if not value:
            raise _BadInput(f"no {flag}: pass {flag}" + (f" or set {key}" if args.overrides else ""))
    if not Path(videos).is_dir():
        raise _BadInput(f"--videos {videos} is not a folder; pass the folder holding the videos")
    if Path(cache_dir).is_file():
        raise _BadInput(f"--cache-dir {cache_dir} is a file; pass a folder for the decode cache")
    try:
        table = load_annotations(annotations, source=args.source or data.get("source"))
        preset = args.video_preset or "paper_train"
        video = VideoConfig.from_dict(data["video"]) if data else VideoConfig.from_preset(preset)
    except (AnnotationError, FileNotFoundError, ValueError) as err:
        raise _BadInput(str(err).splitlines()[0]) from err
    if args.decode_timeout_s is not None:
        video = dataclasses.replace(video, decode_timeout_s=args.decode_timeout_s)
    return table, videos, video, cache_dir


def run_cache(args: argparse.Namespace) -> int:
    """Run ``vau-r1 data cache``; returns the exit code (0 ok, 1 a video failed, 2 unusable input)."""
    from vau_r1.data.cache_fill import fill_cache, format_fill_report

    try:
        table, videos, video, cache_dir = _cache_inputs(args)
    except _BadInput as err:
        print(f"vau-r1 data cache: {err}", file=sys.stderr)
        return 2
    report = fill_cache(table.samples, videos, video, cache_dir, workers=args.workers)
    print(json.dumps(report.to_dict(), ensure_ascii=False) if args.json else format_fill_report(report))
    return report.exit_code
