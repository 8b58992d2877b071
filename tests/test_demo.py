"""``vau-r1 demo``: option parsing, stage configs, the table builder, the plot writer, and a quick end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vau_r1.cli import build_parser
from vau_r1.commands.demo import options_from_args
from vau_r1.demo import MODELS, SFT_STEPS_PER_GRPO_STEP, DemoOptions, compose, grpo_overrides, sft_overrides
from vau_r1.demo_report import (
    COLUMNS,
    build_results,
    markdown_table,
    plot_reward_curve,
    read_curve,
    reward_change,
    summary_lines,
)


def _row(model: str, value: float) -> dict:
    return {"model": model, **{key: value for key, _ in COLUMNS}, "n_qa": 10, "n_tag": 5}


def _parse(*argv: str) -> DemoOptions:
    return options_from_args(build_parser().parse_args(["demo", *argv]))


def test_options_defaults_quick_and_overrides() -> None:
    full, quick = _parse(), _parse("--quick")
    assert full == DemoOptions() and full.out_dir == Path("outputs/demo")
    assert quick.sft_steps < full.sft_steps and quick.num_test < full.num_test
    assert full.control == SFT_STEPS_PER_GRPO_STEP * full.grpo_steps
    opts = _parse("--quick", "--seed", "3", "--sft-steps", "7", "--size", "medium", "--out", "x", "--threads", "2")
    assert (opts.seed, opts.sft_steps, opts.size, opts.out_dir, opts.threads) == (3, 7, "medium", Path("x"), 2)
    assert opts.grpo_steps == DemoOptions.quick().grpo_steps  # unset options keep the preset's value


@pytest.mark.parametrize("argv", [["--sft-steps", "0"], ["--size", "huge"], ["--threads", "-1"]])
def test_options_reject_bad_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(*argv)


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="size"):
        DemoOptions(size="huge")
    with pytest.raises(ValueError, match="grpo_steps=0"):
        DemoOptions(grpo_steps=0)


def test_stage_overrides_compose_into_valid_run_configs(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from vau_r1 import train
    from vau_r1.config import RunConfig

    opts = DemoOptions(out_dir=tmp_path, seed=5)
    sft = compose(train.CONFIG_DIR, "train", sft_overrides(opts, "sft", tmp_path / "d", 12))
    grpo = compose(train.CONFIG_DIR, "train", grpo_overrides(opts, "g", tmp_path / "d", tmp_path / "ckpt"))
    sft_cfg = RunConfig.from_dict(OmegaConf.to_container(sft, resolve=True))
    grpo_cfg = RunConfig.from_dict(OmegaConf.to_container(grpo, resolve=True))
    assert sft_cfg.algorithm == "sft" and sft_cfg.trainer.max_steps == 12 and sft_cfg.sft.think is False
    assert sft.model.tiny.seed == 5 and sft.model.tiny.hidden_size == 128
    assert grpo_cfg.algorithm == "grpo" and grpo_cfg.grpo.scale_rewards == "none" and grpo_cfg.grpo.beta == 0
    assert grpo.model.name_or_path == str(tmp_path / "ckpt") and grpo.model.tiny is None
    assert [r["name"] for r in grpo_cfg.rewards] == ["format_no_think", "accuracy", "temporal_iou"]
    assert grpo_cfg.data.task_list == ("qa", "tag") == sft_cfg.data.task_list


def test_table_has_every_model_and_signed_deltas() -> None:
    rows = [_row("base", 0.0), _row("sft", 50.0), _row("sft_grpo", 45.5), _row("sft_continued", 40.0)]
    results = build_results({"seed": 0}, rows, {"total": 1.0})
    assert results["deltas"]["sft_grpo-sft"]["qa_accuracy"] == pytest.approx(-4.5)
    assert results["deltas"]["sft_grpo-sft_continued"]["tag_miou"] == pytest.approx(5.5)
    table = markdown_table(results)
    lines = table.splitlines()
    assert len(lines) == 2 + len(MODELS) + 2
    assert all(line.count("|") == len(COLUMNS) + 2 for line in lines)
    assert "| SFT + GRPO | 45.50 |" in table and "-4.50" in table and "+5.50" in table
    verdicts = summary_lines(results)
    assert any("QA accuracy -4.50 points (lower" in line for line in verdicts)
    assert any("TAG mIoU +5.50 points (higher" in line for line in verdicts)


def test_plot_reward_curve(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    lines = [{"step": s, "time": 0.0, "reward/total/mean": 1.0 + s / 10, "reward/accuracy/mean": s / 20,
              "train/loss": 0.1} for s in range(1, 21)]  # fmt: skip
    metrics.write_text("".join(json.dumps(line) + "\n" for line in lines))
    curves = read_curve(metrics)
    assert set(curves) == {"reward/total/mean", "reward/accuracy/mean"}
    assert curves["reward/total/mean"][-1] == (20, 3.0)
    change = reward_change(metrics, window=5)
    assert change == {"first": pytest.approx(1.3), "last": pytest.approx(2.8), "window_steps": 5}
    assert "1.300 -> 2.800" in summary_lines({"deltas": {}, "grpo_train_reward": change})[0]
    png = plot_reward_curve(metrics, tmp_path / "out" / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    metrics.write_text(json.dumps({"step": 1, "train/loss": 0.1}) + "\n")
    with pytest.raises(ValueError, match="no reward"):
        plot_reward_curve(metrics, tmp_path / "empty.png")


# slow: trains SFT, GRPO and the control and runs 8 evaluations: about 20 s on 2 idle cores, up to 2 min when busy.
@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vau_r1.cli import main

    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "SFT + GRPO vs SFT: QA accuracy" in out and "| Base (random init) |" in out
    assert "training-set change only" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row["model"] for row in results["rows"]] == list(MODELS)
    for row in results["rows"]:
        for key, _ in COLUMNS:
            assert math.isfinite(row[key]) and 0.0 <= row[key] <= 100.0, (row["model"], key)
    for delta in results["deltas"].values():
        assert all(math.isfinite(delta[key]) for key, _ in COLUMNS)
    assert results["wall_s"]["total"] > 0 and "3 sft" in results["wall_s"]
    table = (tmp_path / "table.md").read_text()
    assert all(title in table for _, title in COLUMNS)
    assert (tmp_path / "reward_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "runs" / "sft_grpo" / "metrics.jsonl").is_file()
    assert "algorithm=grpo" in (tmp_path / "runs" / "sft_grpo" / "overrides.txt").read_text()
