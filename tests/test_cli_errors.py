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
        (["trainer.learning_rate=abc"], "trainer.learning_rate='abc': expected a finite number"),
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


HELP_COMMANDS = [[], ["data"], ["demo"], ["env"], ["eval"], ["eval", "judge"], ["eval", "score"], ["predict"]]


@pytest.mark.parametrize("words", HELP_COMMANDS, ids=lambda w: " ".join(w) or "vau-r1")
def test_every_help_answers_without_importing_torch(words) -> None:
    """``--help`` stays fast (well under 3 s) because no command imports torch, transformers or decord for it."""
    import subprocess
    import sys

    code = ("import sys; from vau_r1.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'decord') if m in sys.modules]\n"
            "assert not heavy, f'help imported {heavy}'")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, *words, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: vau-r1" in done.stdout


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_predict_names_a_missing_video(capsys, tmp_path) -> None:
    assert main(["predict", str(tmp_path / "nope.mp4"), "--model", "tiny-random"]) == 2
    assert f"video {tmp_path / 'nope.mp4'} not found" in _one_line_error(capsys)


def test_predict_lists_the_prompt_presets_before_loading_anything(capsys, tmp_path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded: the preset is checked first")
    assert main(["predict", str(video), "--model", "tiny-random", "--prompt-preset", "paper_evl"]) == 2
    err = _one_line_error(capsys)
    assert "unknown prompt preset 'paper_evl'" in err and "paper_eval_think" in err


def test_predict_refuses_a_cuda_device_on_a_machine_without_one(capsys, tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: the refusal cannot happen here")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded: the device is checked first")
    assert main(["predict", str(video), "--model", "tiny-random", "--device", "cuda"]) == 2
    assert "--device cuda: this machine has no CUDA device" in _one_line_error(capsys)


def test_demo_refuses_an_output_path_that_is_a_file(capsys, tmp_path) -> None:
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert main(["demo", "--quick", "--out", str(target)]) == 2
    assert f"--out {target} is a file" in _one_line_error(capsys)
    assert target.read_text() == "keep me"
