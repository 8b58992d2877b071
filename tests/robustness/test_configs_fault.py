"""Faults found in config values and the run folder: each is refused at startup, in one line that names the key.

Wrong types (``trainer.max_steps=abc``, ``2.5``, ``inf``, ``maybe``), empty or file output paths, and a second run
into a folder that already holds one (``resume=auto`` continues it, ``overwrite=true`` replaces it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vau_r1.cli import main
from vau_r1.data.config import DataConfig, MiniBenchConfig
from vau_r1.data.mini_bench import write_mini_bench
from vau_r1.engine.config import LoggerConfig, TrainerConfig
from vau_r1.eval.generation import GenerationSettings
from vau_r1.eval.settings import EvalConfig
from vau_r1.grpo.config import GRPOConfig
from vau_r1.recipes.config import ConfigError, RunConfig, run_folder_problem
from vau_r1.resources import CONFIG_ROOT, config_dir
from vau_r1.sections import ALLOW_NONFINITE, build_section
from vau_r1.sft.config import SFTConfig

#: Every section built by build_section, with the required values it needs.
SECTIONS = [(TrainerConfig, "trainer", {}), (GRPOConfig, "grpo", {}), (SFTConfig, "sft", {}),
            (LoggerConfig, "logger", {}), (MiniBenchConfig, "data.mini_bench", {}),
            (DataConfig, "data", {"annotations": "a.csv", "video_root": "v", "task": "qa"}),
            (GenerationSettings, "generation", {})]  # fmt: skip


def run_cfg(*overrides: str) -> RunConfig:
    """``experiment=debug_cpu`` with ``overrides``, validated as ``vau-r1 train`` does."""
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("train", overrides=["experiment=debug_cpu", *overrides])
    return RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True))


def eval_cfg(*overrides: str) -> EvalConfig:
    with initialize_config_dir(config_dir=str(config_dir("eval")), version_base=None):
        cfg = compose("eval", overrides=["model=tiny-random", "task=qa", "annotations=a.csv", "video_root=v",
                                         *overrides])  # fmt: skip
    return EvalConfig.from_dict(OmegaConf.to_container(cfg, resolve=True))


# ---------------------------------------------------------------------------------------------- value types


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_steps=abc", "trainer.max_steps='abc': expected an integer or null"),
        ("trainer.max_steps=2.5", "trainer.max_steps=2.5: expected an integer or null"),
        ("trainer.max_steps=true", "trainer.max_steps=true: expected an integer or null"),
        ("trainer.learning_rate=inf", "trainer.learning_rate=inf: expected a finite number"),
        ("trainer.learning_rate=nan", "trainer.learning_rate=nan: expected a finite number"),
        ("trainer.cpu=maybe", "trainer.cpu='maybe': expected true or false"),
        ("trainer.cpu=1", "trainer.cpu=1: expected true or false"),
        ("trainer.adam_betas=[0.9]", "trainer.adam_betas=[0.9]: expected a list of 2 finite numbers"),
        ("trainer.adam_betas=[0.9,inf]", "trainer.adam_betas=[0.9, inf]: expected a list of 2 finite numbers"),
        ("trainer.max_grad_norm=-inf", "trainer.max_grad_norm=-inf: expected a finite number or null"),
        ("grpo.beta=nan", "grpo.beta=nan: expected a finite number"),
        ("grpo.num_generations=four", "grpo.num_generations='four': expected an integer"),
        ("sft.think=yes", "sft.think='yes': expected true or false or null"),
        ("data.shuffle=0", "data.shuffle=0: expected true or false"),
        ("data.tasks=[qa,3]", "data.tasks=['qa', 3]: expected a list of strings or null"),
        ("data.mini_bench.num_clips=2.5", "data.mini_bench.num_clips=2.5: expected an integer"),
        ("data.mini_bench.fps=inf", "data.mini_bench.fps=inf: expected a finite number"),
        ("logger.tags=abc", "logger.tags='abc': expected a list of strings"),
        ("rewards.funcs=[{name:format,weight:inf}]", "rewards.funcs[0].weight=inf: expected a finite number"),
        ("seed=abc", "seed='abc': expected an integer"),
        ("resume=3", "resume=3: expected a string or null"),
        ("overwrite=maybe", "overwrite='maybe': expected true or false"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_cfg(override)


def test_values_of_the_right_type_pass_unchanged_or_normalised():
    run = run_cfg("trainer.max_steps=1e3", "trainer.learning_rate=1", "trainer.cpu=true", "trainer.adam_betas=[0.9,1]")
    assert run.trainer.max_steps == 1000 and isinstance(run.trainer.max_steps, int)  # integral float: an integer
    assert run.trainer.learning_rate == 1 and run.trainer.cpu is True and run.trainer.adam_betas == (0.9, 1)


def test_a_yaml_boolean_in_a_string_field_says_to_quote_it():
    with pytest.raises(ConfigError, match=r"trainer\.mixed_precision=false: expected a string or null \(YAML reads"):
        build_section(TrainerConfig, {"mixed_precision": False}, "trainer")  # `mixed_precision: no` in a YAML file


def _wrong_values(hint: typing.Any, allow_nonfinite: bool) -> list[typing.Any]:
    """Values that must not fit a scalar annotation (``int``, ``float``, ``bool``, ``str``, maybe ``| None``)."""
    arms = set(typing.get_args(hint)) or {hint}
    if float in arms:
        return ["abc", True] + ([] if allow_nonfinite else [math.inf, -math.inf, math.nan])
    if int in arms:
        return ["abc", 2.5, True]
    if bool in arms:
        return ["maybe", 1, "true"]
    if str in arms:
        return [3, 1.5, True]
    return []


@pytest.mark.parametrize(("cls", "key", "required"), SECTIONS, ids=[s[1] for s in SECTIONS])
def test_every_scalar_field_of_every_section_checks_its_type(cls, key, required):
    """The check is generic (from the annotations), so a field added later is covered without a line of code."""
    hints, checked = typing.get_type_hints(cls), 0
    for f in dataclasses.fields(cls):
        for value in _wrong_values(hints[f.name], bool(f.metadata.get(ALLOW_NONFINITE))):
            with pytest.raises(ConfigError, match=rf"^{re.escape(f'{key}.{f.name}=')}.*: expected "):
                build_section(cls, {**required, f.name: value}, key)
            checked += 1
    assert checked > 0


def test_a_field_may_allow_non_finite_floats_explicitly():
    @dataclasses.dataclass(frozen=True)
    class Section:
        timeout_s: float = dataclasses.field(default=1.0, metadata={ALLOW_NONFINITE: True})
        rate: float = 1.0

    assert build_section(Section, {"timeout_s": math.inf}, "demo").timeout_s == math.inf
    with pytest.raises(ConfigError, match=r"demo\.rate=inf: expected a finite number"):
        build_section(Section, {"rate": math.inf}, "demo")


def test_eval_values_are_type_checked_too():
    with pytest.raises(ConfigError, match=re.escape("max_samples='abc': expected an integer or null")):
        eval_cfg("max_samples=abc")
    with pytest.raises(ConfigError, match=re.escape("generation.temperature=inf: expected a finite number")):
        eval_cfg("generation.temperature=inf")
    assert eval_cfg("probe=[swap,reverse]").probes == ("swap", "reverse")


def test_the_cli_prints_a_type_error_in_one_line_naming_the_key(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert main(["train", "experiment=debug_cpu", "trainer.max_steps=abc", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "trainer.max_steps='abc': expected an integer or null" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------- output paths


def test_an_empty_output_dir_is_refused_before_the_mini_bench_lands_at_the_root(capsys, monkeypatch):
    assert run_cfg("output_dir=/x").data.annotations == "/x/mini_bench/train.csv"  # why empty meant /mini_bench
    with pytest.raises(ConfigError, match=r"^output_dir is empty; set the run folder"):
        run_cfg("output_dir=")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    existed = Path("/mini_bench").exists()
    assert main(["train", "experiment=debug_cpu", "output_dir="]) == 2
    assert "output_dir is empty" in capsys.readouterr().err
    assert Path("/mini_bench").exists() == existed


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("output_dir=null", "output_dir=null: expected a string"),
        ("data.annotations=", "data.annotations is empty"),
        ("data.video_root=", "data.video_root is empty"),
        ("data.annotations=elsewhere/my.csv", "data.annotations='elsewhere/my.csv' and data.video_root="),
    ],
)
def test_empty_or_inconsistent_data_paths_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_cfg(override)


def test_output_paths_that_are_files_are_refused_naming_the_key(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    with pytest.raises(ConfigError, match=re.escape(f"output_dir={str(file)!r} is a file")):
        run_cfg(f"output_dir={file}")
    under_file = f"data.annotations={str(file / 'train.csv')!r}: {file} is a file"
    with pytest.raises(ConfigError, match=re.escape(under_file)):
        run_cfg(f"data.annotations={file}/train.csv", f"data.video_root={file}/videos")
    with pytest.raises(ConfigError, match=re.escape(f"data.video_root={str(file)!r} is a file")):
        run_cfg("data.mini_bench=null", f"data.video_root={file}")
    with pytest.raises(ConfigError, match=re.escape(f"data.annotations={str(tmp_path)!r} is a folder")):
        run_cfg("data.mini_bench=null", f"data.annotations={tmp_path}")
    for args in (["output_dir="], [f"output_dir={file}"]):
        with pytest.raises(ConfigError, match=r"^output_dir"):
            eval_cfg(*args)
    for root in ("", file):
        with pytest.raises(ValueError, match="mini-bench folder"):
            write_mini_bench(root, num_clips=1)
    assert file.read_text() == "keep me"


# ---------------------------------------------------------------------------------------------- the run folder


def _earlier_run(folder: Path, checkpoint: bool = True) -> Path:
    """A folder as a finished 1-step run leaves it; returns its metrics.jsonl."""
    (folder / ".hydra").mkdir(parents=True)
    if checkpoint:
        (folder / "checkpoints" / "step_000001").mkdir(parents=True)
    metrics = folder / "metrics.jsonl"
    metrics.write_text(json.dumps({"step": 1, "train/loss": 0.5}) + "\n")
    return metrics


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite_says_what_to_do(tmp_path):
    assert run_folder_problem(tmp_path / "new", None, False) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "metrics.jsonl").touch()  # a run that stopped before its first step left nothing to keep
    assert run_folder_problem(tmp_path, None, False) is None
    _earlier_run(tmp_path / "run", checkpoint=False)
    for resume in (None, "never", ""):
        problem = run_folder_problem(tmp_path / "run", resume, False)
        assert problem is not None and "(metrics.jsonl)" in problem
    assert f"output_dir={str(tmp_path / 'run')!r} already holds a run" in problem
    assert "resume=auto to continue it, overwrite=true to replace it, or another output_dir" in problem
    assert run_folder_problem(tmp_path / "run", "auto", False) is None
    assert run_folder_problem(tmp_path / "run", str(tmp_path / "run" / "checkpoints" / "x"), False) is None
    assert run_folder_problem(tmp_path / "run", None, True) is None
    with pytest.raises(ConfigError, match=re.escape("overwrite=true replaces the run that resume='auto' continues")):
        run_cfg("overwrite=true", "resume=auto")


def test_the_cli_refuses_a_second_run_into_the_folder_in_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    metrics = _earlier_run(tmp_path)
    before = metrics.read_text()
    assert main(["train", "experiment=debug_cpu", f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run (checkpoints/, metrics.jsonl); set resume=auto" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2
    assert metrics.read_text() == before and not (tmp_path / "mini_bench").exists()


def test_build_trainer_refuses_before_any_work(tmp_path):
    from vau_r1.apps.train import build_trainer

    metrics = _earlier_run(tmp_path)
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("train", overrides=["experiment=debug_cpu", f"output_dir={tmp_path}", "trainer.cpu=true"])
    with pytest.raises(ConfigError, match="already holds a run"):
        build_trainer(cfg)
    assert not (tmp_path / "mini_bench").exists() and metrics.read_text().count("\n") == 1  # nothing was written


class _Accelerator(SimpleNamespace):
    def wait_for_everyone(self) -> None:
        self.waited = True


def test_every_rank_takes_rank_0s_verdict(tmp_path, monkeypatch):
    """Rank 1 sees an empty folder (another node's disk, say) but stops with rank 0's error, never alone."""
    import accelerate.utils

    from vau_r1.apps.train import prepare_run_folder

    sent = "output_dir='/shared/run' already holds a run (metrics.jsonl); set resume=auto to continue it"
    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", lambda items, from_process: [sent])
    rank1 = _Accelerator(is_main_process=False, num_processes=2)
    with pytest.raises(ConfigError, match=re.escape(sent)):
        prepare_run_folder(run_cfg(f"output_dir={tmp_path}"), rank1)
    monkeypatch.setattr(accelerate.utils, "broadcast_object_list", lambda items, from_process: items)
    prepare_run_folder(run_cfg(f"output_dir={tmp_path}"), rank1)
    assert rank1.waited


def test_overwrite_removes_the_earlier_run_and_keeps_the_rest(tmp_path):
    from vau_r1.apps.train import prepare_run_folder

    _earlier_run(tmp_path)
    (tmp_path / "mini_bench").mkdir()
    (tmp_path / "completions.jsonl").write_text("{}\n")
    rank0 = _Accelerator(is_main_process=True, num_processes=1)
    prepare_run_folder(run_cfg(f"output_dir={tmp_path}", "overwrite=true"), rank0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", "mini_bench"]
    _earlier_run(tmp_path / "again")
    with pytest.raises(ConfigError, match="already holds a run"):  # and without overwrite the folder is refused
        prepare_run_folder(run_cfg(f"output_dir={tmp_path / 'again'}"), rank0)


def _steps(metrics: Path) -> list[int]:
    return [json.loads(line)["step"] for line in metrics.read_text().splitlines() if '"train/loss"' in line]


# slow: three short CPU runs of the CLI and a refused one (about 25 s).
@pytest.mark.slow
def test_a_rerun_is_refused_then_overwrite_replaces_and_resume_continues(tmp_path, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    fast = ["train", "experiment=debug_cpu", f"output_dir={tmp_path}", "grpo.max_completion_tokens=6"]
    assert main([*fast, "trainer.max_steps=1"]) == 0
    metrics = tmp_path / "metrics.jsonl"
    assert _steps(metrics) == [1]
    assert main([*fast, "trainer.max_steps=1"]) == 2  # refused: the metrics are not appended to
    assert _steps(metrics) == [1]
    assert main([*fast, "trainer.max_steps=2", "overwrite=true"]) == 0
    assert _steps(metrics) == [1, 2] and [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_000002"]
    assert main([*fast, "trainer.max_steps=3", "resume=auto"]) == 0
    assert _steps(metrics) == [1, 2, 3]


# slow: a one-process run, then torchrun with two processes and their imports (25-50 s on 2 cores).
@pytest.mark.slow
def test_a_two_process_rerun_into_a_one_process_run_stops_on_both_ranks(tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    assert main(["train", "experiment=debug_cpu", f"output_dir={out}", "trainer.max_steps=1"]) == 0
    before = (out / "metrics.jsonl").read_text()
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "vau_r1.apps.train", "experiment=debug_cpu", f"output_dir={out}"]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode != 0  # both ranks stop (a rank left waiting would hang until the timeout)
    assert "already holds a run (checkpoints/, metrics.jsonl); set resume=auto" in result.stderr, result.stderr[-3000:]
    assert (out / "metrics.jsonl").read_text() == before
