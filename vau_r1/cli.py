"""The ``vau-r1`` command line.

Subcommands live in :mod:`vau_r1.commands`; each module there exposes ``register(subparsers)``
and is imported only when the command line is built, so ``vau-r1 --help`` stays fast.

``vau-r1 train key=value ...`` is handed to the Hydra entry point :mod:`vau_r1.train` unchanged, and
``vau-r1 eval run key=value ...`` to :mod:`vau_r1.evaluate`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vau_r1 import __version__

#: (command name, module) pairs; the module's ``register`` adds the subcommand's parser.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("data", "vau_r1.commands.data"),
    ("demo", "vau_r1.commands.demo"),
    ("env", "vau_r1.commands.env"),
    ("eval", "vau_r1.commands.eval"),
    ("predict", "vau_r1.commands.predict"),
)

#: Command words whose remaining arguments are Hydra overrides, passed through as they are to the module's
#: ``main`` (argparse entries only list them in ``--help``).
HYDRA_COMMANDS: dict[tuple[str, ...], str] = {("train",): "vau_r1.train", ("eval", "run"): "vau_r1.evaluate"}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="vau-r1", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vau-r1 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.add_parser("train", help=f"Hydra entry point {HYDRA_COMMANDS[('train',)]} (key=value overrides)")
    for _, module in COMMANDS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for words, module_name in HYDRA_COMMANDS.items():
        if tuple(argv[: len(words)]) == words:
            sys.argv = [f"vau-r1 {' '.join(words)}", *argv[len(words) :]]
            importlib.import_module(module_name).main()
            return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (`vau-r1 ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
