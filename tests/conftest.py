"""Shared test setup: no network, no wandb uploads, and the location of ``../shared``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the tests may reach a model/dataset hub or a logging server.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: ``../shared`` beside the repository: real VAU-Bench annotation CSVs (no videos).
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
VAU_BENCH_DIR = SHARED_DIR / "vau_bench"


@pytest.fixture
def vau_bench_dir() -> Path:
    """The real annotation CSVs; skips visibly when ``../shared`` is not beside the repository."""
    if not VAU_BENCH_DIR.is_dir():
        pytest.skip(f"real VAU-Bench CSVs not found at {VAU_BENCH_DIR} (../shared is absent)")
    return VAU_BENCH_DIR


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: the tiny model is fastest so, and far slower on contended cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
