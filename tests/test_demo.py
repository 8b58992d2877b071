"""``vau-r1 demo``: option parsing, stage configs, the evidence tables, the plot, and a quick end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from vau_r1.cli import build_parser
from vau_r1.commands.demo import options_from_args
from vau_r1.demo.options import SFT_STEPS_PER_GRPO_STEP, DemoOptions
from vau_r1.demo.plot import plot_reward_curve, read_curve, reward_change
from vau_r1.demo.report import baseline_rows, build_results, model_row
from vau_r1.demo.run import MODELS, compose, control_overrides, eval_overrides, grpo_overrides, sft_overrides
from vau_r1.demo.tables import TEST_COLUMNS, markdown_report, seed_summary, summary_lines


def _parse(*argv: str) -> tuple[DemoOptions, list[int] | None]:
    args = build_parser().parse_args(["demo", *argv])
    return options_from_args(args), args.seeds


def test_options_defaults_quick_and_overrides() -> None:
    (full, seeds), (quick, _) = _parse(), _parse("--quick")
    assert full == DemoOptions() and full.out_dir == Path("outputs/demo") and seeds is None
    assert quick.sft_steps < full.sft_steps and quick.num_test < full.num_test and quick.swap_margin == 0
    assert full.control == SFT_STEPS_PER_GRPO_STEP * full.grpo_steps
    opts, seeds = _parse("--quick", "--seed", "3", "--sft-steps", "7", "--size", "medium", "--out", "x",
                         "--threads", "2", "--swap-margin", "20", "--seeds", "0,1,2")  # fmt: skip
    assert (opts.seed, opts.sft_steps, opts.size, opts.out_dir, opts.threads) == (3, 7, "medium", Path("x"), 2)
    assert opts.swap_margin == 20 and seeds == [0, 1, 2]
    assert opts.grpo_steps == DemoOptions.quick().grpo_steps  # unset options keep the preset's value


@pytest.mark.parametrize(
    "argv", [["--sft-steps", "0"], ["--size", "huge"], ["--threads", "-1"], ["--seeds", "0,0"], ["--seeds", "a"]]
)
def test_options_reject_bad_values(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _parse(*argv)


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="size"):
        DemoOptions(size="huge")
    with pytest.raises(ValueError, match="grpo_steps=0"):
        DemoOptions(grpo_steps=0)
    with pytest.raises(ValueError, match="swap_margin"):
        DemoOptions(swap_margin=120)


def test_stage_overrides_compose_into_valid_run_configs(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from vau_r1.apps import train
    from vau_r1.recipes.config import RunConfig

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a line\n", encoding="utf-8")
    opts = DemoOptions(out_dir=tmp_path, seed=5)
    configs = {
        "sft": sft_overrides(opts, tmp_path / "d", corpus),
        "grpo": grpo_overrides(opts, tmp_path / "d", tmp_path / "ckpt", normal_iou=0.37),
        "control": control_overrides(opts, tmp_path / "d", tmp_path / "ckpt"),
    }
    composed = {name: compose(train.CONFIG_DIR, "train", overrides) for name, overrides in configs.items()}
    cfg = {name: RunConfig.from_dict(OmegaConf.to_container(c, resolve=True)) for name, c in composed.items()}
    assert cfg["sft"].algorithm == "sft" and cfg["sft"].trainer.max_steps == opts.sft_steps
    assert composed["sft"].model.tiny.seed == 5 and list(composed["sft"].model.tiny.bpe_corpus_files) == [str(corpus)]
    grpo, control = cfg["grpo"], cfg["control"]
    assert grpo.algorithm == "grpo" and grpo.grpo.scale_rewards == "none" and grpo.grpo.beta == 0
    assert [r["name"] for r in grpo.rewards] == ["format_no_think", "accuracy", "temporal_iou"]
    assert grpo.rewards[2]["options"] == {"normal_iou": pytest.approx(0.37)}
    # the fair control: same peak LR, same schedule, no re-warm, same fresh clips, same start
    assert control.algorithm == "sft" and control.trainer.max_steps == opts.control
    for key in ("learning_rate", "lr_scheduler", "warmup_steps"):
        assert getattr(control.trainer, key) == getattr(grpo.trainer, key), key
    assert control.trainer.warmup_steps == 0 and control.trainer.learning_rate == opts.rl_lr < opts.sft_lr
    assert control.data.annotations == grpo.data.annotations and composed["control"].model.name_or_path == str(
        tmp_path / "ckpt")
    assert grpo.data.task_list == ("qa", "tag") == cfg["sft"].data.task_list


def test_eval_overrides_with_probes_compose(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from vau_r1.apps import evaluate
    from vau_r1.eval.settings import EvalConfig

    (tmp_path / "test.csv").write_text("x\n", encoding="utf-8")
    overrides = eval_overrides(DemoOptions(out_dir=tmp_path), "m", "tag", tmp_path, tmp_path / "e",
                               probe="[swap,reverse]", tag_normal_videos="true")  # fmt: skip
    values = OmegaConf.to_container(compose(evaluate.CONFIG_DIR, "eval", overrides), resolve=True)
    cfg = EvalConfig.from_dict(values)
    assert cfg.probes == ("swap", "reverse") and cfg.tag_normal_videos and cfg.prompt_preset == "default_no_think"


def _report(metrics: dict, probes: dict | None = None, baselines: dict | None = None, **extra) -> SimpleNamespace:
    ci = {k: [v - 5, v + 5] for k, v in metrics.items()}
    probe_objs = {name: SimpleNamespace(metrics=m, gap_ci95={k: [0.0, 1.0] for k in m}, span={"mirrored_miou": 40.0})
                  for name, m in (probes or {}).items()}  # fmt: skip
    base = {name: SimpleNamespace(description=f"{name} (mean span of /a/b/train.csv)", metrics=m)
            for name, m in (baselines or {}).items()}  # fmt: skip
    return SimpleNamespace(metrics=metrics, ci95=ci, probes=probe_objs, baselines=base, n=50,
                           counts={"decision_rows": 100}, **extra)  # fmt: skip


def _reports(qa: float, miou: float) -> dict:
    tag = {"miou": miou, "r@0.3": 90.0, "r@0.5": 80.0, "r@0.7": 60.0, "decision_accuracy": 95.0}
    return {
        "test_qa": _report({"accuracy": qa}, {"swap": {"accuracy": 40.0}, "reverse": {"accuracy": qa}},
                           {"best_constant_letter": {"accuracy": 27.0}, "always_normal_option": {"accuracy": 50.0}}),
        "test_tag": _report(tag, {"swap": {**tag, "miou": 15.0, "decision_accuracy": 55.0}, "reverse": tag},
                            {"always_normal": {"decision_accuracy": 50.0, "miou": 0.0},
                             "always_anomaly_mean_span": {"decision_accuracy": 50.0, "miou": 38.0}}),
        "shift_qa": _report({"accuracy": qa - 10}, baselines={"best_constant_letter": {"accuracy": 26.0}}),
        "shift_tag": _report({**tag, "miou": miou - 10}, baselines={"always_normal": {"miou": 0.0}}),
    }  # fmt: skip


def test_rows_tables_deltas_and_verdicts() -> None:
    reports = {"sft": _reports(60.0, 80.0), "sft_grpo": _reports(65.5, 81.0), "sft_continued": _reports(62.0, 85.0)}
    rows = [model_row(label, r) for label, r in reports.items()]
    assert rows[0]["qa_accuracy"] == 60.0 and rows[0]["qa_accuracy_swap"] == 40.0 and rows[0]["qa_accuracy_ci"]
    assert rows[1]["tag_miou_swap"] == 15.0 and rows[1]["shift_tag_miou"] == 71.0 and rows[1]["n_decision"] == 100
    baselines = baseline_rows(reports["sft"])
    assert [b["model"] for b in baselines] == ["baseline:always_normal_option", "baseline:best_constant_letter",
                                               "baseline:always_normal", "baseline:always_anomaly_mean_span"]
    assert baselines[3]["tag_miou"] == 38.0 and "/a/b" not in baselines[3]["description"]
    gate = {"clean": 60.0, "swapped": 40.0, "gap": 20.0, "margin": 15.0, "passed": True, "n": 60}
    results = build_results({"seed": 0, "grpo_generations": 8}, rows, baselines, {"total": 1.0}, gate,
                            {"sft": 10, "sft_grpo": 4, "sft_continued": 12})  # fmt: skip
    assert results["deltas"]["sft_grpo-sft"]["qa_accuracy"] == pytest.approx(5.5)
    assert results["deltas"]["sft_grpo-sft_continued"]["tag_miou"] == pytest.approx(-4.0)
    text = markdown_report(results)
    assert "| SFT + GRPO | 65.5 [60.5, 70.5] | 40.0 |" in text and "+5.5" in text and "-4.0" in text
    header = next(line for line in text.splitlines() if line.startswith("| Model | QA acc | QA swapped"))
    assert header.count("|") == len(TEST_COLUMNS) + 2
    verdicts = summary_lines(results)
    assert "passed, GRPO started" in verdicts[0]
    assert any("QA accuracy +5.5 points (higher" in line for line in verdicts)
    assert any("TAG mIoU -4.0 points (lower" in line for line in verdicts)
    summary = seed_summary([results, {**results, "settings": {"seed": 1, "grpo_generations": 8}}])
    assert "seeds [0, 1]" in summary and "65.5 ± 0.0" in summary
    assert "GRPO beats both by >= 3 QA points without losing mIoU: no" in summary


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
    png = plot_reward_curve(metrics, tmp_path / "out" / "curve.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    metrics.write_text(json.dumps({"step": 1, "train/loss": 0.1}) + "\n")
    with pytest.raises(ValueError, match="no reward"):
        plot_reward_curve(metrics, tmp_path / "empty.png")


def test_reward_curve_skips_a_torn_line(tmp_path: Path) -> None:
    """A run killed mid-write leaves a torn last line (here cut inside a UTF-8 character): the curve skips it."""
    metrics = tmp_path / "metrics.jsonl"
    good = "".join(json.dumps({"step": s, "reward/total/mean": float(s)}) + "\n" for s in (1, 2))
    torn = json.dumps({"step": 3, "reward/total/mean": 3.0, "note": "é"}, ensure_ascii=False).encode()[:-3]
    metrics.write_bytes(good.encode() + torn)
    assert read_curve(metrics) == {"reward/total/mean": [(1, 1.0), (2, 2.0)]}


# slow: trains SFT, GRPO and the control and runs 12 evaluations with probes: about 45 s on 2 busy cores.
@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vau_r1.cli import main

    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "SFT + GRPO vs SFT: QA accuracy" in out and "Swap-probe gate" in out and "baseline:" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row["model"] for row in results["rows"]] == list(MODELS)
    for row in results["rows"]:
        for key in ("qa_accuracy", "qa_accuracy_swap", "qa_accuracy_reverse", "decision_accuracy", "tag_miou",
                    "tag_miou_swap", "shift_qa_accuracy", "shift_tag_miou"):  # fmt: skip
            assert math.isfinite(row[key]) and 0.0 <= row[key] <= 100.0, (row["model"], key)
        lo, hi = row["qa_accuracy_ci"]
        assert lo <= row["qa_accuracy"] <= hi
    assert {b["model"] for b in results["baselines"]} >= {"baseline:always_normal", "baseline:best_constant_letter"}
    assert results["gate"]["passed"] and results["gate"]["n"] == DemoOptions.quick().num_val
    assert results["train_examples"]["sft_grpo"] == 3 * 4 and results["wall_s"]["total"] > 0
    assert (tmp_path / "reward_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "algorithm=grpo" in (tmp_path / "runs" / "sft_grpo" / "overrides.txt").read_text()
    probed = tmp_path / "eval" / "sft" / "test_qa" / "probe_swap" / "predictions.jsonl"
    assert probed.is_file() and (tmp_path / "data" / "shift" / "test.csv").is_file()


def test_gate_failure_stops_before_grpo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vau_r1.demo import run as demo

    calls: list[str] = []
    monkeypatch.setattr(demo, "generate_data", lambda opts: {"main": tmp_path, "val": tmp_path, "corpus": tmp_path})
    monkeypatch.setattr(demo, "train", lambda overrides: (calls.append(overrides[overrides.index("algorithm=sft")])
                                                         or (tmp_path / "ckpt" / "model", 1.0)))  # fmt: skip
    monkeypatch.setattr(demo, "swap_gate", lambda *a: {"clean": 30.0, "swapped": 29.0, "gap": 1.0, "margin": 15.0,
                                                       "passed": False, "n": 60})  # fmt: skip
    monkeypatch.setattr(demo, "evaluate_model", lambda opts, label, ckpt, roots: _reports(30.0, 10.0))
    results = demo.run_demo(DemoOptions(out_dir=tmp_path))
    assert calls == ["algorithm=sft"] and [row["model"] for row in results["rows"]] == ["sft"]
    assert results["deltas"] == {} and not results["gate"]["passed"]
    assert "FAILED, GRPO not started" in (tmp_path / "table.md").read_text()
