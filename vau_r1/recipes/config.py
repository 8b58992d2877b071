"""The whole validated run: the run-level keys plus one object per section, built from the composed Hydra config.

Each section's dataclass lives in the layer that reads it; this module joins them and runs the checks that
span sections (the tasks an algorithm trains, the presets SFT needs). The section classes are re-exported
here for convenience.

Example:
    >>> try:
    ...     RunConfig.from_dict({"run_name": "r", "output_dir": "o", "algorithm": "ppo"})
    ... except ConfigError as error:
    ...     print(error)
    algorithm='ppo'; expected one of ['grpo', 'sft']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vau_r1.data.config import DataConfig, MiniBenchConfig
from vau_r1.data.schema import TASKS
from vau_r1.engine.config import LoggerConfig, LoopSettings, TrainerConfig
from vau_r1.grpo.config import GRPOConfig
from vau_r1.sections import ConfigError, build_section, check, check_value
from vau_r1.sft.config import SFTConfig

__all__ = [
    "ALGORITHMS",
    "RUN_RECORDS",
    "TRAIN_TASKS",
    "ConfigError",
    "DataConfig",
    "GRPOConfig",
    "LoggerConfig",
    "LoopSettings",
    "MiniBenchConfig",
    "RunConfig",
    "SFTConfig",
    "TrainerConfig",
    "build_section",
    "reward_specs",
    "run_folder_problem",
    "run_records",
]

#: Tasks GRPO trains (their rewards are rule-based); SFT trains every task of :data:`~vau_r1.data.schema.TASKS`.
TRAIN_TASKS: tuple[str, ...] = ("qa", "tag", "cls")
#: Training algorithms (the top-level ``algorithm`` key).
ALGORITHMS: tuple[str, ...] = ("grpo", "sft")
#: What a run leaves in its ``output_dir`` (besides ``.hydra/``, the logs and the mini split): a later run into
#: the folder continues it (``resume``) or replaces it (``overwrite``), never mixes with it.
RUN_RECORDS: tuple[str, ...] = ("checkpoints", "metrics.jsonl", "completions.jsonl", "tensorboard")


def reward_specs(values: list[Any] | None, tasks: str | Sequence[str]) -> tuple[dict[str, Any], ...]:
    """Reward specs of the run (``rewards.funcs``): the configured list, or the tasks' defaults when null.

    Each spec is ``{"name": ..., "weight": ...}``, plus ``"options"`` (keyword options of the reward, e.g.
    ``{normal_iou: 0.4}``) when given; names and options are checked when the rewards are built
    (:func:`vau_r1.rewards.build_rewards`, which lists the valid names). With several tasks the defaults are
    the union of theirs, in order (each reward reads the ``task`` column and skips rows it does not apply to).
    """
    if values is None:
        from vau_r1.tasks import get_task

        task_names = [tasks] if isinstance(tasks, str) else list(tasks)
        names = [name for task in task_names for name in get_task(task).reward_names]
        return tuple({"name": name, "weight": 1.0} for name in dict.fromkeys(names))
    check(len(values) > 0, "rewards.funcs is empty; list at least one reward or set it to null (task defaults)")
    specs = []
    for i, value in enumerate(values):
        spec = {"name": value} if isinstance(value, str) else dict(value) if isinstance(value, dict) else {}
        check(
            set(spec) <= {"name", "weight", "options"} and "name" in spec,
            f"rewards.funcs[{i}]={value!r}; each entry needs a name, an optional weight and optional options",
        )
        weight = check_value(spec.get("weight", 1.0), float, f"rewards.funcs[{i}].weight")
        entry = {"name": check_value(spec["name"], str, f"rewards.funcs[{i}].name"), "weight": float(weight)}
        if spec.get("options"):
            entry["options"] = dict(spec["options"])
        specs.append(entry)
    return tuple(specs)


@dataclass(frozen=True)
class RunConfig:
    """The whole validated run: run-level keys plus one object per section."""

    run_name: str
    output_dir: str
    seed: int
    resume: str | None
    data: DataConfig
    grpo: GRPOConfig
    trainer: TrainerConfig
    logger: LoggerConfig
    rewards: tuple[dict[str, Any], ...]
    model: dict[str, Any]
    algorithm: str = "grpo"
    sft: SFTConfig = field(default_factory=SFTConfig)
    overwrite: bool = False

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> RunConfig:
        """Validate a resolved config (``OmegaConf.to_container(cfg, resolve=True)``).

        Raises:
            ConfigError: the first problem found, naming the key and the fix.
        """
        algorithm = check_value(cfg.get("algorithm", "grpo"), str, "algorithm")
        check(algorithm in ALGORITHMS, f"algorithm={algorithm!r}; expected one of {list(ALGORITHMS)}")
        run = _run_keys(cfg)
        data = build_section(DataConfig, cfg.get("data"), "data")
        data.check_tasks(TRAIN_TASKS if algorithm == "grpo" else TASKS, algorithm)
        sft = build_section(SFTConfig, cfg.get("sft"), "sft")
        if algorithm == "sft":
            _check_presets(data, sft)
        rewards = cfg.get("rewards") or {}
        return cls(
            **run,
            data=data,
            grpo=build_section(GRPOConfig, cfg.get("grpo"), "grpo"),
            trainer=build_section(TrainerConfig, cfg.get("trainer"), "trainer"),
            logger=build_section(LoggerConfig, cfg.get("logger"), "logger"),
            rewards=reward_specs(rewards.get("funcs"), data.task_list),
            model=dict(cfg.get("model") or {}),
            algorithm=algorithm,
            sft=sft,
        )

    def check_run_folder(self) -> None:
        """Refuse to start over an earlier run in ``output_dir`` (:func:`run_folder_problem`); nothing is written.

        Raises:
            ConfigError: ``output_dir`` holds a run and neither ``resume`` nor ``overwrite`` says what to do with it.
        """
        problem = run_folder_problem(self.output_dir, self.resume, self.overwrite)
        check(problem is None, problem or "")

    def loop_settings(self) -> LoopSettings:
        """The run-level keys the training loop reads."""
        return LoopSettings(
            self.algorithm, self.output_dir, self.seed, self.resume, self.data.shuffle, self.data.num_workers
        )


def _check_presets(data: DataConfig, sft: SFTConfig) -> None:
    """Every trained task has the prompt preset and the target preset (SFT builds both for each row)."""
    from vau_r1.tasks import get_preset

    for key, preset in (("data.prompt_preset", data.prompt_preset), ("sft.target_preset", sft.target_preset)):
        for task in data.task_list if preset is not None else ():
            try:
                get_preset(task, preset)
            except ValueError as error:
                raise ConfigError(f"{key}={preset!r}: {error}") from error


def _run_keys(cfg: dict[str, Any]) -> dict[str, Any]:
    """The run-level keys, checked: ``run_name``, ``output_dir`` (a folder to write, not empty), ``seed``, ..."""
    output_dir = check_value(cfg.get("output_dir"), str, "output_dir")
    check(output_dir.strip() != "", "output_dir is empty; set the run folder, e.g. output_dir=outputs/my_run")
    check(not Path(output_dir).is_file(), f"output_dir={output_dir!r} is a file; set a folder (new or a run's)")
    run = {
        "run_name": str(check_value(cfg.get("run_name"), str | int, "run_name")),
        "output_dir": output_dir,
        "seed": check_value(cfg.get("seed", 42), int, "seed"),
        "resume": check_value(cfg.get("resume"), str | None, "resume"),
        "overwrite": check_value(cfg.get("overwrite", False), bool, "overwrite"),
    }
    check(run["run_name"].strip() != "", "run_name is empty; name the run, e.g. run_name=my_run")
    check(
        not (run["overwrite"] and run["resume"] not in (None, "", "never")),
        f"overwrite=true replaces the run that resume={run['resume']!r} continues; set one of them",
    )
    return run


def run_records(output_dir: str | Path) -> list[str]:
    """The records of :data:`RUN_RECORDS` in ``output_dir`` that hold something (``checkpoints/``, ...).

    An empty ``metrics.jsonl`` or ``checkpoints/`` (a run that stopped before its first step) is no record.
    """
    root, found = Path(output_dir), []
    for name in RUN_RECORDS:
        path = root / name
        if path.is_dir() and any(path.iterdir()):
            found.append(f"{name}/")
        elif path.is_file() and path.stat().st_size > 0:
            found.append(name)
    return found


def run_folder_problem(output_dir: str | Path, resume: str | None, overwrite: bool) -> str | None:
    """Why a run cannot start in ``output_dir``, in one line, or ``None`` when it can.

    A folder that holds an earlier run (:func:`run_records`) takes a new one only when asked: ``resume=auto``
    (or a checkpoint path) continues it, ``overwrite=true`` replaces it; otherwise the new run's metrics
    would be appended to the old ones and its checkpoints would overwrite theirs.
    """
    found = run_records(output_dir)
    if not found or overwrite or resume not in (None, "", "never"):
        return None
    return (
        f"output_dir={str(output_dir)!r} already holds a run ({', '.join(found)}); set resume=auto to continue it, "
        "overwrite=true to replace it, or another output_dir"
    )
