"""Typed, validated run configuration built from the composed Hydra config.

YAML under ``vau_r1/configs/`` is the interface; the dataclasses here are the schema of the sections this
module owns (``data``, ``grpo``, ``sft``, ``trainer``, ``logger``, ``rewards``) plus the run-level keys. The
``model`` and ``data.video`` sections are validated by their own dataclasses
(:class:`vau_r1.model.builder.ModelConfig`, :class:`vau_r1.data.video.VideoConfig`) when the run is
built. Every check runs once, at startup, and its message names the key and the fix.

Example:
    >>> try:
    ...     GRPOConfig(num_generations=1)
    ... except ConfigError as error:
    ...     print(error)
    grpo.num_generations=1 gives zero-variance groups (no learning signal); set it to 2 or more
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vau_r1.data.schema import SOURCES, TASKS
from vau_r1.distributed import STRATEGIES
from vau_r1.grpo.advantages import SCALES
from vau_r1.grpo.loss import LOSS_TYPES

LR_SCHEDULERS: tuple[str, ...] = ("linear", "cosine", "constant", "constant_with_warmup")
MIXED_PRECISION: tuple[str, ...] = ("no", "bf16", "fp16")
LOGGER_BACKENDS: tuple[str, ...] = ("wandb", "tensorboard", "none")
#: Tasks GRPO trains (their rewards are rule-based); SFT trains every task of :data:`~vau_r1.data.schema.TASKS`.
TRAIN_TASKS: tuple[str, ...] = ("qa", "tag", "cls")
#: Training algorithms (the top-level ``algorithm`` key).
ALGORITHMS: tuple[str, ...] = ("grpo", "sft")


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the fix."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO sampling and objective (``vau_r1/configs/grpo/*.yaml``; each field is documented there)."""

    num_generations: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 50
    max_prompt_tokens: int | None = None
    max_completion_tokens: int = 1024
    beta: float = 0.04
    epsilon: float = 0.2
    epsilon_high: float | None = None
    num_iterations: int = 1
    loss_type: str = "grpo"
    scale_rewards: str = "group"
    advantage_eps: float = 1e-4
    mask_truncated_completions: bool = False
    reuse_vision_features: bool = True
    logprob_chunk_tokens: int | None = None

    def __post_init__(self) -> None:
        g = "grpo."
        _check(
            self.num_generations >= 2,
            f"{g}num_generations={self.num_generations} gives zero-variance groups (no learning signal); "
            "set it to 2 or more",
        )
        _check(self.temperature > 0, f"{g}temperature={self.temperature} must be > 0 (sampling only; 1.0 = paper)")
        _check(0 < self.top_p <= 1, f"{g}top_p={self.top_p} must be in (0, 1]; 1.0 disables nucleus filtering")
        _check(self.top_k >= 0, f"{g}top_k={self.top_k} must be >= 0; 0 disables top-k filtering")
        _check(self.max_completion_tokens >= 1, f"{g}max_completion_tokens must be >= 1")
        _check(
            self.max_prompt_tokens is None or self.max_prompt_tokens >= 1,
            f"{g}max_prompt_tokens={self.max_prompt_tokens} must be null (no limit) or >= 1",
        )
        _check(self.beta >= 0, f"{g}beta={self.beta} must be >= 0; 0 disables the KL term and the reference model")
        _check(self.epsilon > 0, f"{g}epsilon={self.epsilon} must be > 0 (clip range, TRL default 0.2)")
        _check(
            self.epsilon_high is None or self.epsilon_high >= self.epsilon,
            f"{g}epsilon_high={self.epsilon_high} must be null (= epsilon) or >= epsilon={self.epsilon}",
        )
        _check(self.num_iterations >= 1, f"{g}num_iterations={self.num_iterations} must be >= 1 (1 = paper)")
        _check(self.loss_type in LOSS_TYPES, f"{g}loss_type={self.loss_type!r}; expected one of {list(LOSS_TYPES)}")
        _check(
            self.scale_rewards in SCALES, f"{g}scale_rewards={self.scale_rewards!r}; expected one of {list(SCALES)}"
        )
        _check(self.advantage_eps > 0, f"{g}advantage_eps must be > 0 (paper: 1e-4)")
        _check(
            self.logprob_chunk_tokens is None or self.logprob_chunk_tokens >= 1,
            f"{g}logprob_chunk_tokens={self.logprob_chunk_tokens} must be null (full logits) or >= 1",
        )


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning targets (``vau_r1/configs/sft/*.yaml``; each field is documented there).

    Attributes:
        think: ``True`` puts ``<think>{reasoning}</think>`` before the answer, ``False`` trains on the answer
            only, ``None`` follows the target preset (think targets for prompts that ask for a ``<think>`` block).
        target_preset: preset whose target grammar is used (:func:`vau_r1.tasks.target_text`); ``None``
            uses ``data.prompt_preset``.
        max_seq_tokens: cap on prompt + target tokens, cutting the target's tail; ``None`` for no cap.
    """

    think: bool | None = None
    target_preset: str | None = None
    max_seq_tokens: int | None = None

    def __post_init__(self) -> None:
        _check(
            self.max_seq_tokens is None or self.max_seq_tokens >= 2,
            f"sft.max_seq_tokens={self.max_seq_tokens} must be null (no cap) or >= 2",
        )


@dataclass(frozen=True)
class TrainerConfig:
    """Optimisation, schedule, precision and checkpointing (``vau_r1/configs/trainer/*.yaml``)."""

    learning_rate: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    lr_scheduler: str = "linear"
    warmup_steps: int = 0
    num_epochs: int = 1
    max_steps: int | None = None
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: str | None = None
    save_every: int = 100
    keep_last: int | None = 3
    save_final: bool = True
    log_every: int = 1
    log_completions_every: int = 10
    cpu: bool = False
    torch_threads: int | None = None
    strategy: str = "auto"

    def __post_init__(self) -> None:
        t = "trainer."
        _check(self.learning_rate > 0, f"{t}learning_rate={self.learning_rate} must be > 0")
        _check(len(self.adam_betas) == 2, f"{t}adam_betas must be two numbers, e.g. [0.9, 0.999]")
        _check(
            self.lr_scheduler in LR_SCHEDULERS,
            f"{t}lr_scheduler={self.lr_scheduler!r}; expected one of {list(LR_SCHEDULERS)}",
        )
        _check(self.warmup_steps >= 0, f"{t}warmup_steps must be >= 0")
        _check(self.num_epochs >= 1, f"{t}num_epochs={self.num_epochs} must be >= 1")
        _check(self.max_steps is None or self.max_steps >= 1, f"{t}max_steps must be null (use num_epochs) or >= 1")
        _check(self.per_device_batch_size >= 1, f"{t}per_device_batch_size must be >= 1 (prompts per rank)")
        _check(self.gradient_accumulation_steps >= 1, f"{t}gradient_accumulation_steps must be >= 1")
        _check(
            self.max_grad_norm is None or self.max_grad_norm > 0,
            f"{t}max_grad_norm={self.max_grad_norm} must be null (no clipping) or > 0",
        )
        _check(
            self.mixed_precision is None or self.mixed_precision in MIXED_PRECISION,
            f"{t}mixed_precision={self.mixed_precision!r}; expected null (the strategy's or launcher's choice) or "
            f"one of {list(MIXED_PRECISION)} (the weights' dtype is model.dtype)",
        )
        _check(
            self.strategy in STRATEGIES or self.strategy.endswith((".yaml", ".yml")),
            f"{t}strategy={self.strategy!r}; expected one of {list(STRATEGIES)} (vau_r1/configs/accelerate/) "
            "or the path "
            "of an accelerate config file",
        )
        _check(self.save_every >= 1, f"{t}save_every={self.save_every} must be >= 1 (steps between checkpoints)")
        _check(self.keep_last is None or self.keep_last >= 1, f"{t}keep_last must be null (keep all) or >= 1")
        _check(self.log_every >= 1, f"{t}log_every must be >= 1")
        _check(self.log_completions_every >= 0, f"{t}log_completions_every must be >= 0 (0 disables the table)")
        _check(
            self.torch_threads is None or self.torch_threads >= 1,
            f"{t}torch_threads={self.torch_threads} must be null (torch's default) or >= 1",
        )


@dataclass(frozen=True)
class MiniBenchConfig:
    """Synthetic split written before training when absent (``vau_r1.data.mini_bench``)."""

    num_clips: int = 8
    duration_s: float = 4.0
    fps: float = 4.0
    width: int = 56
    height: int = 56
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.num_clips >= 1, "data.mini_bench.num_clips must be >= 1")
        _check(self.duration_s > 0 and self.fps > 0, "data.mini_bench.duration_s and fps must be > 0")


@dataclass(frozen=True)
class DataConfig:
    """Which annotations, videos, task(s) and prompt to train on (``vau_r1/configs/data/*.yaml``).

    ``tasks`` (a list) trains several tasks at once and replaces ``task``: every row is used once per listed
    task it is usable for. :attr:`task_list` is the effective tuple either way.
    """

    annotations: str
    video_root: str
    task: str | None = None
    tasks: tuple[str, ...] | None = None
    source: str | None = None
    sources: tuple[str, ...] | None = None
    prompt_preset: str = "default"
    max_samples: int | None = None
    shuffle: bool = True
    num_workers: int = 0
    cache_videos: bool = False
    video: dict[str, Any] = field(default_factory=dict)
    mini_bench: MiniBenchConfig | None = None

    def __post_init__(self) -> None:
        _check(
            self.task is not None or self.tasks is not None,
            f"set data.task (one of {list(TASKS)}) or data.tasks (a list of them, e.g. [qa, tag])",
        )
        _check(self.tasks is None or len(self.tasks) > 0, "data.tasks is empty; list at least one task or use null")
        if self.tasks is not None:
            _check(len(set(self.tasks)) == len(self.tasks), f"data.tasks={list(self.tasks)} lists a task twice")
        bad_tasks = [t for t in self.task_list if t not in TASKS]
        _check(not bad_tasks, f"data.task(s) has {bad_tasks}; expected some of {list(TASKS)}")
        _check(self.max_samples is None or self.max_samples >= 1, "data.max_samples must be null (all) or >= 1")
        _check(self.num_workers >= 0, "data.num_workers must be >= 0")
        bad = sorted(set(self.sources or ()) - set(SOURCES))
        _check(not bad, f"data.sources has {bad}; use null (all) or a list of {list(SOURCES)}")
        nframes = self.video.get("nframes")
        _check(
            nframes is None or nframes % 2 == 0,
            f"data.video.nframes={nframes} must be even (Qwen-VL groups frames in pairs, FRAME_FACTOR=2)",
        )

    @property
    def task_list(self) -> tuple[str, ...]:
        """The trained tasks: ``tasks`` when set, else ``(task,)``."""
        if self.tasks is not None:
            return tuple(self.tasks)
        return (self.task,) if self.task is not None else ()

    def check_tasks(self, allowed: Sequence[str], algorithm: str) -> None:
        """Raise a :class:`ConfigError` if a trained task is not one ``algorithm`` can train."""
        key = "data.tasks" if self.tasks is not None else "data.task"
        value = list(self.tasks) if self.tasks is not None else self.task
        bad = [t for t in self.task_list if t not in allowed]
        _check(not bad, f"{key}={value!r}; {algorithm.upper()} trains one of {list(allowed)}")


@dataclass(frozen=True)
class LoggerConfig:
    """Where metrics go (``vau_r1/configs/logger/*.yaml``); ``metrics.jsonl`` in the run dir is always written."""

    backend: str = "none"
    project: str = "vau-r1"
    entity: str | None = None
    mode: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(
            self.backend in LOGGER_BACKENDS,
            f"logger.backend={self.backend!r}; expected one of {list(LOGGER_BACKENDS)}",
        )
        _check(
            self.mode in (None, "online", "offline", "disabled"),
            f"logger.mode={self.mode!r}; expected null (WANDB_MODE decides), online, offline or disabled",
        )


def build_section(cls: type, values: dict[str, Any] | None, key: str) -> Any:
    """Build dataclass ``cls`` from a plain dict, naming ``key`` in errors about unknown or missing fields.

    Nested dataclass fields (``data.mini_bench``) and tuple fields (``trainer.adam_betas``) are converted.
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    _check(not unknown, f"unknown key(s) {[f'{key}.{u}' for u in unknown]}; valid keys: {sorted(fields)}")
    for name in fields:
        value = values.get(name)
        if isinstance(value, dict) and name == "mini_bench":
            values[name] = build_section(MiniBenchConfig, value, f"{key}.{name}")
        elif isinstance(value, list) and name in ("adam_betas", "tags", "sources", "tasks"):
            values[name] = tuple(value)
    missing = [n for n, f in fields.items() if n not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]  # fmt: skip
    _check(not missing, f"missing required key(s) {[f'{key}.{m}' for m in missing]}; set them in the config")
    return cls(**values)


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
    _check(len(values) > 0, "rewards.funcs is empty; list at least one reward or set it to null (task defaults)")
    specs = []
    for i, value in enumerate(values):
        spec = {"name": value, "weight": 1.0} if isinstance(value, str) else dict(value)
        _check(
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
        _check(algorithm in ALGORITHMS, f"algorithm={algorithm!r}; expected one of {list(ALGORITHMS)}")
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


def _check_presets(data: DataConfig, sft: SFTConfig) -> None:
    """Every trained task has the prompt preset and the target preset (SFT builds both for each row)."""
    from vau_r1.tasks import get_preset

    for key, preset in (("data.prompt_preset", data.prompt_preset), ("sft.target_preset", sft.target_preset)):
        for task in data.task_list if preset is not None else ():
            try:
                get_preset(task, preset)
            except ValueError as error:
                raise ConfigError(f"{key}={preset!r}: {error}") from error
