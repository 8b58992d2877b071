"""Config mistakes under ``vau-r1 train`` / ``eval run`` print one short message naming the key and the fix."""

from __future__ import annotations

import pytest

from vau_r1.cli import main


@pytest.mark.parametrize(
    "args, expected",
    [
        (["trainer.max_stpes=3"], "trainer.max_stpes: no such key in 'trainer'; did you mean trainer.max_steps"),
        (["model=Qwen/Qwen2.5-VL-3B"], "set model.name_or_path=Qwen/Qwen2.5-VL-3B"),
        (["experiment=debug_cpux"], "experiment=debug_cpux: not a config of the 'experiment' group"),
        (["trainer.learning_rate=-1"], "trainer.learning_rate=-1 must be > 0"),
        (["trainer.learning_rate=abc"], "check the values of: experiment=debug_cpu trainer.learning_rate=abc"),
    ],
)
def test_train_config_mistakes_are_one_message(args, expected, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert main(["train", "experiment=debug_cpu", *args, f"output_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 2
    assert not (tmp_path / "checkpoints").exists()


def test_eval_run_typo_names_the_key(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    args = ["eval", "run", "model=tiny-random", "task=qa", "annotations=a.csv", "video_root=v", "batch_sise=2",
            f"output_dir={tmp_path}"]  # fmt: skip
    assert main(args) == 2
    assert "batch_sise: no such key in the top level; did you mean batch_size" in capsys.readouterr().err


@pytest.mark.parametrize("words", [["train"], ["eval", "run"]])
def test_hydra_help_lists_the_groups_without_the_heavy_modules(words, capsys) -> None:
    import subprocess
    import sys

    code = ("import sys; from vau_r1.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'help imported torch'; sys.exit(rc)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, *words, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"vau-r1 {' '.join(words)} is powered by Hydra" in done.stdout and "Configuration groups" in done.stdout
