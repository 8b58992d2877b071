"""Plumbing every config section shares: the error type, the check, and the builder from a plain dict.

The YAML under ``vau_r1/configs/`` is the interface; each layer owns the dataclass of its section
(:class:`vau_r1.data.config.DataConfig`, :class:`vau_r1.grpo.config.GRPOConfig`,
:class:`vau_r1.engine.config.TrainerConfig`, ...) and :class:`vau_r1.recipes.config.RunConfig` joins them.
Every check runs once, at startup, and its message names the key and the fix.

:func:`build_section` checks every given value against its field's annotation before the dataclass's own range
checks (``__post_init__``) run:

* ``int`` takes integers, and integral floats such as ``1e3``; never ``2.5`` or ``true``;
* ``float`` takes finite numbers, ints included; ``inf`` and ``nan`` only where the field's metadata sets
  :data:`ALLOW_NONFINITE`;
* ``bool`` takes only ``true`` or ``false``; ``str`` takes a string (or a path object);
* ``X | None`` also takes ``null``; ``tuple[...]`` takes a list (of that length, for a fixed tuple), made a
  tuple; a nested dataclass takes a mapping, built the same way; ``dict`` takes a mapping.

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
    >>> try:
    ...     build_section(Section, {"size": 2.5}, "demo")
    ... except ConfigError as error:
    ...     print(error)
    demo.size=2.5: expected an integer
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from typing import Any

__all__ = ["ALLOW_NONFINITE", "ConfigError", "build_section", "check", "check_value", "describe"]

#: Field metadata key: ``field(default=..., metadata={ALLOW_NONFINITE: True})`` lets a float field take inf/nan.
ALLOW_NONFINITE = "allow_nonfinite"

_NONE = type(None)
_NOUNS = {int: "integers", float: "finite numbers", bool: "booleans (true/false)", str: "strings"}


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the fix."""


class _Mismatch(Exception):
    """A value that does not fit an annotation (turned into a :class:`ConfigError` naming the key)."""


def check(ok: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)


def _arms(hint: Any) -> tuple[Any, ...]:
    """The alternatives of a union annotation (``int | None`` → ``(int, NoneType)``), else ``(hint,)``."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(hint)
    return (hint,)


def describe(hint: Any, allow_nonfinite: bool = False) -> str:
    """What a value of annotation ``hint`` must be, in words (``int | None`` → ``an integer or null``)."""
    arms = _arms(hint)
    if len(arms) > 1:
        words = [describe(a, allow_nonfinite) for a in arms if a is not _NONE]
        return " or ".join(words + (["null"] if _NONE in arms else []))
    if hint is float:
        return "a number" if allow_nonfinite else "a finite number"
    simple = {int: "an integer", bool: "true or false", str: "a string", _NONE: "null"}
    if hint in simple:
        return simple[hint]
    if dataclasses.is_dataclass(hint):
        return f"a mapping of {hint.__name__} keys"
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if origin in (tuple, list):
        if not args or (origin is tuple and len(args) == 2 and args[1] is Ellipsis) or origin is list:
            return f"a list of {_NOUNS.get(args[0], 'values')}" if args else "a list"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_NOUNS.get(args[0], 'values')}"
        return f"a list [{', '.join(describe(a) for a in args)}]"
    if origin is dict:
        return "a mapping"
    return f"a value of type {getattr(hint, '__name__', hint)}"


def _coerce_scalar(value: Any, hint: type, allow_nonfinite: bool) -> Any:
    """``value`` as a ``bool``, ``int``, ``float`` or ``str``; raises :class:`_Mismatch`."""
    if isinstance(value, bool) != (hint is bool):  # true is no number, 1 is no boolean
        raise _Mismatch
    if hint is int:
        if isinstance(value, float) and value.is_integer():  # 1e3 from YAML or the command line
            return int(value)
    elif hint is float and isinstance(value, (int, float)):  # an int is a number too, and kept as written
        if not allow_nonfinite and not math.isfinite(value):
            raise _Mismatch
        return value
    if hint is str and isinstance(value, os.PathLike):  # a pathlib.Path from Python code
        return os.fspath(value)
    if not isinstance(value, hint):
        raise _Mismatch
    return value


def _coerce_sequence(value: Any, hint: Any, key: str) -> Any:
    """A list or tuple whose items fit ``hint``'s item annotations (a tuple field gets a tuple)."""
    origin, args = typing.get_origin(hint) or hint, typing.get_args(hint)
    if not isinstance(value, (list, tuple)):
        raise _Mismatch
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise _Mismatch
        items = [_coerce(v, a, f"{key}[{i}]", False) for i, (v, a) in enumerate(zip(value, args, strict=True))]
    else:
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]", False) for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _coerce(value: Any, hint: Any, key: str, allow_nonfinite: bool) -> Any:
    """``value`` checked (and normalised) against ``hint``; raises :class:`_Mismatch` when it does not fit."""
    arms = _arms(hint)
    if len(arms) > 1:
        if value is None and _NONE in arms:
            return None
        for arm in (a for a in arms if a is not _NONE):
            try:
                return _coerce(value, arm, key, allow_nonfinite)
            except _Mismatch:
                continue
        raise _Mismatch
    if hint is Any or hint is object:
        return value
    if hint is _NONE:
        if value is not None:
            raise _Mismatch
        return None
    if hint in (bool, int, float, str):
        return _coerce_scalar(value, hint, allow_nonfinite)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise _Mismatch
        return build_section(hint, value, key)  # its own errors name the nested keys
    origin = typing.get_origin(hint) or hint
    if origin in (tuple, list):
        return _coerce_sequence(value, hint, key)
    if isinstance(origin, type) and not isinstance(value, origin):
        raise _Mismatch
    return value


def check_value(value: Any, hint: Any, key: str, allow_nonfinite: bool = False) -> Any:
    """``value`` checked against annotation ``hint``: lists become tuples for tuple fields, ``1e3`` ``1000`` for ints.

    Raises:
        ConfigError: naming ``key``, the value and what it should be, e.g.
            ``trainer.max_steps='abc': expected an integer or null``.
    """
    try:
        return _coerce(value, hint, key, allow_nonfinite)
    except _Mismatch:
        hint_text = ""
        if isinstance(value, bool) and str in _arms(hint):
            hint_text = " (YAML reads yes/no/on/off as true/false: quote the word, e.g. 'no')"
        raise ConfigError(f"{key}={_show(value)}: expected {describe(hint, allow_nonfinite)}{hint_text}") from None


def _show(value: Any) -> str:
    """``value`` as the config spells it: ``true``, ``null``, ``'abc'``, ``[0.9, 'x']``."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_show(v) for v in value)}]"
    return repr(value)


def build_section(cls: type, values: dict[str, Any] | None, key: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, naming ``key`` in every error.

    Unknown and missing keys are refused, and each given value is checked against its field's annotation
    (:func:`check_value`); nested dataclass fields (``data.mini_bench``) are built the same way. ``key`` is
    the section's prefix in messages (``""`` for a top-level config).
    """
    values = dict(values or {})
    prefix = f"{key}." if key else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    check(not unknown, f"unknown key(s) {[f'{prefix}{u}' for u in unknown]}; valid keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    for name in [n for n in fields if n in values]:  # in field order: the same first error on every run and rank
        allow = bool(fields[name].metadata.get(ALLOW_NONFINITE, False))
        values[name] = check_value(values[name], hints[name], f"{prefix}{name}", allow)
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # fmt: skip
    check(not missing, f"missing required key(s) {[f'{prefix}{m}' for m in missing]}; set them in the config")
    return cls(**values)
