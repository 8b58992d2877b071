"""Config mistakes under ``vau-r1 train`` and ``vau-r1 eval run`` as one or two lines that name the key and the fix.

Before Hydra runs, :func:`preflight` composes the same config with the same overrides and validates it. A typo'd
key gets the closest valid keys (not Hydra's advice to add ``+key``, which would only hide the typo), a group
choice that is not a file (``model=Qwen/Qwen2.5-VL-3B``) gets the valid choices and, for ``model``, the
``model.name_or_path=`` spelling, and an invalid value gets the validator's message. A validated config with a
``check_run_folder()`` method (:class:`~vau_r1.recipes.config.RunConfig`) also checks its output folder: a run folder
that already holds a run needs ``resume=auto`` or ``overwrite=true``. With Hydra flags (``--cfg``,
``--config-dir``, ``-m``, ...) Hydra reports errors itself. ``HYDRA_FULL_ERROR=1`` skips the check entirely.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["explain", "preflight"]

_OVERRIDE = re.compile(r"Could not override '([^']+)'")
_MISSING = re.compile(r"Could not find '([^']+)'")


def _keys_under(cfg: Any, path: str) -> list[str]:
    from omegaconf import OmegaConf

    node = OmegaConf.select(cfg, path) if path else cfg
    return [str(k) for k in node] if OmegaConf.is_dict(node) else []


def _unknown_key(key: str, base: Any) -> str:
    parent, _, leaf = key.rpartition(".")
    keys = _keys_under(base, parent)
    close = difflib.get_close_matches(leaf, keys, n=3, cutoff=0.5)
    where = f"'{parent}'" if parent else "the top level"
    hint = f"; did you mean {', '.join(f'{parent}.{c}' if parent else c for c in close)}?" if close else ""
    return f"{key}: no such key in {where}{hint} (valid: {', '.join(sorted(keys)) or 'none'})"


def _missing_choice(missing: str, error: Exception, overrides: Sequence[str]) -> str:
    group, _, choice = missing.partition("/")
    options = sorted(getattr(error, "options", None) or [])
    line = f"{group}={choice}: not a config of the '{group}' group (choices: {', '.join(options) or 'none'})"
    if group == "model":
        line += f"; to load a checkpoint folder or hub id, keep a model config and set model.name_or_path={choice}"
    return line


def explain(error: Exception, overrides: Sequence[str], compose: Callable[[list[str]], Any]) -> str:
    """A one- or two-line message for a composition or validation error of ``overrides``."""
    text = str(error)
    if match := _OVERRIDE.search(text):
        key = match.group(1)
        base = compose([o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key])
        return _unknown_key(key, base)
    if match := _MISSING.search(text):
        return _missing_choice(match.group(1), error, overrides)
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    if isinstance(error, TypeError):  # a value of the wrong type reached a validator
        return f"invalid config: a value has the wrong type ({first}); check the values of: {' '.join(overrides)}"
    return f"invalid config: {first}"


def preflight(config_dir: str, config_name: str, args: Sequence[str], validate: Callable[[Any], Any]) -> str | None:
    """Compose and validate ``config_name`` with ``args`` as Hydra will; the error message, or ``None`` when fine.

    ``validate`` returns the validated config; its ``check_run_folder()``, when it has one, runs too.
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1" or any(a.startswith("-") for a in args):
        return None
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    def compose(overrides: list[str]) -> Any:
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            return hydra_compose(config_name=config_name, overrides=overrides)

    overrides = list(args)
    try:
        validated = validate(compose(overrides))
        check_run_folder = getattr(validated, "check_run_folder", None)
        if callable(check_run_folder):  # the state of the folder the run would write to
            check_run_folder()
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as error:
        return explain(error, overrides, compose)
    return None
