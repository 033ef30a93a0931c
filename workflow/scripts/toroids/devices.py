"""Where a job computes: the config's ``device`` setting, and one GPU per local job.

Snakemake counts ``gpu`` resources but never sets ``CUDA_VISIBLE_DEVICES``, so on a workstation with
several GPUs every local job would otherwise land on ``cuda:0``. When CUDA is used and no scheduler chose
the devices (``CUDA_VISIBLE_DEVICES`` unset; SLURM sets it for ``--gpus`` jobs), a job takes GPU ``i`` by
holding an exclusive ``flock`` on ``<lock dir>/gpu<i>.lock`` for the rest of its life. The kernel drops
the lock when the process ends, however it ends, so a crashed job never keeps a GPU. The lock dir is
``$TOROIDS_GPU_LOCK_DIR`` or ``/tmp/toroids-gpu-locks``; jobs of every user and every Snakemake run
that share it share the GPUs. To opt out, set ``CUDA_VISIBLE_DEVICES`` yourself.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a device is resolved: the allocator alone starts fast
    import torch

__all__ = ["DEFAULT_LOCK_DIR", "DEVICE_SETTINGS", "acquire_slot", "lock_dir", "resolve_device"]

DEVICE_SETTINGS = ("auto", "cpu", "cuda")
DEFAULT_LOCK_DIR = Path("/tmp/toroids-gpu-locks")

# The slot this process holds, and the open descriptor that holds its lock (closing it would free the slot).
_held: tuple[int, int] | None = None


def lock_dir() -> Path:
    """The folder of the per-GPU lock files: ``$TOROIDS_GPU_LOCK_DIR`` or ``/tmp/toroids-gpu-locks``."""
    return Path(os.environ.get("TOROIDS_GPU_LOCK_DIR") or DEFAULT_LOCK_DIR)


def resolve_device(setting: str) -> torch.device:
    """The device for the config key ``device``: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda``.

    With CUDA and no ``CUDA_VISIBLE_DEVICES``, the device is a GPU this process holds alone
    (see :func:`acquire_slot`); with ``CUDA_VISIBLE_DEVICES`` set, it is the first GPU the scheduler gave.
    """
    import torch

    if setting not in DEVICE_SETTINGS:
        raise ValueError(f"config key 'device' is {setting!r}; allowed: {', '.join(DEVICE_SETTINGS)}")
    if setting == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if setting == "auto":
            return torch.device("cpu")
        raise RuntimeError(
            "config key 'device' is 'cuda' but no CUDA device is available "
            f"(torch {torch.__version__}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
            "set device: auto to fall back to the CPU, or device: cpu"
        )
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return torch.device("cuda", 0)
    return torch.device("cuda", acquire_slot(torch.cuda.device_count()))


def acquire_slot(n_devices: int, directory: str | os.PathLike[str] | None = None, poll_s: float = 5.0) -> int:
    """Take one of ``n_devices`` slots (0 … n-1) for the rest of this process's life, and return it.

    A slot is an exclusive, non-blocking ``flock`` on ``directory/gpu<i>.lock`` (default :func:`lock_dir`).
    When every slot is taken, say so once on stderr and try again every ``poll_s`` seconds. A process
    holds at most one slot: later calls return the same one.
    """
    global _held
    if _held is not None:
        return _held[0]
    if n_devices < 1:
        raise ValueError(f"n_devices must be at least 1, got {n_devices}")
    folder = Path(directory) if directory is not None else lock_dir()
    _make_shared_dir(folder)
    waiting_since = None
    while True:
        for i in range(n_devices):
            # Read-only is enough for flock, so lock files made by another user work too.
            fd = os.open(folder / f"gpu{i}.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _held = (i, fd)
            if waiting_since is not None:
                print(f"toroids: got GPU {i} after {time.monotonic() - waiting_since:.0f} s", file=sys.stderr)
            return i
        if waiting_since is None:
            waiting_since = time.monotonic()
            print(
                f"toroids: all {n_devices} GPU slots are busy (locks in {folder}); waiting for one",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(poll_s)


def _make_shared_dir(folder: Path) -> None:
    """Create ``folder`` writable by everyone, with the sticky bit (like /tmp), if it does not exist."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    try:
        folder.chmod(0o1777)
    except PermissionError:  # someone else created it in the meantime
        pass
