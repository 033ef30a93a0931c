"""Shared by the benchmarks: timing, the machine's matmul rate, and MNIST-format files to read."""

from __future__ import annotations

import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def timeit(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_gflops(n: int = 2048, dtype: torch.dtype = torch.float32, device: str = "cpu") -> float:
    """The machine's dense matrix-multiply rate (GFLOP/s) for an n×n×n product."""
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)

    def run() -> None:
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()

    return 2 * n**3 / timeit(run, repeats=5) / 1e9


def write_mnist(root: Path, n_train: int = 60000, n_test: int = 10000, seed: int = 0) -> Path:
    """Write random images and labels in the real MNIST idx format under ``root/MNIST/raw``."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return root
