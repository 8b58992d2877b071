"""Reward registry, config → reward list, and weighted scoring.

A reward follows TRL's contract: ``fn(completions, **columns) -> list[float | None]``, one value
per completion, ``None`` meaning "not applicable to this sample", and never raises on its columns, however
absurd (:mod:`vau_r1.rewards.columns` reads them). Built-in rewards register a
short name with :func:`register`; configs name them (``{name: accuracy, weight: 1.0}``) or give a
dotted import path to a user function (``my_pkg.rewards:length_penalty`` or
``my_pkg.rewards.length_penalty``).

Options: a reward's keyword-only parameters are its options (:func:`reward_options`), e.g.
``temporal_iou_reward(..., *, normal_iou=1.0)``. A config binds them per reward,
``{name: temporal_iou, weight: 1.0, options: {normal_iou: 0.4}}``; :func:`build_rewards` rejects unknown
keys and keeps the function's ``__name__`` and the metric key ``reward/<name>``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from vau_r1.rewards.columns import per_sample  # re-exported: the rewards' column alignment

__all__ = [
    "REWARDS",
    "RewardFn",
    "RewardScores",
    "WeightedReward",
    "bind_options",
    "build_rewards",
    "get_reward",
    "per_sample",
    "register",
    "reward_options",
    "score_completions",
]

RewardFn = Callable[..., list]
F = TypeVar("F", bound=Callable[..., Any])

#: Short name → reward function. Filled by the ``@register`` decorators when ``vau_r1.rewards`` is imported.
REWARDS: dict[str, RewardFn] = {}


def register(name: str) -> Callable[[F], F]:
    """Decorator that adds a reward to :data:`REWARDS` under ``name``; a name can be taken once.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorator(fn: F) -> F:
        if name in REWARDS:
            taken = REWARDS[name]
            raise ValueError(
                f"Reward name {name!r} is already registered by {taken.__module__}.{taken.__qualname__}; "
                "choose another name"
            )
        REWARDS[name] = fn
        return fn

    return decorator


def _unknown(name: str, why: str = "") -> ValueError:
    return ValueError(
        f"Unknown reward {name!r}{why}; expected one of {sorted(REWARDS)} "
        "or a dotted import path to your own reward function, such as 'my_pkg.rewards:my_reward'"
    )


def get_reward(name: str) -> RewardFn:
    """The reward registered as ``name``, or the function at the dotted path ``pkg.mod:fn`` / ``pkg.mod.fn``.

    Raises:
        ValueError: unknown short name, a module that cannot be imported, a missing attribute, or an
            object that is not callable (the message lists the registered names).

    >>> get_reward("format").__name__
    'format_reward'
    """
    if name in REWARDS:
        return REWARDS[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
    elif "." in name:
        module_name, _, attribute = name.rpartition(".")
    else:
        raise _unknown(name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise _unknown(name, f" (cannot import module {module_name!r}: {err})") from err
    fn = getattr(module, attribute, None)
    if not callable(fn):
        raise _unknown(name, f" (module {module_name!r} has no callable {attribute!r})")
    return fn


@dataclass(frozen=True)
class WeightedReward:
    """One configured reward: ``name`` (metric key ``reward/<name>``), the function (options bound), its
    weight, and the options bound into ``fn`` (for the record)."""

    name: str
    fn: RewardFn
    weight: float = 1.0
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)


def reward_options(fn: RewardFn) -> dict[str, Any]:
    """The options a reward takes: its keyword-only parameters and their defaults (``None`` if none).

    >>> reward_options(get_reward("temporal_iou")), reward_options(get_reward("format"))
    ({'normal_iou': 1.0}, {})
    """
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins and other callables without a signature
        return {}
    return {p.name: None if p.default is p.empty else p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


def bind_options(name: str, fn: RewardFn, options: Mapping[str, Any]) -> RewardFn:
    """``fn`` with ``options`` bound; ``fn`` itself when there are none.

    The bound reward keeps ``fn``'s ``__name__`` (TRL logs under it) and shows the bound values as its
    options' defaults. It is called once on no completions, so that the reward rejects a bad value now.

    Raises:
        ValueError: an option ``fn`` does not take (names the reward, the key and the valid options), or a
            value the reward rejects.

    >>> bound = bind_options("temporal_iou", get_reward("temporal_iou"), {"normal_iou": 0.4})
    >>> bound.__name__, reward_options(bound), bound(["<glue>[-1, -1]</glue>"], span=[[-1, -1]])
    ('temporal_iou_reward', {'normal_iou': 0.4}, [0.4])
    """
    if not options:
        return fn
    valid = reward_options(fn)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"Reward {name!r} has no option {', '.join(map(repr, unknown))}; valid options: {sorted(valid) or 'none'}"
        )
    bound = dict(options)

    @functools.wraps(fn)
    def reward(*args: Any, **columns: Any) -> list:
        return fn(*args, **{**columns, **bound})

    signature = inspect.signature(fn)
    params = [p.replace(default=bound[p.name]) if p.name in bound else p for p in signature.parameters.values()]
    reward.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    try:
        reward(completions=[])
    except (TypeError, ValueError) as err:
        raise ValueError(f"Reward {name!r}: invalid options {bound!r}: {err}") from err
    return reward


def _options(name: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"Reward {name!r} has options {value!r}; options must be a mapping {{key: value}}")
    return {str(k): v for k, v in value.items()}


def _spec_items(specs: object) -> Iterable[tuple[str, float, dict[str, Any]]]:
    if isinstance(specs, Mapping) and "name" not in specs:  # {name: weight, ...}
        yield from ((str(k), v, {}) for k, v in specs.items())
        return
    if isinstance(specs, (str, Mapping)):
        specs = [specs]
    for spec in specs:  # type: ignore[union-attr]
        if isinstance(spec, str):
            yield spec, 1.0, {}
        elif isinstance(spec, Mapping):  # dicts and OmegaConf DictConfig
            extra = set(spec) - {"name", "weight", "options"}
            if "name" not in spec or extra:
                raise ValueError(
                    f"Reward spec {dict(spec)!r} needs a 'name', an optional 'weight' and optional 'options', "
                    "nothing else"
                )
            name = str(spec["name"])
            yield name, spec.get("weight", 1.0), _options(name, spec.get("options"))
        elif isinstance(spec, Sequence) and len(spec) == 2:
            yield str(spec[0]), spec[1], {}
        else:
            raise ValueError(
                f"Cannot read reward spec {spec!r}; use 'name', (name, weight) or {{name, weight, options}}"
            )


def build_rewards(specs: object) -> list[WeightedReward]:
    """Resolve reward specs from a config into :class:`WeightedReward` objects, in order.

    Args:
        specs: a list whose items are a name, a ``(name, weight)`` pair or a ``{name, weight, options}``
            mapping (OmegaConf containers work), or a ``{name: weight}`` mapping. Weight defaults to 1;
            ``options`` (a mapping, default none) are bound into the function (:func:`bind_options`).

    Raises:
        ValueError: unknown name (lists the valid ones), a weight that is not a finite number, a
            malformed spec, an unknown option or a bad option value, or the same name twice.

    >>> [(r.name, r.weight) for r in build_rewards([{"name": "format", "weight": 0.5}, ("accuracy", 1)])]
    [('format', 0.5), ('accuracy', 1.0)]
    >>> (iou,) = build_rewards([{"name": "temporal_iou", "options": {"normal_iou": 0.4}}])
    >>> iou.name, iou.fn.__name__, iou.options
    ('temporal_iou', 'temporal_iou_reward', {'normal_iou': 0.4})
    """
    rewards: list[WeightedReward] = []
    for name, weight, options in _spec_items(specs):
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            weight = math.nan
        if not math.isfinite(weight):
            raise ValueError(f"Reward {name!r} has weight {weight!r}; the weight must be a finite number")
        if any(reward.name == name for reward in rewards):
            raise ValueError(f"Reward {name!r} is listed twice; list each reward once and adjust its weight")
        rewards.append(WeightedReward(name, bind_options(name, get_reward(name), options), weight, options))
    return rewards


class RewardScores(NamedTuple):
    """Scores of ``N`` completions under ``K`` rewards.

    Attributes:
        per_func: ``[N][K]`` values; ``None`` where a reward does not apply (TRL's NaN).
        total: ``[N]`` weighted sums over the rewards that apply; ``None`` for a row where none applies.
    """

    per_func: list[list[float | None]]
    total: list[float | None]


def score_completions(
    rewards: Sequence[WeightedReward], completions: Sequence[object], columns: Mapping[str, object] | None = None
) -> RewardScores:
    """Score completions with every reward and take the NaN-aware weighted sum.

    Each reward is called as TRL does, ``fn(completions=..., **columns)``. ``None`` and NaN values
    are "not applicable" and are left out of the row's sum (TRL's ``nansum``). A row where no reward
    applies gets ``total = None``, not 0, so that it stays out of the group baseline (TRL 1.16 marks
    such rows NaN for the same reason).

    Raises:
        ValueError: a reward returned a number of values different from ``len(completions)``.

    >>> rewards = build_rewards([("format", 1.0), ("temporal_iou", 2.0)])
    >>> score_completions(rewards, ["<think>a</think><answer>B</answer>"], {"task": ["qa"], "span": [None]})
    RewardScores(per_func=[[1.0, None]], total=[1.0])
    """
    n = len(completions)
    per_func: list[list[float | None]] = [[] for _ in range(n)]
    for reward in rewards:
        values = list(reward.fn(completions=list(completions), **dict(columns or {})))
        if len(values) != n:
            raise ValueError(f"Reward {reward.name!r} returned {len(values)} values for {n} completions")
        for row, value in zip(per_func, values, strict=True):
            value = None if value is None else float(value)
            row.append(None if value is None or math.isnan(value) else value)
    totals: list[float | None] = []
    for row in per_func:
        applicable = [reward.weight * value for reward, value in zip(rewards, row, strict=True) if value is not None]
        totals.append(math.fsum(applicable) if applicable else None)
    return RewardScores(per_func, totals)
