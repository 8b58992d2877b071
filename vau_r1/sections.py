"""Plumbing every config section shares: the error type, the check, and the builder from a plain dict.

The YAML under ``vau_r1/configs/`` is the interface; each layer owns the dataclass of its section
(:class:`vau_r1.data.config.DataConfig`, :class:`vau_r1.grpo.config.GRPOConfig`,
:class:`vau_r1.engine.config.TrainerConfig`, ...) and :class:`vau_r1.recipes.config.RunConfig` joins them.
Every check runs once, at startup, and its message names the key and the fix.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Section:
    ...     size: int = 1
    >>> build_section(Section, {"size": 3}, "demo")
    Section(size=3)
    >>> try:
    ...     build_section(Section, {"sise": 3}, "demo")
    ... except ConfigError as error:
    ...     print(error)
    unknown key(s) ['demo.sise']; valid keys: ['size']
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the fix."""


def check(ok: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)


def _nested_dataclass(hint: Any) -> type | None:
    """The dataclass a field holds (``X`` or ``X | None``), else ``None``."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _is_tuple(hint: Any) -> bool:
    """Whether a field is a tuple (``tuple[...]`` or ``tuple[...] | None``)."""
    return any(typing.get_origin(h) is tuple or h is tuple for h in (hint, *typing.get_args(hint)))


def build_section(cls: type, values: dict[str, Any] | None, key: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, naming ``key`` in errors about unknown or missing fields.

    Nested dataclass fields (``data.mini_bench``) are built the same way; lists become tuples where the
    field is a tuple (``trainer.adam_betas``, ``data.tasks``).
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    check(not unknown, f"unknown key(s) {[f'{key}.{u}' for u in unknown]}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    for name in fields:
        value, hint = values.get(name), hints[name]
        nested = _nested_dataclass(hint)
        if isinstance(value, dict) and nested is not None:
            values[name] = build_section(nested, value, f"{key}.{name}")
        elif isinstance(value, list) and _is_tuple(hint):
            values[name] = tuple(value)
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # fmt: skip
    check(not missing, f"missing required key(s) {[f'{key}.{m}' for m in missing]}; set them in the config")
    return cls(**values)
