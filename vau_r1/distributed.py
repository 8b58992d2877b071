"""Multi-process plumbing: the accelerator, per-rank seeds and prompt sharding.

The same entry point runs on one process, under ``torchrun --nproc_per_node N`` or under
``accelerate launch``. ``ACCELERATE_USE_CPU=1`` (or ``trainer.cpu=true``) runs real multi-process
gloo DDP on CPU.

Sharding is over **prompts**: every rank draws its own prompts from one shared shuffled order and
generates all ``G`` completions of each locally, so a group never straddles ranks and the reward
columns stay next to their completions. Each rank gets the same number of batches per epoch (the
tail that does not fill ``world_size × batch_size`` is dropped), which keeps DDP's collectives in step.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from accelerate import Accelerator


def build_accelerator(cpu: bool = False, mixed_precision: str = "no") -> Accelerator:
    """Create the run's :class:`~accelerate.Accelerator` (CPU when ``cpu`` or ``ACCELERATE_USE_CPU=1``).

    Gradient accumulation is done by the trainer (it needs the token counts of the whole accumulated
    batch), so the accelerator is created with one step per update.
    """
    use_cpu = cpu or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    return Accelerator(cpu=use_cpu, mixed_precision=mixed_precision)


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
