"""The ``vau-r1`` command line.

Subcommands live in :mod:`vau_r1.commands`; each module there exposes ``register(subparsers)``
and is imported only when the command line is built, so ``vau-r1 --help`` stays fast.

``vau-r1 train key=value ...`` is handed to the Hydra entry point :mod:`vau_r1.apps.train` unchanged, and
``vau-r1 eval run key=value ...`` to :mod:`vau_r1.apps.evaluate`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from vau_r1 import __version__
from vau_r1.resources import config_dir as config_dir_of

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
HYDRA_COMMANDS: dict[tuple[str, ...], str] = {
    ("train",): "vau_r1.apps.train", ("eval", "run"): "vau_r1.apps.evaluate", ("plan",): "vau_r1.apps.plan",
}  # fmt: skip
#: Module of a Hydra command → (its config folder under vau_r1/configs, primary config, validator of the config).
HYDRA_CONFIGS: dict[str, tuple[str, str, str]] = {
    "vau_r1.apps.train": ("", "train", "vau_r1.recipes.config:RunConfig"),
    "vau_r1.apps.evaluate": ("eval", "eval", "vau_r1.eval.settings:EvalConfig"),
    "vau_r1.apps.plan": ("", "plan", "vau_r1.apps.plan:PlanConfig"),
}
_HELP_FLAGS = ("--help", "-h", "--hydra-help")


def _config_error(module_name: str, args: list[str]) -> str | None:
    """A short message for a config mistake in ``args`` (:mod:`vau_r1.commands.preflight`), or ``None``."""
    from omegaconf import OmegaConf

    from vau_r1.commands.preflight import preflight

    folder, name, validator = HYDRA_CONFIGS[module_name]
    class_module, _, class_name = validator.partition(":")
    schema = getattr(importlib.import_module(class_module), class_name)
    config_dir = str(config_dir_of(folder))
    return preflight(config_dir, name, args, lambda cfg: schema.from_dict(OmegaConf.to_container(cfg, resolve=True)))


def _hydra_help(module_name: str, command: str, args: list[str]) -> int:
    """Hydra's ``--help`` for a command without importing its (torch-heavy) module: a config-only Hydra app."""
    import hydra

    folder, name, _ = HYDRA_CONFIGS[module_name]

    @hydra.main(version_base=None, config_path=str(config_dir_of(folder)), config_name=name)
    def _app(cfg: object) -> None:  # never called: Hydra prints the help and exits first
        raise AssertionError("help only")

    sys.argv = [f"vau-r1 {command}", *args, f"hydra.help.app_name='vau-r1 {command}'"]
    _app()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="vau-r1", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vau-r1 {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.add_parser("train", help="train with GRPO or SFT (Hydra key=value overrides; --help lists the groups)")
    subparsers.add_parser("plan", help="visual tokens, lengths and peak memory per device of a GRPO run, beforehand")
    for _, module in COMMANDS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for words, module_name in HYDRA_COMMANDS.items():
        if tuple(argv[: len(words)]) == words:
            command, rest = " ".join(words), argv[len(words) :]
            if any(flag in rest for flag in _HELP_FLAGS):
                return _hydra_help(module_name, command, rest)
            if message := _config_error(module_name, rest):
                hint = "(HYDRA_FULL_ERROR=1 shows Hydra's report and the traceback)"
                print(f"vau-r1 {command}: error: {message}\n{hint}", file=sys.stderr)
                return 2
            sys.argv = [f"vau-r1 {command}", *rest]
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
