"""``vau-r1 env``: versions, devices and the config root, to paste into a bug report (as ``trl env`` does).

Examples::

    vau-r1 env           # a Markdown list
    vau-r1 env --json    # the same as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from importlib import metadata
from typing import Any

#: Distributions whose versions matter for a bug report.
PACKAGES: tuple[str, ...] = ("vau-r1", "torch", "transformers", "trl", "accelerate", "peft", "deepspeed", "decord",
                             "av", "hydra-core", "datasets", "tokenizers", "numpy")  # fmt: skip
#: Environment variables that change what the library does.
ENV_VARS: tuple[str, ...] = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "WANDB_MODE", "ACCELERATE_USE_CPU",
                             "CUDA_VISIBLE_DEVICES", "WORLD_SIZE", "OMP_NUM_THREADS")  # fmt: skip


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _devices() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    return {"cuda_available": cuda, "cuda_version": torch.version.cuda, "gpus": names,
            "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}  # fmt: skip


def collect() -> dict[str, Any]:
    """Everything the report prints."""
    from vau_r1.resources import CONFIG_ROOT

    return {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES}, **_devices(),
        "config_root": str(CONFIG_ROOT), "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
    }  # fmt: skip


def run_env_command(args: argparse.Namespace) -> int:
    """Print the report; returns 0."""
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"- {key}:")
            for sub, item in value.items():
                print(f"  - {sub}: {item}")
        else:
            print(f"- {key}: {value}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vau-r1 env``."""
    parser = subparsers.add_parser("env", help="print versions, devices and the config root for a bug report")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown list")
    parser.set_defaults(func=run_env_command)
