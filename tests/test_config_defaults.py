"""One source of truth: each group's default YAML equals its dataclass's defaults, key for key."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from vau_r1.recipes.config import GRPOConfig, RunConfig, SFTConfig, TrainerConfig
from vau_r1.resources import CONFIG_ROOT, config_dir


def _defaults(cls: type) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("group, cls", [("grpo", GRPOConfig), ("sft", SFTConfig), ("trainer", TrainerConfig)])
def test_group_yaml_equals_dataclass_defaults(group: str, cls: type) -> None:
    yaml = OmegaConf.to_container(OmegaConf.load(config_dir(group, "default.yaml")), resolve=True)
    defaults = _defaults(cls)
    assert set(yaml) == set(defaults), f"{group}/default.yaml keys differ from {cls.__name__}"
    differ = {k: (yaml[k], defaults[k]) for k in yaml if _plain(yaml[k]) != _plain(defaults[k])}
    assert differ == {}, f"{group}/default.yaml vs {cls.__name__} defaults (yaml, dataclass): {differ}"


def test_train_yaml_run_keys_equal_run_config_defaults() -> None:
    yaml = OmegaConf.to_container(OmegaConf.load(CONFIG_ROOT / "train.yaml"))
    defaults = _defaults(RunConfig)
    assert set(defaults) == {"algorithm", "sft", "overwrite"}  # a new run-level default belongs in train.yaml too
    assert {k: yaml[k] for k in ("algorithm", "overwrite")} == {k: defaults[k] for k in ("algorithm", "overwrite")}
