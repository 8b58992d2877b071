"""Multi-process plumbing: the accelerator and its strategy, per-rank seeds and prompt sharding.

The same entry point runs on one process, under ``torchrun --nproc_per_node N`` or under
``accelerate launch``. Without a GPU, several processes run real gloo DDP on the CPU (``ACCELERATE_USE_CPU=1``
or ``trainer.cpu=true`` force it with a GPU), and an accelerator that does not span every launched process is
refused (:func:`check_process_count`). :class:`StepWatchdog` turns a rank that stops answering into an error
naming the step, after ``trainer.collective_timeout_s``. ``trainer.strategy`` picks DDP, DeepSpeed ZeRO-2/3 or
FSDP2 from the accelerate configs in ``vau_r1/configs/accelerate/`` (``auto``: whatever ``accelerate launch
--config_file`` set up, else DDP); without a GPU, DeepSpeed and FSDP2 run on the CPU over gloo.

Sharding is over **prompts**: every rank draws its own prompts from one shared shuffled order and
generates all ``G`` completions of each locally, so a group never straddles ranks and the reward
columns stay next to their completions. Each rank gets the same number of batches per epoch (the
tail that does not fill ``world_size × batch_size`` is dropped), which keeps DDP's collectives in step.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import random
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin, InitProcessGroupKwargs

from vau_r1.resources import config_dir

logger = logging.getLogger(__name__)

#: ``trainer.strategy`` values: ``auto`` (the launcher decides) or a file of :data:`ACCELERATE_CONFIGS`.
STRATEGIES: tuple[str, ...] = ("auto", "ddp", "zero2", "zero3", "zero3_offload", "fsdp2")
#: The accelerate launch configs (``accelerate launch --config_file`` reads the same files).
ACCELERATE_CONFIGS = config_dir("accelerate")
# accelerate config keys → plugin fields (the keys `accelerate launch` turns into ACCELERATE_*/FSDP_* variables).
_DEEPSPEED_FIELDS = {
    "zero_stage": "zero_stage", "offload_optimizer_device": "offload_optimizer_device",
    "offload_param_device": "offload_param_device", "offload_optimizer_nvme_path": "offload_optimizer_nvme_path",
    "offload_param_nvme_path": "offload_param_nvme_path", "zero3_init_flag": "zero3_init_flag",
    "zero3_save_16bit_model": "zero3_save_16bit_model", "gradient_clipping": "gradient_clipping",
    "gradient_accumulation_steps": "gradient_accumulation_steps", "deepspeed_config_file": "hf_ds_config",
}  # fmt: skip
_FSDP_FIELDS = {
    "fsdp_version": "fsdp_version", "fsdp_auto_wrap_policy": "auto_wrap_policy",
    "fsdp_transformer_layer_cls_to_wrap": "transformer_cls_names_to_wrap", "fsdp_min_num_params": "min_num_params",
    "fsdp_reshard_after_forward": "reshard_after_forward", "fsdp_offload_params": "cpu_offload",
    "fsdp_state_dict_type": "state_dict_type", "fsdp_cpu_ram_efficient_loading": "cpu_ram_efficient_loading",
    "fsdp_activation_checkpointing": "activation_checkpointing",
}  # fmt: skip
_LAUNCHER_KEYS = ("deepspeed_multinode_launcher", "deepspeed_hostfile")  # for `accelerate launch` only
# Where launchers put the process count (torchrun / accelerate: WORLD_SIZE; MPI: the others), as accelerate reads it.
_WORLD_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def strategy_plugins(strategy: str) -> tuple[dict[str, Any], str]:
    """Accelerator keyword arguments (``deepspeed_plugin`` / ``fsdp_plugin``) and mixed precision of a strategy.

    Args:
        strategy: a name of :data:`STRATEGIES` other than ``auto`` (``vau_r1/configs/accelerate/<name>.yaml``), or the
            path of an accelerate config file.

    Raises:
        ValueError: unknown strategy, or a config key this mapping does not know (named, with the file).
    """
    from accelerate.commands.config.config_args import ClusterConfig

    path = Path(strategy) if strategy.endswith((".yaml", ".yml")) else ACCELERATE_CONFIGS / f"{strategy}.yaml"
    if not path.is_file():
        raise ValueError(f"trainer.strategy={strategy!r}: no {path}; use one of {list(STRATEGIES)} or a config path")
    config = ClusterConfig.from_yaml_file(path)
    kind = DistributedType(config.distributed_type)
    if kind == DistributedType.DEEPSPEED:
        if importlib.util.find_spec("deepspeed") is None:
            raise ValueError(f"trainer.strategy={strategy!r} needs DeepSpeed: pip install 'vau-r1[deepspeed]'")
        kwargs = _plugin_kwargs(config.deepspeed_config, _DEEPSPEED_FIELDS, path)
        return {"deepspeed_plugin": DeepSpeedPlugin(**kwargs)}, config.mixed_precision
    if kind == DistributedType.FSDP:
        kwargs = _plugin_kwargs(config.fsdp_config, _FSDP_FIELDS, path)
        if isinstance(kwargs.get("transformer_cls_names_to_wrap"), str):
            kwargs["transformer_cls_names_to_wrap"] = kwargs["transformer_cls_names_to_wrap"].split(",")
        return {"fsdp_plugin": FullyShardedDataParallelPlugin(**kwargs)}, config.mixed_precision
    return {}, config.mixed_precision


def _plugin_kwargs(section: Mapping[str, Any], fields: Mapping[str, str], path: Path) -> dict[str, Any]:
    unknown = sorted(set(section) - set(fields) - set(_LAUNCHER_KEYS))
    if unknown:
        raise ValueError(f"{path}: keys {unknown} are not supported by vau_r1; known: {sorted(fields)}")
    return {fields[k]: v for k, v in section.items() if k in fields}


def build_accelerator(
    cpu: bool = False,
    mixed_precision: str | None = "no",
    strategy: str = "auto",
    collective_timeout_s: float | None = None,
) -> Accelerator:
    """Create the run's :class:`~accelerate.Accelerator`.

    Args:
        cpu: force the CPU (gloo DDP; ``ACCELERATE_USE_CPU=1`` does the same). Not for DeepSpeed, which uses
            the CPU by itself when no GPU is visible. Several processes without a GPU (``torchrun
            --nproc_per_node N`` on a CPU machine) run gloo DDP on the CPU without it.
        mixed_precision: ``no``, ``bf16`` or ``fp16``; ``None`` lets the strategy's config (on GPU) or the
            launcher (``accelerate launch``) decide, else ``no``.
        strategy: ``trainer.strategy`` (:data:`STRATEGIES`, or an accelerate config path).
        collective_timeout_s: ``trainer.collective_timeout_s``, the process group's timeout (``None``: torch's).

    Gradient accumulation is done by the trainer (it needs the token counts of the whole accumulated
    batch), so the accelerator is created with one step per update.

    Raises:
        ValueError: DeepSpeed asked for together with a forced CPU.
        RuntimeError: the accelerator does not span the launcher's processes (:func:`check_process_count`).
    """
    use_cpu = cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    kwargs, config_precision = strategy_plugins(strategy) if strategy != "auto" else ({}, None)
    launched = {k: os.environ.get(f"ACCELERATE_USE_{k}", "").lower() == "true" for k in ("DEEPSPEED", "FSDP")}
    deepspeed = "deepspeed_plugin" in kwargs or launched["DEEPSPEED"]
    if deepspeed and use_cpu:
        raise ValueError(
            f"trainer.strategy={strategy!r} uses DeepSpeed, which cannot be combined with trainer.cpu=true or "
            "ACCELERATE_USE_CPU=1; unset them (without a GPU, DeepSpeed runs on the CPU by itself)"
        )
    multi_process_cpu = launched_processes() > 1 and not torch.cuda.is_available()
    use_cpu = use_cpu or (multi_process_cpu and not deepspeed)  # else accelerate falls back to one process
    if mixed_precision is None and torch.cuda.is_available():
        mixed_precision = config_precision
    elif mixed_precision is None and kwargs:
        mixed_precision = "no"  # the configs' bf16 is for GPUs
    fsdp_plugin = kwargs.pop("fsdp_plugin", None) or (FullyShardedDataParallelPlugin() if launched["FSDP"] else None)
    fsdp_on_cpu = fsdp_plugin is not None and (use_cpu or not torch.cuda.is_available())
    if fsdp_plugin is not None and not fsdp_on_cpu:
        kwargs["fsdp_plugin"] = fsdp_plugin
    group: dict[str, Any] = {}
    if collective_timeout_s is not None:
        group["timeout"] = timedelta(seconds=collective_timeout_s)
    if deepspeed and multi_process_cpu:
        group["backend"] = "gloo"  # accelerate picks gloo in CPU mode only
    kwargs["kwargs_handlers"] = [InitProcessGroupKwargs(**group)]
    accelerator = Accelerator(cpu=use_cpu or fsdp_on_cpu, mixed_precision=mixed_precision, **kwargs)
    check_process_count(accelerator)
    if fsdp_on_cpu:
        # accelerate 1.15 enables FSDP for accelerator devices only; fully_shard itself works on CPU over gloo. The
        # process group is accelerate's CPU one; the state is switched to FSDP as AcceleratorState does on GPUs.
        accelerator.state.fsdp_plugin = fsdp_plugin
        accelerator.state.distributed_type = DistributedType.FSDP
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    logger.info("strategy %s: %s on %s", strategy, accelerator.distributed_type, accelerator.device)
    return accelerator


def launched_processes() -> int:
    """The process count the launcher announced (``WORLD_SIZE``, or MPI's size variables), 1 without one."""
    for name in _WORLD_SIZE_VARIABLES:
        if os.environ.get(name, "").strip():
            return int(os.environ[name])
    return 1


def check_process_count(accelerator: Accelerator) -> None:
    """Refuse an accelerator that does not span every launched process (each would train on its own).

    Raises:
        RuntimeError: one line, naming the launcher's and the accelerator's process counts and the fix.
    """
    launched = launched_processes()
    if accelerator.num_processes != launched:
        raise RuntimeError(
            f"the launcher started {launched} processes (WORLD_SIZE) but the accelerator runs "
            f"{accelerator.num_processes} on {accelerator.device} ({accelerator.distributed_type}), so each would "
            "train alone in the same output_dir; give every process a GPU, or run gloo DDP on the CPU with "
            "ACCELERATE_USE_CPU=1 (or trainer.cpu=true)"
        )


class CollectiveTimeout(RuntimeError):
    """A rank stopped answering: a step's collective waited longer than ``trainer.collective_timeout_s``."""


class StepWatchdog:
    """Names the step, and where it can the silent rank, when a rank stops answering (stopped, hung, dead).

    Before each step every rank passes a ``monitored_barrier`` on a gloo group of its own (for NCCL runs too):
    after ``timeout_s`` it fails on every live rank, and rank 0 lists the ranks that never arrived. A rank that
    goes silent inside the step makes a collective of the step time out instead (the process group's timeout,
    the same setting); the watchdog then probes with one more barrier (so a live rank exits within twice the
    timeout) and reports the ranks that did not answer it, in the same one line.

    Args:
        accelerator: the run's accelerator; one process needs no watchdog.
        timeout_s: ``trainer.collective_timeout_s``.
    """

    def __init__(self, accelerator: Accelerator, timeout_s: float) -> None:
        self.rank, self.timeout_s = accelerator.process_index, timeout_s
        self.group = None
        self.enabled = accelerator.num_processes > 1 and torch.distributed.is_initialized()
        if self.enabled:  # collective: every rank builds its engine, hence this group, in the same order
            self.group = torch.distributed.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        """Around step ``step``: check that every rank arrived, and report a collective timeout inside.

        Raises:
            CollectiveTimeout: a rank did not answer within ``timeout_s`` (the message names the step).
        """
        if not self.enabled:
            yield
            return
        self._barrier(step, "at the barrier that starts the step")
        try:
            yield
        except RuntimeError as error:
            if isinstance(error, CollectiveTimeout) or "timed out" not in str(error).lower():
                raise
            self._barrier(step, "in a collective of the step, then in a barrier probing who answers")  # names them
            raise CollectiveTimeout(self._report(step, "in a collective of the step", error)) from error

    def _barrier(self, step: int, where: str) -> None:
        try:
            torch.distributed.monitored_barrier(self.group, timeout=timedelta(seconds=self.timeout_s),
                                                wait_all_ranks=True)  # fmt: skip
        except RuntimeError as error:
            raise CollectiveTimeout(self._report(step, where, error)) from error

    def _report(self, step: int, where: str, error: BaseException) -> str:
        detail = " ".join(str(error).split())[:300]
        return (
            f"step {step}: rank {self.rank} waited more than trainer.collective_timeout_s={self.timeout_s:g} s for "
            f"the other ranks {where}: {detail} (rank 0 names the silent ones); a rank stopped answering (stopped, "
            "hung or dead); if it was only slow, raise trainer.collective_timeout_s"
        )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def sampling_seed(seed: int, rank: int, step: int) -> int:
    """Seed of the sampling generator of ``rank`` at ``step``: distinct per rank and step, fixed per run.

    Derived rather than carried forward, so a resumed run draws exactly the tokens the uninterrupted run drew.
    """
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def global_loss_tokens(accelerator: Accelerator, local_tokens: float) -> float:
    """Loss tokens of a whole step summed over ranks, divided by the process count (a token-mean normaliser).

    DDP averages gradients over processes, so dividing each rank's token sum by this gives the token mean
    over the global batch (dapo's loss, the SFT loss). Never below 1 / process count.
    """
    total = torch.tensor([local_tokens], dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        total = accelerator.reduce(total, reduction="sum")
    return max(total.item(), 1.0) / accelerator.num_processes


class ShardedBatchSampler:
    """Yields this rank's batches of dataset indices, resumable at any batch of any epoch.

    Args:
        num_samples: dataset length.
        batch_size: prompts per batch on each rank.
        rank: this process's index.
        world_size: number of processes.
        seed: shuffle seed, shared by all ranks (the order is the same everywhere, the shards differ).
        shuffle: shuffle each epoch (with ``seed + epoch``); ``False`` keeps file order.

    Raises:
        ValueError: fewer samples than one batch on every rank.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        self.num_samples, self.batch_size = num_samples, batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.position = 0, 0  # next batch to yield: batch `position` of epoch `epoch`
        if len(self) == 0:
            raise ValueError(
                f"{num_samples} usable samples cannot fill one batch on each of {world_size} process(es) with "
                f"trainer.per_device_batch_size={batch_size}; add data or lower the batch size / process count"
            )

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return self.num_samples // (self.batch_size * self.world_size)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All of this rank's batches of ``epoch``, in order."""
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            order = torch.arange(self.num_samples)
        per_step = self.batch_size * self.world_size
        batches = []
        for b in range(len(self)):
            step_indices = order[b * per_step : (b + 1) * per_step]
            batches.append(step_indices[self.rank :: self.world_size].tolist())
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        """Batches from the current position on, across epochs, forever; the position advances as they are taken."""
        while True:
            batches = self.epoch_batches(self.epoch)
            while self.position < len(batches):
                batch = batches[self.position]
                self.position += 1
                yield batch
            self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        """Resumable position: ``{"epoch", "position"}``."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue from a :meth:`state_dict`."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def check_replicas_in_sync(accelerator: Accelerator, model: torch.nn.Module) -> list[str]:
    """Digest of the model's parameters on every rank; raise if they differ (DDP must keep them identical).

    Per parameter tensor, the float64 sum and sum of absolute values are computed on every rank (identical
    parameters give bitwise identical numbers) and gathered with one all-gather.

    Returns:
        One hex digest per rank (all equal).

    Raises:
        RuntimeError: a parameter differs between ranks (names the first one).
    """
    names, stats = [], []
    for name, param in model.named_parameters():
        p = param.detach().double()
        names.append(name)
        stats.append(torch.stack([p.sum(), p.abs().sum()]))
    local = torch.stack(stats).to(accelerator.device)  # [num_tensors, 2]
    gathered = local.unsqueeze(0).cpu()
    if accelerator.num_processes > 1:
        gathered = accelerator.gather(local.unsqueeze(0)).cpu()  # [world, num_tensors, 2]
    digests = [hashlib.sha256(rank.numpy().tobytes()).hexdigest()[:16] for rank in gathered]
    differs = (gathered != gathered[:1]).any(dim=2).any(dim=0)  # [num_tensors]
    if bool(differs.any()):
        first = names[int(differs.nonzero()[0])]
        raise RuntimeError(
            f"model parameters differ between ranks (first: {first}); gradients were not synchronised. "
            "Run every forward/backward through the prepared (DDP) module on every rank."
        )
    return digests
