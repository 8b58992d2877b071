"""Multi-process faults: processes the accelerator does not span, a rank that stops answering, a rank killed
while it writes a checkpoint.

The slow tests start two gloo ranks of ``experiment=debug_cpu`` directly (the environment torchrun would give
them, no ``ACCELERATE_USE_CPU``), each running this file's ``__main__``. A rank that SIGSTOPs itself must make
the other exit non-zero within ``trainer.collective_timeout_s`` with a line naming the step and the silent rank;
a rank SIGKILLed mid-save must leave the last complete checkpoint to resume from, bitwise.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from vau_r1.engine.config import TrainerConfig
from vau_r1.engine.distributed import StepWatchdog, check_process_count
from vau_r1.resources import CONFIG_ROOT
from vau_r1.sections import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 12  # trainer.collective_timeout_s of the stopped-rank runs
MARGIN_S = 25  # what exiting may add on 2 contended cores (the traceback, the interpreter's shutdown)


def test_an_accelerator_that_does_not_span_the_launched_processes_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    alone = SimpleNamespace(num_processes=1, device=torch.device("cpu"), distributed_type="NO")
    with pytest.raises(RuntimeError, match=r"started 2 processes .* runs 1 .*ACCELERATE_USE_CPU=1") as error:
        check_process_count(alone)
    assert "\n" not in str(error.value)
    monkeypatch.setenv("WORLD_SIZE", "1")
    check_process_count(alone)  # agrees: nothing raised


def test_the_collective_timeout_must_be_positive_and_one_process_needs_no_watchdog():
    with pytest.raises(ConfigError, match=r"trainer\.collective_timeout_s=0"):
        TrainerConfig(collective_timeout_s=0)
    watchdog = StepWatchdog(SimpleNamespace(process_index=0, num_processes=1), timeout_s=1.0)
    assert not watchdog.enabled and watchdog.group is None
    with pytest.raises(ValueError, match="the step's own error"), watchdog.step(1):
        raise ValueError("the step's own error")  # passes through untouched


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_ranks(out: Path, mode: str, *overrides: str) -> list[subprocess.Popen]:
    """Two ranks of this file's ``__main__`` (:func:`_worker`) with torchrun's environment; logs rank*_{mode}.out."""
    out.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}
    base.update({"HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"})  # fmt: skip
    ranks = []
    for rank in (0, 1):
        env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        with open(out / f"rank{rank}_{mode}.out", "w") as log:
            command = [sys.executable, __file__, str(out), mode, *overrides]
            ranks.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
    return ranks


def wait_all(ranks: list[subprocess.Popen], timeout: float = 300) -> list[object]:
    """Exit codes of ``ranks``; any still running after ``timeout`` seconds is killed (and the test fails)."""
    deadline, codes = time.monotonic() + timeout, []
    for rank in ranks:
        try:
            codes.append(rank.wait(timeout=max(deadline - time.monotonic(), 1)))
        except subprocess.TimeoutExpired:
            rank.kill()
            codes.append(rank.wait(timeout=60))
            codes[-1] = f"hung, killed ({codes[-1]})"
    return codes


# slow: two gloo ranks; one stops, the other waits out the 12-s timeout (and, inside a step, one probe more).
@pytest.mark.slow
@pytest.mark.parametrize(("stop_where", "waits"), [("between_steps", 1), ("in_step", 2)])
def test_a_stopped_rank_makes_the_live_one_exit_naming_the_step_and_the_silent_rank(tmp_path, stop_where, waits):
    # About 40-90 s on 2 busy cores: imports and one step, then `waits` timeouts of 12 s. Between steps the live
    # rank waits at the step-start barrier; inside a step in the step's first collective, then in one probe barrier.
    out = tmp_path / "run"
    live, stopped = launch_ranks(out, stop_where, "trainer.max_steps=3", "trainer.save_every=100",
                                 "trainer.save_final=false", f"trainer.collective_timeout_s={TIMEOUT_S}")  # fmt: skip
    try:
        code = live.wait(timeout=240)
        marker = out / "stopped_at"
        assert marker.is_file(), (out / f"rank1_{stop_where}.out").read_text()[-3000:]
        waited = time.time() - float(marker.read_text())
        log = (out / f"rank0_{stop_where}.out").read_text()
        assert code != 0, log[-3000:]
        assert waited < waits * TIMEOUT_S + MARGIN_S, f"exited {waited:.0f} s after the stop"
        line = next((x for x in log.splitlines() if "trainer.collective_timeout_s=12" in x), None)
        assert line is not None, log[-3000:]
        assert "step 2:" in line and re.search(r"Ranks? 1 failed to pass monitoredBarrier", line), line
        assert stopped.poll() is None  # still stopped, not dead
    finally:
        for rank in (live, stopped):
            if rank.poll() is None:
                rank.send_signal(signal.SIGKILL)
            rank.wait(timeout=60)


def _stop_here(out: Path) -> None:
    (out / "stopped_at").write_text(repr(time.time()))
    os.kill(os.getpid(), signal.SIGSTOP)


# slow: three two-rank launches (an uninterrupted run, a run killed mid-save, its resume), about 60-130 s.
@pytest.mark.slow
def test_a_rank_killed_mid_checkpoint_leaves_the_last_complete_one_and_resume_ends_bitwise(tmp_path):
    # Rank 0 is SIGKILLed while it writes step_000002.tmp (model/ written, optimizer.pt not); rank 1 must exit
    # non-zero instead of hanging, and resume=auto must take step_000001 and end where the straight run ends.
    common = ["trainer.max_steps=3", "trainer.save_every=1", "trainer.keep_last=null"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    ranks = launch_ranks(straight, "train", *common) + launch_ranks(killed, "kill_in_save", *common)
    assert wait_all(ranks) == [0, 0, -signal.SIGKILL, 1], (killed / "rank1_kill_in_save.out").read_text()[-3000:]
    checkpoints = killed / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_000001", "step_000002.tmp"]
    assert not (checkpoints / "step_000002.tmp" / "trainer_state.json").exists()
    resumed = wait_all(launch_ranks(killed, "train", *common, "resume=auto"))
    assert resumed == [0, 0], (killed / "rank0_train.out").read_text()[-3000:]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_000001", "step_000002", "step_000003"]
    for rank in (0, 1):
        reference, resumed = (torch.load(run / f"params_rank{rank}.pt") for run in (straight, killed))
        assert [k for k in reference if not torch.equal(reference[k], resumed[k])] == []


def _stop_here(out: Path) -> None:
    (out / "stopped_at").write_text(repr(time.time()))
    os.kill(os.getpid(), signal.SIGSTOP)


def _die_before_optimizer_of_step_2() -> None:
    """SIGKILL this process when the checkpoint of step 2 is half written (model/ saved, optimizer.pt next)."""
    save = torch.save

    def save_or_die(obj: object, f: object, *args: object, **kwargs: object) -> None:
        if isinstance(f, Path) and f.name == "optimizer.pt" and f.parent.name == "step_000002.tmp":
            os.kill(os.getpid(), signal.SIGKILL)
        save(obj, f, *args, **kwargs)

    torch.save = save_or_die


def _stop_rank_1(trainer: object, out: Path, stop_where: str) -> None:
    """Make rank 1 SIGSTOP itself after step 1 (``between_steps``) or at the start of step 2 (``in_step``)."""
    engine, log_step, step = trainer.engine, trainer.engine.log_step, trainer.step

    def log_then_stop(metrics: dict) -> None:
        log_step(metrics)
        if stop_where == "between_steps" and engine.step_count == 1:
            _stop_here(out)

    def stop_then_step(micro: list) -> dict:
        if stop_where == "in_step" and engine.step_count == 1:
            _stop_here(out)
        return step(micro)

    engine.log_step, trainer.step = log_then_stop, stop_then_step


def _worker(out: Path, mode: str, overrides: list[str]) -> None:
    """Rank body: train ``debug_cpu`` with the fault of ``mode``, then save this rank's parameters."""
    from hydra import compose, initialize_config_dir

    from vau_r1.apps.train import build_trainer

    fast = ["grpo.max_completion_tokens=6", "trainer.log_completions_every=0"]
    with initialize_config_dir(config_dir=str(CONFIG_ROOT), version_base=None):
        cfg = compose("train", overrides=["experiment=debug_cpu", f"output_dir={out}", *fast, *overrides])
    trainer = build_trainer(cfg)  # its process group times out after trainer.collective_timeout_s
    rank = trainer.accelerator.process_index
    if rank == 1 and mode in ("between_steps", "in_step"):
        _stop_rank_1(trainer, out, mode)
    if rank == 0 and mode == "kill_in_save":
        _die_before_optimizer_of_step_2()
    trainer.fit()
    params = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    torch.save(params, out / f"params_rank{rank}.pt")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gloo_rank import run_rank

    run_rank(_worker, Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
