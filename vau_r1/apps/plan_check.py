"""The measured peak of one GRPO step on this machine, to check ``vau-r1 plan``'s estimate against.

:class:`~vau_r1.engine.memory.PeakMemory` counts a storage the first time an op returns a tensor on it. A view
of a weight (``F.linear`` runs ``weight.t()``) or the output of an in-place op on an optimizer state
(``exp_avg.lerp_``) is such a tensor, so, on its own, it counts memory that existed before the step once more.
:class:`StepPeak` first registers every storage alive at entry (found through :func:`gc.get_objects`) as the
baseline, so that only memory the step allocates is counted on top of it. It also labels the peak by phase
(rollout, scoring, policy, optimizer; the phases of :mod:`vau_r1.apps.plan_memory`).

``measure_step(overrides)`` builds the trainer of ``vau-r1 train`` for the same overrides, runs one warm-up
step (so the AdamW states exist, as in every later step) and measures the next one.
"""

from __future__ import annotations

import gc
import tempfile
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch

from vau_r1.engine.memory import PeakMemory


def _alive_storages() -> dict[int, torch.UntypedStorage]:
    """Every distinct storage of a tensor reachable by the garbage collector (parameters, states, inputs)."""
    found: dict[int, torch.UntypedStorage] = {}
    for obj in gc.get_objects():
        try:
            if issubclass(type(obj), torch.Tensor) and obj.device.type != "meta":
                storage = obj.untyped_storage()
                found[id(storage)] = storage
        except (RuntimeError, ReferenceError):  # tensors without storage (sparse, functional wrappers)
            continue
    return found


class StepPeak(PeakMemory):
    """:class:`PeakMemory` with the memory alive at entry as a baseline, never counted again, and phases.

    ``baseline`` is the bytes alive at entry, ``peak`` the most bytes allocated on top of it, and
    ``phase_peaks[phase]`` the same high-water mark while ``phase`` (set with :meth:`labelled`) ran.
    """

    def __init__(self) -> None:
        super().__init__()
        self.baseline = 0
        self.phase = "other"
        self.phase_peaks: dict[str, int] = {}

    def __enter__(self) -> StepPeak:
        gc.collect()
        for key, storage in _alive_storages().items():
            self._seen[key] = weakref.ref(storage)  # known, never counted (no size is added or removed)
            self.baseline += storage.nbytes()
        return super().__enter__()

    def _track(self, tensor: torch.Tensor) -> None:
        super()._track(tensor)
        if self.live > self.phase_peaks.get(self.phase, -1):
            self.phase_peaks[self.phase] = self.live

    def labelled(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with its allocations counted under ``phase`` (nested calls restore the outer phase)."""

        def run(*args: Any, **kwargs: Any) -> Any:
            outer, self.phase = self.phase, phase
            try:
                return fn(*args, **kwargs)
            finally:
                self.phase = outer

        return run


def measure_step(overrides: Sequence[str], threads: int = 1) -> dict[str, Any]:
    """Baseline, peak and per-phase peaks (bytes) of one GRPO step of ``vau-r1 train`` with ``overrides``.

    Nothing is kept: checkpoints, completion tables and logs are switched off and the run folder is temporary.
    """
    from hydra import compose, initialize_config_dir

    from vau_r1.apps.train import build_trainer
    from vau_r1.resources import CONFIG_ROOT
    from vau_r1.tasks.dataset import resumable_batches

    quiet = ["trainer.log_completions_every=0", "logger=none"]
    with tempfile.TemporaryDirectory() as out, initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("train", overrides=[*overrides, *quiet, f"output_dir={out}", f"trainer.torch_threads={threads}"])
        trainer = build_trainer(cfg)
        batches = resumable_batches(trainer.dataset, trainer.engine.sampler, 0, 0)
        steps = cfg.trainer.gradient_accumulation_steps
        trainer.step([next(batches) for _ in range(steps)])  # warm-up: the AdamW states now exist
        micro = [next(batches) for _ in range(steps)]
        tracker = StepPeak()
        _label_phases(trainer, tracker)
        with tracker:
            trainer.step(micro)
    return {"baseline_bytes": tracker.baseline, "step_peak_bytes": tracker.peak,
            "peak_bytes": tracker.baseline + tracker.peak,
            "phase_bytes": {p: tracker.baseline + b for p, b in tracker.phase_peaks.items()}}  # fmt: skip


def _label_phases(trainer: Any, tracker: StepPeak) -> None:
    """Label the trainer's passes with the estimate's phases (instance attributes only, nothing global)."""
    trainer.make_experience = tracker.labelled("rollout", trainer.make_experience)
    if trainer.ref_logps is not None:
        trainer.ref_logps = tracker.labelled("scoring", trainer.ref_logps)
    trainer.logps = tracker.labelled("scoring", trainer.logps)
    trainer.backward = tracker.labelled("policy", trainer.backward)
    trainer.engine.optimizer_step = tracker.labelled("optimizer", trainer.engine.optimizer_step)


def check_estimate(overrides: Sequence[str], threads: int = 1) -> dict[str, Any]:
    """The plan's estimate next to the measured peak of the same run (``experiment=debug_cpu`` unless
    ``overrides`` name an experiment): ``{"estimate_bytes", "estimate_phase", "measured", "error"}``, where
    ``error`` is estimate / measured - 1."""
    from vau_r1.apps.plan import plan_for

    named = any(o.startswith(("experiment=", "+experiment=")) for o in overrides)
    overrides = list(overrides) if named else ["experiment=debug_cpu", *overrides]
    plan = plan_for(overrides)
    measured = measure_step(overrides, threads)
    estimate = plan["peak"]["bytes"]
    return {"estimate_bytes": estimate, "estimate_phase": plan["peak"]["phase"], "measured": measured,
            "phases_estimate": plan["phases"], "error": estimate / measured["peak_bytes"] - 1}  # fmt: skip
