"""Paper experiment files set only what differs from the group defaults, and the Qwen2-VL-2B ones derive.

The composed values themselves (the paper's hyper-parameters) are checked in ``test_configs.py`` and
``test_sft.py``; these tests hold the files small, so that a default changes in one place.
"""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vau_r1.resources import CONFIG_ROOT

EXPERIMENT_DIR = CONFIG_ROOT / "experiment"
BASES = sorted(p.stem for p in EXPERIMENT_DIR.glob("*_qwen2_5_vl_3b.yaml"))
DATA = ["data.annotations=/data/train.csv", "data.video_root=/data/videos"]


def composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        return OmegaConf.to_container(compose("train", overrides=list(overrides)), resolve=False)


def leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def set_in_file(name: str) -> dict[str, object]:
    """The values an experiment file writes itself (its defaults list left out)."""
    tree = OmegaConf.to_container(OmegaConf.load(EXPERIMENT_DIR / f"{name}.yaml"))
    tree.pop("defaults", None)
    return leaves(tree)


def test_there_are_nine_paper_runs_per_model() -> None:
    assert len(BASES) == 9  # QA, TAG, CLS x GRPO, SFT; description SFT; co-training GRPO and SFT
    assert sorted(p.stem for p in EXPERIMENT_DIR.glob("*_qwen2_vl_2b.yaml")) == [
        b.replace("qwen2_5_vl_3b", "qwen2_vl_2b") for b in BASES
    ]


@pytest.mark.parametrize("base", BASES)
def test_the_2b_experiment_is_the_3b_one_with_another_model(base: str) -> None:
    derived = base.replace("qwen2_5_vl_3b", "qwen2_vl_2b")
    defaults = OmegaConf.load(EXPERIMENT_DIR / f"{derived}.yaml").defaults
    assert next(iter(defaults)) == base, f"{derived}.yaml must start its defaults list with {base}"
    assert set(set_in_file(derived)) == {"run_name"}
    a, b = leaves(composed(f"experiment={base}", *DATA)), leaves(composed(f"experiment={derived}", *DATA))
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    assert differ and all(k.startswith("model.") or k in ("run_name", "output_dir") for k in differ), differ


@pytest.mark.parametrize("base", BASES)
def test_no_value_repeats_what_the_groups_give(base: str) -> None:
    """Removing any value the file sets would change the composed run: the file holds differences only."""
    own = set_in_file(base)
    full = leaves(composed(f"experiment={base}", *DATA))
    groups = base_groups(base)
    without = leaves(composed(*groups, *DATA))
    repeated = sorted(k for k in own if k != "run_name" and k in without and without[k] == full[k])
    assert repeated == [], f"{base}.yaml repeats group defaults: {repeated}"


def base_groups(base: str) -> list[str]:
    """The experiment's group choices as command-line overrides (the file's own values left out)."""
    choices = []
    for entry in OmegaConf.to_container(OmegaConf.load(EXPERIMENT_DIR / f"{base}.yaml").defaults):
        ((key, value),) = entry.items()
        key = key.removeprefix("override /")
        choices.append(f"{key}={value}")
    return choices
