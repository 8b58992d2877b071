"""The config tree ships inside the package and a user's own config folder can be added on top."""

from __future__ import annotations

import fnmatch
import sys
from pathlib import Path

import tomllib

from vau_r1.resources import CONFIG_ROOT, config_dir

ROOT = Path(__file__).resolve().parents[1]


def test_config_root_is_inside_the_package_and_holds_every_group() -> None:
    import vau_r1

    assert CONFIG_ROOT.parent == Path(vau_r1.__file__).resolve().parent
    assert (CONFIG_ROOT / "train.yaml").is_file() and (config_dir("eval") / "eval.yaml").is_file()
    groups = {p.name for p in CONFIG_ROOT.iterdir() if p.is_dir()}
    assert {"model", "data", "video", "rewards", "grpo", "sft", "trainer", "logger", "experiment", "eval",
            "judge", "accelerate"} <= groups  # fmt: skip
    assert not (ROOT / "configs").exists(), "the config tree lives in vau_r1/configs only"


def test_package_data_ships_every_config_file() -> None:
    """A wheel (non-editable install) carries every YAML of the tree: each matches a package-data glob."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vau_r1"]
    package = CONFIG_ROOT.parent
    files = [p.relative_to(package).as_posix() for p in CONFIG_ROOT.rglob("*") if p.is_file()]
    assert files and all(p.endswith(".yaml") for p in files)
    missed = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert missed == []


def test_train_reads_a_user_config_dir(tmp_path: Path, monkeypatch) -> None:
    from vau_r1.cli import main

    user = tmp_path / "my_configs" / "experiment"
    user.mkdir(parents=True)
    (user / "my_run.yaml").write_text("# @package _global_\ndefaults:\n  - debug_cpu_sft\n  - _self_\n"
                                      "trainer:\n  max_steps: 1\n  save_every: 1\n", encoding="utf-8")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["vau-r1"])
    out = tmp_path / "run"
    assert main(["train", "--config-dir", str(tmp_path / "my_configs"), "experiment=my_run", f"output_dir={out}"]) == 0
    assert (out / "checkpoints" / "step_000001").is_dir()
