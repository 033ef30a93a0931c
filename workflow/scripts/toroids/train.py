"""The training loop: drives a sampler epoch by epoch, checkpoints, resumes, logs and records provenance.

After every epoch the sampler's full state (networks and optimizer buffers) is written atomically to an
epoch checkpoint; a run that finds one resumes from it. Since the minibatch order of an epoch depends only
on ``(seed, epoch)``, a resumed run on the CPU ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import toroids
from toroids.checkpoint import CheckpointError, load_state, save_state
from toroids.data import Dataset
from toroids.devices import resolve_device
from toroids.evaluate import evaluate
from toroids.models import Network, build_model
from toroids.samplers import get_sampler

__all__ = ["TrainResult", "n_params", "provenance", "resolve_device", "train"]

Log = Callable[[str], None]


@dataclass
class TrainResult:
    model: Network
    history: list[dict[str, float]] = field(default_factory=list)
    train_error: float = float("nan")
    test_error: float = float("nan")
    train_loss: float = float("nan")
    test_loss: float = float("nan")
    wall_time_s: float = 0.0
    resumed_from_epoch: int | None = None
    sampler_options: dict[str, Any] = field(default_factory=dict)  # as used, automatic values resolved


def n_params(model: torch.nn.Module) -> int:
    """Trainable parameters (a binary network's latent weights count once each; fixed weights do not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[3]
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(device: torch.device) -> dict[str, Any]:
    """Versions, device and commit, recorded in every meta.json."""
    return {
        "git_commit": _git_commit(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "toroids": toroids.__version__,
        },
        "host": platform.node(),
        "threads": torch.get_num_threads(),
    }


def train(
    *,
    arch: str,
    model_options: dict[str, Any],
    data: Dataset,
    sampler: str,
    sampler_options: dict[str, Any],
    epochs: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    checkpoint: str | os.PathLike[str] | None = None,
    log: Log = print,
    chunk_size: int = 8192,
    init_state: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train one model with ``sampler``; resume from ``checkpoint`` when it exists, and keep it updated.

    ``init_state`` starts every network from the given weights instead of a random initialization (e.g. the
    midpoint of a single-bend path). Raises :class:`toroids.samplers.TrainingDiverged` on a NaN/inf loss.
    """
    torch.manual_seed(seed)

    def factory(replica: int) -> Network:
        # replica 0 is the model's own seed; further replicas get independent, reproducible initializations
        net = build_model(arch, data.input_shape, data.n_classes, seed=seed * 7919 + replica, **model_options)
        if init_state is not None:
            net.load_state_dict(init_state)
        return net

    cls = get_sampler(sampler)
    algo = cls(factory, data, sampler_options, epochs=epochs, batch_size=batch_size, seed=seed, device=device)
    history: list[dict[str, float]] = []
    start, resumed = 0, None
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        try:
            state, meta = load_state(ckpt)
            if meta.get("identity") != _identity(
                arch, model_options, sampler, sampler_options, seed, epochs, batch_size
            ):
                log(f"ignoring {ckpt}: it belongs to another configuration")
            else:
                algo.load_state(state)
                start, resumed, history = int(meta["epoch"]) + 1, int(meta["epoch"]), list(meta["history"])
                log(f"resumed from {ckpt} after epoch {resumed + 1}")
        except (CheckpointError, KeyError, RuntimeError) as exc:
            log(f"ignoring unreadable epoch checkpoint {ckpt}: {exc}")
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    t0 = time.perf_counter()
    # a sampler with an extra phase (adv's pre-training) runs more epochs than training.epochs
    total = cls.total_epochs(epochs, sampler_options)
    for epoch in range(start, total):
        t_epoch = time.perf_counter()
        stats = algo.train_epoch(epoch)
        stats["test_error"] = evaluate(algo.solution(), x_test, y_test, chunk_size).error
        stats["epoch"] = epoch + 1
        stats["seconds"] = time.perf_counter() - t_epoch
        history.append(stats)
        log(
            f"epoch {epoch + 1:4d}/{total}  loss {stats['loss']:.4f}  "
            f"train err {100 * stats['train_error_running']:6.2f}%  "
            f"test err {100 * stats['test_error']:6.2f}%  "
            f"{stats['seconds']:.2f}s"
        )
        if ckpt is not None:
            identity = _identity(arch, model_options, sampler, sampler_options, seed, epochs, batch_size)
            save_state(ckpt, algo.state(), {"epoch": epoch, "history": history, "identity": identity})
    model = algo.solution().eval()
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    tr, te = evaluate(model, x_train, y_train, chunk_size), evaluate(model, x_test, y_test, chunk_size)
    wall = time.perf_counter() - t0
    return TrainResult(
        model, history, tr.error, te.error, tr.loss, te.loss, wall, resumed, algo.resolved_options()
    )


def _identity(*parts: Any) -> str:
    return repr(parts)
