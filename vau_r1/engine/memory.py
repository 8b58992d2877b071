"""Peak tensor memory on any device, CPU included: a dispatch mode that counts live tensor storage bytes.

``torch.cuda.max_memory_allocated`` exists only on CUDA. :class:`PeakMemory` sees every tensor an op
creates (forward and backward, parameters' gradients, optimiser states), so CPU tests and benchmarks can
measure the peak a step needs, and ``vau-r1 plan`` can check its estimate against it.

Example:
    >>> import torch
    >>> def work():
    ...     a = torch.zeros(1000, 1000)  # 4 MB
    ...     b = a + 1  # 8 MB live
    >>> peak_bytes(work)
    8000000
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["PeakMemory", "peak_bytes"]


class PeakMemory(TorchDispatchMode):
    """Tracks live tensor storage bytes created under the mode; ``peak`` is the high-water mark above entry.

    A storage is counted once, when an op first returns a tensor on it, and uncounted when it is freed
    (storages keep their Python object, so a weak reference dies with the memory). Tensors that existed
    before entry are not counted (they are the baseline).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: dict[int, weakref.ref] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self._track(item)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        ref = self._seen.get(key)
        if ref is not None and ref() is storage:
            return
        size = storage.nbytes()
        self._seen[key] = weakref.ref(storage, lambda _ref, size=size, key=key: self._free(key, size, _ref))
        self.live += size
        self.peak = max(self.peak, self.live)

    def _free(self, key: int, size: int, ref: weakref.ref) -> None:
        if self._seen.get(key) is ref:
            del self._seen[key]
        self.live -= size


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak live tensor bytes created while ``fn()`` runs (forward and backward alike)."""
    gc.collect()
    with PeakMemory() as tracker:
        fn()
    return tracker.peak
