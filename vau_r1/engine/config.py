"""Settings of the training engine: optimisation, schedule, precision, checkpoints, logging, run identity.

The ``trainer`` and ``logger`` sections (``vau_r1/configs/{trainer,logger}/*.yaml``), plus
:class:`LoopSettings`, the run-level keys the loop reads. The engine takes these, not the whole run config.
"""

from __future__ import annotations

from dataclasses import dataclass

from vau_r1.data.config import DataConfig
from vau_r1.engine.distributed import STRATEGIES
from vau_r1.sections import check

LR_SCHEDULERS: tuple[str, ...] = ("linear", "cosine", "constant", "constant_with_warmup")
MIXED_PRECISION: tuple[str, ...] = ("no", "bf16", "fp16")
LOGGER_BACKENDS: tuple[str, ...] = ("wandb", "tensorboard", "none")


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
    collective_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        t = "trainer."
        check(self.learning_rate > 0, f"{t}learning_rate={self.learning_rate} must be > 0")
        check(len(self.adam_betas) == 2, f"{t}adam_betas must be two numbers, e.g. [0.9, 0.999]")
        check(
            self.lr_scheduler in LR_SCHEDULERS,
            f"{t}lr_scheduler={self.lr_scheduler!r}; expected one of {list(LR_SCHEDULERS)}",
        )
        check(self.warmup_steps >= 0, f"{t}warmup_steps must be >= 0")
        check(self.num_epochs >= 1, f"{t}num_epochs={self.num_epochs} must be >= 1")
        check(self.max_steps is None or self.max_steps >= 1, f"{t}max_steps must be null (use num_epochs) or >= 1")
        check(self.per_device_batch_size >= 1, f"{t}per_device_batch_size must be >= 1 (prompts per rank)")
        check(self.gradient_accumulation_steps >= 1, f"{t}gradient_accumulation_steps must be >= 1")
        check(
            self.max_grad_norm is None or self.max_grad_norm > 0,
            f"{t}max_grad_norm={self.max_grad_norm} must be null (no clipping) or > 0",
        )
        check(
            self.mixed_precision is None or self.mixed_precision in MIXED_PRECISION,
            f"{t}mixed_precision={self.mixed_precision!r}; expected null (the strategy's or launcher's choice) or "
            f"one of {list(MIXED_PRECISION)} (the weights' dtype is model.dtype)",
        )
        check(
            self.strategy in STRATEGIES or self.strategy.endswith((".yaml", ".yml")),
            f"{t}strategy={self.strategy!r}; expected one of {list(STRATEGIES)} (vau_r1/configs/accelerate/) "
            "or the path "
            "of an accelerate config file",
        )
        check(
            self.collective_timeout_s > 0,
            f"{t}collective_timeout_s={self.collective_timeout_s} must be > 0 (seconds a rank waits for the others)",
        )
        check(self.save_every >= 1, f"{t}save_every={self.save_every} must be >= 1 (steps between checkpoints)")
        check(self.keep_last is None or self.keep_last >= 1, f"{t}keep_last must be null (keep all) or >= 1")
        check(self.log_every >= 1, f"{t}log_every must be >= 1")
        check(self.log_completions_every >= 0, f"{t}log_completions_every must be >= 0 (0 disables the table)")
        check(
            self.torch_threads is None or self.torch_threads >= 1,
            f"{t}torch_threads={self.torch_threads} must be null (torch's default) or >= 1",
        )


@dataclass(frozen=True)
class LoggerConfig:
    """Where metrics go (``vau_r1/configs/logger/*.yaml``); ``metrics.jsonl`` in the run dir is always written."""

    backend: str = "none"
    project: str = "vau-r1"
    entity: str | None = None
    mode: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(
            self.backend in LOGGER_BACKENDS,
            f"logger.backend={self.backend!r}; expected one of {list(LOGGER_BACKENDS)}",
        )
        check(
            self.mode in (None, "online", "offline", "disabled"),
            f"logger.mode={self.mode!r}; expected null (WANDB_MODE decides), online, offline or disabled",
        )


@dataclass(frozen=True)
class LoopSettings:
    """Run-level keys the training loop reads (built by :meth:`vau_r1.recipes.config.RunConfig.loop_settings`).

    Attributes:
        algorithm: written into ``trainer_state.json`` (``grpo`` or ``sft``).
        output_dir: where checkpoints go.
        seed: data order and per-step sampling seeds.
        resume: ``null``, ``auto`` or a checkpoint path (:func:`vau_r1.engine.checkpoint.resolve_resume`).
        shuffle: shuffle the data order each epoch (``data.shuffle``).
        num_workers: DataLoader workers (``data.num_workers``).
    """

    algorithm: str
    output_dir: str
    seed: int
    resume: str | None = None
    shuffle: bool = True
    num_workers: int = DataConfig.num_workers
