"""The Hydra config tree: every experiment composes and validates; paper settings; error messages; YAML style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from vau_r1.apps.train import model_config
from vau_r1.data.video import VideoConfig
from vau_r1.recipes.config import ConfigError, GRPOConfig, RunConfig, TrainerConfig
from vau_r1.resources import CONFIG_ROOT
from vau_r1.rewards import build_rewards

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = CONFIG_ROOT
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
#: The header line that marks an experiment as not in the paper (its models or recipes have no paper numbers).
BEYOND_PAPER = "# BEYOND THE PAPER:"
#: The two models the paper trains (arXiv 2505.23504).
PAPER_MODELS = ("Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct")


def beyond_paper(name: str) -> bool:
    """Whether experiment ``name``'s YAML header carries the :data:`BEYOND_PAPER` marker."""
    header = (CONFIGS / "experiment" / f"{name}.yaml").read_text().split("\n\n", 1)[0]
    return any(line.startswith(BEYOND_PAPER) for line in header.splitlines())


# The paper's GRPO recipes. Co-training: test_cotrain.py; beyond the paper (Qwen3-VL): test_qwen3_vl.py.
PAPER = [n for n in EXPERIMENTS if "_grpo_" in n and not n.startswith("cotrain_") and not beyond_paper(n)]
# Values a real-data experiment leaves required (???): where the annotations and videos are.
DATA_PATHS = ["data.annotations=/data/vau_bench/train.csv", "data.video_root=/data/vau_bench/videos"]


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base=None):
        return compose("train", overrides=list(overrides))


def validate(cfg) -> RunConfig:
    run = RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True))
    model_config(run)  # every model.* value checked against its type, as vau-r1 train does
    VideoConfig.from_dict(run.data.video)
    build_rewards(list(run.rewards))
    return run


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_validates(name):
    extra = [] if name == "debug_cpu" else DATA_PATHS
    run = validate(compose_cfg(f"experiment={name}", *extra))
    assert run.run_name == name
    assert run.output_dir == f"outputs/{name}"
    assert run.overwrite is False and run.resume is None  # a second run into the folder is refused, not mixed in
    if not name.startswith("debug_"):  # a real-model experiment is marked exactly when its model is not the paper's
        assert beyond_paper(name) == (run.model["name_or_path"] not in PAPER_MODELS), name


def test_paper_experiments_cover_both_models_and_three_tasks():
    models = ("qwen2_5_vl_3b", "qwen2_vl_2b")
    assert sorted(PAPER) == sorted(f"{t}_grpo_{m}" for t in ("qa", "tag", "cls") for m in models)
    marked = [name for name in EXPERIMENTS if beyond_paper(name)]
    assert marked and all("_grpo_" in name for name in marked)  # the Qwen3-VL GRPO configs, left out of PAPER


@pytest.mark.parametrize("name", PAPER)
def test_paper_hyper_parameters(name):
    # docs/paper.md §6.2: the shipped scripts' settings.
    run = validate(compose_cfg(f"experiment={name}", *DATA_PATHS))
    task = name.split("_")[0]
    g, t = run.grpo, run.trainer
    assert (g.num_generations, g.temperature, g.max_completion_tokens, g.beta) == (4, 1.0, 1024, 0.04)
    assert (g.num_iterations, g.loss_type, g.scale_rewards) == (1, "grpo", "group")
    assert t.learning_rate == (2e-6 if task == "cls" else 1e-6)
    assert (t.num_epochs, t.max_steps, t.per_device_batch_size, t.gradient_accumulation_steps) == (1, None, 1, 1)
    assert (t.max_grad_norm, t.lr_scheduler, t.warmup_steps, t.save_every) == (1.0, "linear", 0, 100)
    assert t.keep_last == (1 if task == "tag" else 3)
    assert run.model["dtype"] == "bfloat16" and run.model["gradient_checkpointing"] is True
    assert run.model["lora"] is None and run.model["freeze_vision"] is False  # full FT incl. the vision tower
    assert run.data.task == task
    assert run.data.sources == (("msad", "ecva") if task == "tag" else None)
    assert [r["name"] for r in run.rewards] == (["format", "accuracy", "temporal_iou"] if task == "tag"
                                                 else ["format", "accuracy"])  # fmt: skip
    assert VideoConfig.from_dict(run.data.video) == VideoConfig.from_preset("paper_train")


def test_required_values_are_reported_by_key():
    with pytest.raises(MissingMandatoryValue, match=r"data\.annotations"):
        validate(compose_cfg("experiment=qa_grpo_qwen2_5_vl_3b"))
    with pytest.raises(MissingMandatoryValue, match="run_name"):
        validate(compose_cfg(*DATA_PATHS, "data.task=qa"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("grpo.num_generations=1", "grpo.num_generations=1 gives zero-variance groups"),
        ("grpo.loss_type=ppo", "grpo.loss_type='ppo'; expected one of"),
        ("grpo.scale_rewards=rank", "grpo.scale_rewards='rank'"),
        ("grpo.beta=-0.1", "grpo.beta=-0.1 must be >= 0"),
        ("grpo.epsilon_high=0.1", "grpo.epsilon_high=0.1 must be null"),
        ("grpo.temperature=0", "grpo.temperature=0"),
        ("trainer.lr_scheduler=step", "trainer.lr_scheduler='step'"),
        ("trainer.per_device_batch_size=0", "trainer.per_device_batch_size"),
        ("trainer.mixed_precision=fp8", "trainer.mixed_precision='fp8'"),
        ("data.task=reasoning", "data.task='reasoning'; GRPO trains one of"),
        ("data.sources=[kinetics]", "data.sources has ['kinetics']"),
        ("+grpo.clip=0.2", "unknown key(s) ['grpo.clip']"),
        ("logger.backend=mlflow", "logger.backend='mlflow'"),
    ],
)
def test_invalid_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(compose_cfg("experiment=debug_cpu", override))


def test_odd_frame_count_is_rejected():
    with pytest.raises(ConfigError, match=r"data.video.nframes=5 must be even"):
        validate(compose_cfg("experiment=debug_cpu", "data.video.fps=null", "data.video.nframes=5"))


def test_dataclass_defaults_are_the_paper_values():
    g, t = GRPOConfig(), TrainerConfig()
    assert (g.num_generations, g.beta, g.temperature, g.max_completion_tokens, g.advantage_eps) == (4, 0.04, 1.0,
                                                                                                   1024, 1e-4)
    assert (t.learning_rate, t.max_grad_norm, t.lr_scheduler, t.save_every) == (1e-6, 1.0, "linear", 100)


def test_run_directory_is_deterministic():
    cfg = compose_cfg("experiment=debug_cpu", "output_dir=/tmp/somewhere")
    assert cfg.output_dir == "/tmp/somewhere"
    text = (CONFIGS / "train.yaml").read_text()
    assert "dir: ${output_dir}" in text and "${now:" not in text


# ---------------------------------------------------------------- YAML style: a comment above every key
# (this project's rule for its own config groups, after the CI format check of volcengine/verl's trainer
# configs, verl/trainer/config/*.yaml, which requires a comment above each field)

OWN_GROUPS = ("data", "rewards", "grpo", "trainer", "logger", "experiment")
KEY = re.compile(r"^(\s*)(- )?[\w@/.]+:( |$)")


def _uncommented_keys(path: Path) -> list[str]:
    """Keys without a comment on the line above (a key continuing a ``- name:`` list item is covered)."""
    lines = path.read_text().splitlines()
    bad = []
    for i, line in enumerate(lines):
        match = KEY.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        previous = lines[i - 1].strip() if i else ""
        is_item = match.group(2) is not None
        in_item = previous.startswith("- ") and not is_item and ":" in previous
        in_defaults = is_item and "defaults" in "".join(lines[max(0, i - 12) : i]) and "override" in line + previous
        if not previous.startswith("#") and not in_item and not (is_item and previous.startswith("- ")) \
                and not in_defaults and not previous.endswith("defaults:"):  # fmt: skip
            bad.append(f"{path.relative_to(ROOT)}:{i + 1}: {line.strip()}")
    return bad


def test_every_key_has_a_comment_above_it():
    files = [CONFIGS / "train.yaml", *(p for g in OWN_GROUPS for p in sorted((CONFIGS / g).glob("*.yaml")))]
    bad = [entry for path in files for entry in _uncommented_keys(path)]
    assert not bad, "keys without a comment above them:\n" + "\n".join(bad)
