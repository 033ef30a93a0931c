"""The training loop: drives a sampler epoch by epoch, checkpoints, resumes, logs and records provenance.

Every few seconds (``checkpoint_every_s``) and after the last epoch, the sampler's full state (networks
and optimizer buffers) is written atomically to an epoch checkpoint; a run that finds one resumes from it.
Since the minibatch order of an epoch depends only on ``(seed, epoch)``, a resumed run on the CPU ends with
the same weights as an uninterrupted one.
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
from toroids.seeds import derive

__all__ = [
    "CHECKPOINT_EVERY_S",
    "TrainResult",
    "init_seed",
    "model_factory",
    "n_params",
    "n_replicas",
    "provenance",
    "resolve_device",
    "train",
]

Log = Callable[[str], None]

#: the epoch checkpoint's default cadence: written after every epoch, it cost a third of a small model's
#: epoch (docs/benchmarks.md); the rule script reads TOROIDS_CHECKPOINT_EVERY_S (the resume tests set 0)
CHECKPOINT_EVERY_S = 10.0


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
    summary: dict[str, Any] = field(default_factory=dict)  # the sampler's own account (Sampler.summary)


def n_params(model: torch.nn.Module) -> int:
    """Trainable parameters (a binary network's latent weights count once each; fixed weights do not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def n_replicas(plan: Mapping[str, Any]) -> int:
    """How many networks a model's sampler initializes (RSGD's replicas; 1 otherwise)."""
    if plan["sampler"] != "rsgd":
        return 1
    return int({**get_sampler("rsgd").defaults, **plan["sampler_options"]}["replicas"])


def init_seed(seed: int, replica: int = 0) -> int:
    """The seed of the initialization of replica ``replica`` of the model of seed ``seed``."""
    return derive(seed, "init", replica)


def model_factory(
    arch: str,
    model_options: Mapping[str, Any],
    data: Dataset,
    seed: int,
    init_state: Mapping[str, torch.Tensor] | None = None,
) -> Callable[[int], Network]:
    """``factory(replica)``: the network of replica ``replica`` (0 for single-network samplers) of the model
    of seed ``seed``, initialized from :func:`init_seed` (or from ``init_state`` when given)."""

    def factory(replica: int) -> Network:
        net = build_model(
            arch, data.input_shape, data.n_classes, seed=init_seed(seed, replica), **model_options
        )
        if init_state is not None:
            net.load_state_dict(init_state)
        return net

    return factory


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
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
    log: Log = print,
    chunk_size: int = 8192,
    init_state: Mapping[str, torch.Tensor] | None = None,
    test_every: int = 1,
) -> TrainResult:
    """Train one model with ``sampler``; resume from ``checkpoint`` when it exists, and keep it updated.

    ``seed`` is the model's own seed (:func:`toroids.seeds.model_seed` in the workflow); every draw of the
    run derives from it: replica r is initialized from ``derive(seed, "init", r)``, the minibatch orders
    and the sampler's own draws as its docstring says. ``init_state`` starts every network from the given
    weights instead of a random initialization (e.g. the midpoint of a single-bend path). The epoch
    checkpoint is written after an epoch when at least ``checkpoint_every_s`` seconds have passed since the
    last write (0: after every epoch), and after the last epoch: a killed run loses at most that much work.
    The test error of the returned network is measured after every ``test_every``-th epoch and after the
    last (a small train set with a large test set spends most of its epoch there; the history's other
    epochs have no ``test_error``). Raises :class:`toroids.samplers.TrainingDiverged` on a NaN/inf loss.
    """
    torch.manual_seed(seed)
    factory = model_factory(arch, model_options, data, seed, init_state)
    cls = get_sampler(sampler)
    algo = cls(factory, data, sampler_options, epochs=epochs, batch_size=batch_size, seed=seed, device=device)
    history: list[dict[str, float]] = []
    start, resumed = 0, None
    ckpt = Path(checkpoint) if checkpoint else None
    # what the epoch checkpoint is saved with and must match to be resumed: the run, the data included
    identity = _identity(
        arch, model_options, sampler, sampler_options, seed, epochs, batch_size, data.fingerprint()
    )
    if ckpt is not None and ckpt.exists():
        try:
            state, meta = load_state(ckpt)
            if meta.get("identity") != identity:
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
    log(
        "per epoch: running loss and running train err are means over the epoch's minibatches, each "
        "taken before its step (over every replica for rsgd); test err is the error of the network the "
        f"sampler returns, after the epoch (every {test_every} epoch(s) and after the last)"
    )
    last_save = time.perf_counter()
    for epoch in range(start, total):
        t_epoch = time.perf_counter()
        stats = algo.train_epoch(epoch)
        if stats.get("skipped"):  # nothing was trained (adv after reaching its pre-training target)
            continue
        tested = (epoch + 1) % test_every == 0 or epoch == total - 1
        if tested:
            stats["test_error"] = evaluate(algo.solution(), x_test, y_test, chunk_size).error
        stats["epoch"] = epoch + 1
        stats["seconds"] = time.perf_counter() - t_epoch
        history.append(stats)
        extra = algo.describe(stats)
        test = f"test err {100 * stats['test_error']:6.2f}%  " if tested else ""
        log(
            f"epoch {epoch + 1:4d}/{total}  running loss {stats['loss']:.4f}  "
            f"running train err {100 * stats['train_error_running']:6.2f}%  "
            f"{test}{extra + '  ' if extra else ''}{stats['seconds']:.2f}s"
        )
        if ckpt is not None and (time.perf_counter() - last_save >= checkpoint_every_s or epoch == total - 1):
            save_state(ckpt, algo.state(), {"epoch": epoch, "history": history, "identity": identity})
            last_save = time.perf_counter()
    model = algo.solution().eval()
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    tr, te = evaluate(model, x_train, y_train, chunk_size), evaluate(model, x_test, y_test, chunk_size)
    wall = time.perf_counter() - t0
    summary = algo.summary()
    for warning in summary.get("warnings", []):
        log(f"WARNING: {warning}")
    return TrainResult(
        model=model,
        history=history,
        train_error=tr.error,
        test_error=te.error,
        train_loss=tr.loss,
        test_loss=te.loss,
        wall_time_s=wall,
        resumed_from_epoch=resumed,
        sampler_options=algo.resolved_options(),
        summary=summary,
    )


def _identity(*parts: Any) -> str:
    return repr(parts)
