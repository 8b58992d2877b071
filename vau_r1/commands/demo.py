"""``vau-r1 demo``: the whole pipeline on a CPU in about 15 minutes (see :mod:`vau_r1.demo`).

Examples::

    vau-r1 demo                                  # outputs/demo/{table.md,results.json,reward_curve.png}
    vau-r1 demo --quick --out /tmp/demo          # the shortened run of the tests (a minute or two)
    vau-r1 demo --seed 1 --sft-steps 2000 --grpo-steps 300 --size medium   # longer and larger
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="generate a mini-benchmark, train SFT then GRPO from scratch on CPU, evaluate, print a table",
        description="Generate the synthetic mini-benchmark, train a tiny Qwen2.5-VL from scratch with SFT, then "
        "with GRPO on fresh clips (and a same-budget continued-SFT control), evaluate base / SFT / SFT+GRPO / "
        "control on the held-out split, and write table.md, results.json and reward_curve.png.",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, init and order (default: %(default)s)")
    parser.add_argument("--sft-steps", type=_positive, help="SFT steps from scratch (default 250; quick 30)")
    parser.add_argument("--grpo-steps", type=_positive, help="GRPO steps (default 30; quick 3)")
    parser.add_argument("--control-steps", type=_positive, help="continued-SFT steps (default 3 x GRPO steps)")
    parser.add_argument("--num-train", type=_positive, help="SFT clips (default 400; quick 16)")
    parser.add_argument("--num-grpo", type=_positive, help="fresh GRPO clips (default 300; quick 8)")
    parser.add_argument("--num-test", type=_positive, help="held-out test clips (default 100; quick 8)")
    parser.add_argument("--size", choices=("small", "medium"), default="small", help="model size (default: small)")
    parser.add_argument("--threads", type=_positive, default=1, help="torch CPU threads; 1 is fastest when the cores "
                        "are shared with other jobs (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="the shortened demo used by the tests")
    parser.add_argument("--no-progress", action="store_true", help="no evaluation progress bars (trainers' bars stay)")
    parser.set_defaults(func=run_demo_command)


def options_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~vau_r1.demo.DemoOptions` of parsed arguments (unset options keep the preset's value)."""
    from vau_r1.demo import DemoOptions

    names = ("sft_steps", "grpo_steps", "control_steps", "num_train", "num_grpo", "num_test")
    changes = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    changes.update(out_dir=args.out, seed=args.seed, size=args.size, threads=args.threads,
                   progress=not args.no_progress)  # fmt: skip
    return DemoOptions.quick(**changes) if args.quick else DemoOptions(**changes)


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``vau-r1 demo``; prints the table and the verdicts; returns 0."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"  # bars that do not set `disable` themselves
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rich.console import Console

    from vau_r1.demo import run_demo
    from vau_r1.demo_report import markdown_table, summary_lines

    opts = options_from_args(args)
    console = Console(stderr=True)
    console.print(f"[bold]vau-r1 demo[/bold] → {opts.out_dir} (seed {opts.seed}, size {opts.size}, "
                  f"SFT {opts.sft_steps} steps, GRPO {opts.grpo_steps} steps, control {opts.control} SFT steps)")

    def stage_log(stage: str, message: str) -> None:
        console.print(f"[cyan]{stage:>18}[/cyan]  {message}")

    results = run_demo(opts, stage_log)
    print(markdown_table(results))
    for line in summary_lines(results):
        print(line)
    print(f"wall time {results['wall_s']['total']:.0f} s; outputs in {opts.out_dir}", file=sys.stderr)
    return 0
