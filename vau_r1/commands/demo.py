"""``vau-r1 demo``: the whole pipeline on a CPU in about 11 minutes (see :mod:`vau_r1.demo.run`).

Examples::

    vau-r1 demo                                  # outputs/demo/{table.md,results.json,reward_curve.png}
    vau-r1 demo --seeds 0,1,2                    # one run per seed in outputs/demo/seed_<s>, then summary.md
    vau-r1 demo --quick --out /tmp/demo          # the shortened run of the tests (a minute or two)
    vau-r1 demo --seed 1 --sft-steps 2000 --grpo-steps 300 --size medium   # longer and larger
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

from vau_r1.demo.options import DemoOptions

#: Count options of the command → help text (their defaults come from DemoOptions).
_COUNT_FLAGS: dict[str, str] = {
    "--sft-steps": "SFT steps from scratch", "--grpo-steps": "GRPO steps",
    "--control-steps": "continued-SFT steps of the control (default 3 x GRPO steps)", "--num-train": "SFT clips",
    "--num-grpo": "fresh clips of GRPO and the control", "--num-val": "clips of the swap-probe gate split",
    "--num-test": "clips of each held-out test split",
}  # fmt: skip


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0 separated by commas, e.g. 0,1,2; got {text!r}")
    return seeds


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="generate a mini-benchmark, train SFT then GRPO from scratch on CPU, evaluate with probes, print a table",
        description="Generate the synthetic mini-benchmark, train a tiny Qwen2.5-VL from scratch with SFT, check with "
        "a video-swap probe that it reads the video, then train it with GRPO on fresh clips (and a same-budget "
        "continued-SFT control), evaluate SFT / SFT+GRPO / control on a held-out and a shifted split with swap and "
        "frame-reversal probes, blind baselines and 95%% intervals, and write table.md, results.json and "
        "reward_curve.png.",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, init and order (default: %(default)s)")
    parser.add_argument("--seeds", type=_seed_list, help="several seeds, e.g. 0,1,2: one run each in "
                        "<out>/seed_<s>, then <out>/summary.md with mean and spread (overrides --seed)")
    defaults = DemoOptions()
    for flag, help_text in _COUNT_FLAGS.items():
        name = flag.removeprefix("--").replace("-", "_")
        default, quick = getattr(defaults, name), getattr(DemoOptions.quick(), name)
        shown = "" if default is None else f" (default {default}; quick {quick})"
        parser.add_argument(flag, type=_positive, help=help_text + shown)
    parser.add_argument("--swap-margin", type=float, help="QA points SFT must lose with swapped videos before GRPO "
                        f"starts (default {defaults.swap_margin:g}; quick 0)")
    parser.add_argument("--size", choices=("small", "medium"), default="small", help="model size (default: small)")
    parser.add_argument("--threads", type=_positive, default=1, help="torch CPU threads; 1 is fastest when the cores "
                        "are shared with other jobs (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="the shortened demo used by the tests")
    parser.add_argument("--no-progress", action="store_true", help="no evaluation progress bars (trainers' bars stay)")
    parser.set_defaults(func=run_demo_command)


def options_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~vau_r1.demo.options.DemoOptions` of parsed arguments (unset options keep the preset's value)."""
    from vau_r1.demo.options import DemoOptions

    names = [flag.removeprefix("--").replace("-", "_") for flag in _COUNT_FLAGS] + ["swap_margin"]
    changes = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    changes.update(out_dir=args.out, seed=args.seed, size=args.size, threads=args.threads,
                   progress=not args.no_progress)  # fmt: skip
    return DemoOptions.quick(**changes) if args.quick else DemoOptions(**changes)


def _output_folder_error(out: Path) -> str | None:
    """Why the demo cannot write into ``out`` (created here if absent), or ``None`` when it can."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; give a folder (it is created if absent)"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return f"--out {out}: cannot write there ({error.strerror or error}); choose another folder"
    return None


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``vau-r1 demo``; prints the table and the verdicts; returns 0, or 2 when ``--out`` is not writable."""
    if message := _output_folder_error(args.out):
        print(f"vau-r1 demo: error: {message}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"  # bars that do not set `disable` themselves
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from rich.console import Console

    from vau_r1.demo.run import run_demo
    from vau_r1.demo.tables import markdown_report, write_seed_summary

    base = options_from_args(args)
    seeds = args.seeds or [base.seed]
    console = Console(stderr=True)
    all_results = []
    for seed in seeds:
        out = base.out_dir / f"seed_{seed}" if args.seeds else base.out_dir
        opts = dataclasses.replace(base, seed=seed, out_dir=out)
        console.print(f"[bold]vau-r1 demo[/bold] → {opts.out_dir} (seed {opts.seed}, size {opts.size}, SFT "
                      f"{opts.sft_steps} steps, GRPO {opts.grpo_steps} steps, control {opts.control} SFT steps)")

        def stage_log(stage: str, message: str) -> None:
            console.print(f"[cyan]{stage:>18}[/cyan]  {message}")

        results = run_demo(opts, stage_log)
        all_results.append(results)
        print(markdown_report(results))
        print(f"wall time {results['wall_s']['total']:.0f} s; outputs in {opts.out_dir}", file=sys.stderr)
    if args.seeds:
        path = write_seed_summary(all_results, base.out_dir)
        print(path.read_text(encoding="utf-8"))
    return 0
