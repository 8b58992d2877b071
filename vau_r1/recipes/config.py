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
from typing import Any

from vau_r1.data.config import DataConfig, MiniBenchConfig
from vau_r1.data.schema import TASKS
from vau_r1.engine.config import LoggerConfig, LoopSettings, TrainerConfig
from vau_r1.grpo.config import GRPOConfig
from vau_r1.sections import ConfigError, build_section, check
from vau_r1.sft.config import SFTConfig

__all__ = [
    "ALGORITHMS",
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
]

#: Tasks GRPO trains (their rewards are rule-based); SFT trains every task of :data:`~vau_r1.data.schema.TASKS`.
TRAIN_TASKS: tuple[str, ...] = ("qa", "tag", "cls")
#: Training algorithms (the top-level ``algorithm`` key).
ALGORITHMS: tuple[str, ...] = ("grpo", "sft")


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
        spec = {"name": value, "weight": 1.0} if isinstance(value, str) else dict(value)
        check(
            set(spec) <= {"name", "weight", "options"} and "name" in spec,
            f"rewards.funcs[{i}]={value!r}; each entry needs a name, an optional weight and optional options",
        )
        entry = {"name": spec["name"], "weight": float(spec.get("weight", 1.0))}
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

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> RunConfig:
        """Validate a resolved config (``OmegaConf.to_container(cfg, resolve=True)``).

        Raises:
            ConfigError: the first problem found, naming the key and the fix.
        """
        algorithm = str(cfg.get("algorithm", "grpo"))
        check(algorithm in ALGORITHMS, f"algorithm={algorithm!r}; expected one of {list(ALGORITHMS)}")
        data = build_section(DataConfig, cfg.get("data"), "data")
        data.check_tasks(TRAIN_TASKS if algorithm == "grpo" else TASKS, algorithm)
        sft = build_section(SFTConfig, cfg.get("sft"), "sft")
        if algorithm == "sft":
            _check_presets(data, sft)
        rewards = cfg.get("rewards") or {}
        return cls(
            run_name=str(cfg["run_name"]),
            output_dir=str(cfg["output_dir"]),
            seed=int(cfg.get("seed", 42)),
            resume=cfg.get("resume"),
            data=data,
            grpo=build_section(GRPOConfig, cfg.get("grpo"), "grpo"),
            trainer=build_section(TrainerConfig, cfg.get("trainer"), "trainer"),
            logger=build_section(LoggerConfig, cfg.get("logger"), "logger"),
            rewards=reward_specs(rewards.get("funcs"), data.task_list),
            model=dict(cfg.get("model") or {}),
            algorithm=algorithm,
            sft=sft,
        )

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
