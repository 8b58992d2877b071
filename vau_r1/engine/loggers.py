"""Metric loggers: wandb, TensorBoard, a JSON-lines file that is always written, or nothing.

Only rank 0 logs (:func:`build_logger` returns a :class:`NullLogger` elsewhere). Metric keys are
hierarchical (``reward/accuracy/mean``, ``train/kl``); tables of sample completions go to wandb as a
``wandb.Table``, to TensorBoard as markdown text, and to ``completions.jsonl``.

wandb follows ``WANDB_MODE`` unless ``logger.mode`` is set; ``offline`` needs no network and writes
its run under ``<run_dir>/wandb/``, to be pushed later with ``wandb sync``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from vau_r1.data.jsonl import repair_tail
from vau_r1.engine.config import LoggerConfig

logger = logging.getLogger(__name__)


class MetricLogger(Protocol):
    """What the trainer calls; every method is a no-op on ranks other than 0."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Record scalar ``metrics`` at optimisation ``step``."""

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int) -> None:
        """Record a table (e.g. sample completions with their rewards)."""

    def close(self) -> None:
        """Flush and release resources."""


class NullLogger:
    """Discards everything (ranks > 0, or ``logger=none`` beside the JSON-lines file)."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Do nothing."""

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


class JsonlLogger:
    """Appends one JSON object per call to ``metrics.jsonl`` / ``completions.jsonl`` in ``run_dir``.

    A resumed run appends to the files of the run it continues; a last line torn by a kill is cut off first
    (:func:`vau_r1.data.jsonl.repair_tail`), so the next record starts on a line of its own.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.jsonl", "completions.jsonl"):
            repair_tail(self.run_dir / name, required={"step": int})
        self._metrics = (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8")
        self._tables = (self.run_dir / "completions.jsonl").open("a", encoding="utf-8")

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Append ``{"step": step, "time": unix_s, **metrics}``."""
        self._metrics.write(json.dumps({"step": step, "time": time.time(), **metrics}) + "\n")
        self._metrics.flush()

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int) -> None:
        """Append one line per row: ``{"step", "table", **row}``."""
        for row in rows:
            record = {"step": step, "table": name, **dict(zip(columns, row, strict=True))}
            self._tables.write(json.dumps(record, default=str) + "\n")
        self._tables.flush()

    def close(self) -> None:
        """Close both files."""
        self._metrics.close()
        self._tables.close()


class WandbLogger:
    """Logs to Weights & Biases; ``mode`` ``None`` defers to ``WANDB_MODE`` (``offline`` needs no network)."""

    def __init__(self, cfg: LoggerConfig, run_dir: str | Path, run_name: str, config: dict[str, Any]) -> None:
        import wandb

        self._wandb = wandb
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            name=run_name,
            dir=str(run_dir),
            config=config,
            tags=list(cfg.tags),
            mode=cfg.mode,
            resume="allow",
            id=_wandb_run_id(run_dir),
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        """``wandb.log(metrics, step=step)``."""
        self.run.log(metrics, step=step)

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int) -> None:
        """Log a ``wandb.Table`` under ``name``."""
        table = self._wandb.Table(columns=list(columns), data=[[_cell(v) for v in row] for row in rows])
        self.run.log({name: table}, step=step)

    def close(self) -> None:
        """Finish the run (an offline run stays on disk for ``wandb sync``)."""
        self.run.finish()


def _wandb_run_id(run_dir: str | Path) -> str:
    """A wandb run id stored in the run dir, so a resumed run continues the same wandb run."""
    path = Path(run_dir) / "wandb_run_id.txt"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:8]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id)
    return run_id


class TensorBoardLogger:
    """Logs scalars and markdown tables to ``<run_dir>/tensorboard``."""

    def __init__(self, run_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log(self, metrics: dict[str, float], step: int) -> None:
        """One ``add_scalar`` per metric."""
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int) -> None:
        """The table as markdown text."""
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            cells = (str(_cell(v)).replace("|", "\\|").replace("\n", " ") for v in row)
            lines.append("| " + " | ".join(cells) + " |")
        self.writer.add_text(name, "\n".join(lines), global_step=step)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


class MultiLogger:
    """Forwards every call to several loggers."""

    def __init__(self, loggers: Sequence[MetricLogger]) -> None:
        self.loggers = list(loggers)

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Log to each."""
        for each in self.loggers:
            each.log(metrics, step)

    def log_table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], step: int) -> None:
        """Log the table to each."""
        for each in self.loggers:
            each.log_table(name, columns, rows, step)

    def close(self) -> None:
        """Close each."""
        for each in self.loggers:
            each.close()


def _cell(value: Any) -> Any:
    """A table cell wandb and markdown accept: numbers and strings as they are, the rest as text."""
    return value if isinstance(value, (int, float, str)) or value is None else json.dumps(value, default=str)


def build_logger(
    cfg: LoggerConfig, run_dir: str | Path, run_name: str, config: dict[str, Any], is_main: bool
) -> MetricLogger:
    """The run's logger: on rank 0 the JSON-lines file plus ``cfg.backend``; a :class:`NullLogger` elsewhere."""
    if not is_main:
        return NullLogger()
    loggers: list[MetricLogger] = [JsonlLogger(run_dir)]
    if cfg.backend == "wandb":
        loggers.append(WandbLogger(cfg, run_dir, run_name, config))
    elif cfg.backend == "tensorboard":
        loggers.append(TensorBoardLogger(run_dir))
    return MultiLogger(loggers)
