"""Run one backend decode in a forked child process that is killed when it passes its time limit.

A decoder can hang without an error (decord on some damaged files). A thread cannot be stopped, so a
timed-out decode used to keep running, and retries piled up beside it. :func:`run_backend` forks; the
child runs the backend and streams each decoded frame back through a pipe, and the parent applies
``transform`` (the resize) to each frame as it arrives. At the deadline the child gets ``SIGKILL`` and is
reaped before :class:`DecodeTimeout` is raised, so the caller's next attempt never overlaps it. A child
that dies (a decoder segfault) raises :class:`WorkerDied`, which the caller treats as that backend failing.

Why this shape: the child only decodes (no heavy torch work: OpenMP's thread pool does not survive
``fork``, so the child runs torch single-threaded), while the resize keeps the parent's threads and overlaps
the decoding. Measured on 2 busy CPU cores: a bare ``fork`` + ``waitpid`` of a process with torch loaded
takes ~20-55 ms; ``load_clip`` costs +55 ms on a 6 s 64x48 clip (~100 ms in all) and +80 ms on a 10 s 360p
clip at ``paper_train`` (~1.4 s), against ~1-2 s for a spawned interpreter to import torch. Unlike
``multiprocessing``, ``os.fork`` also works inside daemonic DataLoader workers. The clock stops while the
parent resizes: the limit is on the decoder. Where ``os.fork`` does not exist (Windows) the backend runs
inline, without a time limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import select as select_module
import signal
import struct
import sys
import time
from typing import Any

import numpy as np

from vau_r1.data.frames import Backend, DecodedFrames, FrameSelector, FrameTransform

__all__ = ["DecodeTimeout", "WorkerDied", "run_backend"]

_HEADER = struct.Struct("<Q")  # length prefix of each pickled message
_CHUNK = 1 << 20  # bytes read from the pipe at once


class DecodeTimeout(TimeoutError):
    """The decode passed its time limit; its process has been killed and reaped."""


class WorkerDied(RuntimeError):
    """The decoder process ended without an answer (killed by a signal, e.g. a segfault in the decoder)."""


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:  # keep its type name and message
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _child(backend: Backend, path: str, select: FrameSelector, write_fd: int) -> None:
    """In the forked child: decode, stream ``select``/``frame`` messages, then ``done`` or ``error``; exit."""
    code = 0
    try:
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(1)  # OpenMP's pool is gone after fork; a parallel op would hang
        with os.fdopen(write_fd, "wb", closefd=True) as pipe:

            def send(message: tuple, payload: np.ndarray | None = None) -> None:
                data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                pipe.write(_HEADER.pack(len(data)) + data)
                if payload is not None:  # raw bytes after the header: no pickled copy of a large frame
                    pipe.write(memoryview(payload).cast("B"))
                pipe.flush()

            def send_frame(frame: np.ndarray) -> None:
                frame = np.ascontiguousarray(frame)
                send(("frame", frame.shape, frame.dtype.str), frame)

            def reporting_select(total_frames: int, video_fps: float) -> list[int]:
                indices = [int(i) for i in select(total_frames, video_fps)]
                send(("select", total_frames, video_fps))
                return indices

            try:
                decoded = backend(path, reporting_select, send_frame)
                send(("done", dataclasses.replace(decoded, frames=[])))
            except BaseException as exc:  # handed to the parent, which re-raises it
                send(("error", _picklable(exc)))
    except BaseException:
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flushing of the parent's buffers


class _Messages:
    """Length-prefixed pickled messages from the child's pipe, each read before a movable deadline."""

    def __init__(self, fd: int, timeout_s: float) -> None:
        self.fd, self.deadline = fd, time.monotonic() + timeout_s

    def _read_into(self, view: memoryview) -> bool | None:
        """Fill ``view``; ``False`` at end of stream, ``None`` when the deadline passes."""
        done = 0
        while done < len(view):
            ready, _, _ = select_module.select([self.fd], [], [], max(self.deadline - time.monotonic(), 0.0))
            if not ready:
                return None
            count = os.readv(self.fd, [view[done : done + _CHUNK]])
            if count == 0:
                return False
            done += count
        return True

    def next(self) -> tuple | None:
        """The next message; ``("eof",)`` when the child closed the pipe; ``None`` on timeout."""
        header = bytearray(_HEADER.size)
        ok = self._read_into(memoryview(header))
        if ok:
            body = bytearray(_HEADER.unpack(header)[0])
            ok = self._read_into(memoryview(body))
        if ok is None:
            return None
        return pickle.loads(body) if ok else ("eof",)

    def array(self, shape: tuple[int, ...], dtype: str) -> np.ndarray | None:
        """The raw array that follows a ``frame`` message; ``None`` on timeout."""
        frame = np.empty(shape, dtype=dtype)
        ok = self._read_into(memoryview(frame).cast("B"))
        if ok is False:
            raise WorkerDied("the decoder process died while sending a frame")
        return None if ok is None else frame


def _exchange(messages: _Messages, select: FrameSelector, transform: FrameTransform) -> DecodedFrames | None:
    """Serve the child's messages; the finished :class:`DecodedFrames`, or ``None`` on timeout."""
    frames: list[Any] = []
    while (message := messages.next()) is not None:
        kind = message[0]
        if kind == "select":  # same deterministic call in the parent, so ``transform`` knows the selection
            select(message[1], message[2])
        elif kind == "frame":
            if (frame := messages.array(message[1], message[2])) is None:
                return None
            started = time.monotonic()
            frames.append(transform(frame))
            messages.deadline += time.monotonic() - started  # the limit is on the decoder, not the resize
        elif kind == "done":
            return dataclasses.replace(message[1], frames=frames)
        elif kind == "error":
            raise message[1]
        else:
            raise WorkerDied("the decoder process died without an answer")
    return None


def _reap(pid: int, kill: bool) -> int:
    """Wait for the child (after ``SIGKILL`` when ``kill``); returns its wait status."""
    if kill:
        with contextlib.suppress(ProcessLookupError):  # it may have just exited
            os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]


def run_backend(
    backend: Backend, path: str, select: FrameSelector, transform: FrameTransform, timeout_s: float
) -> DecodedFrames:
    """``backend(path, select, transform)`` with the decoding in a child process killed after ``timeout_s``.

    Raises:
        DecodeTimeout: the decoder did not finish in time (its process is killed and reaped first).
        WorkerDied: the decoder process died without an answer.
        Exception: whatever the backend, ``select`` or ``transform`` raised.
    """
    if not hasattr(os, "fork"):
        return backend(path, select, transform)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        _child(backend, path, select, write_fd)
    os.close(write_fd)
    decoded, died = None, None
    try:
        decoded = _exchange(_Messages(read_fd, timeout_s), select, transform)
    except WorkerDied as exc:
        died = exc
    finally:
        os.close(read_fd)
        status = _reap(pid, kill=decoded is None)
    if died is not None:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
        raise WorkerDied(f"{died} ({how})")
    if decoded is None:
        raise DecodeTimeout(f"decoder process {pid} killed")
    return decoded
