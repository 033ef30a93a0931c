"""The sampler interface, and the pieces every sampler shares (minibatch order, cosine schedule, state).

A sampler owns its networks and optimizers. :func:`toroids.train.train` drives it one epoch at a time and
saves :meth:`Sampler.state` after every epoch; a resumed run calls :meth:`Sampler.load_state` first. The
minibatch order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run replays exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from toroids.data import Dataset
from toroids.models import Network

__all__ = ["Sampler", "TrainingDiverged", "batch_indices", "cosine_lr"]

ModelFactory = Callable[[int], Network]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""

    def __init__(self, epoch: int, step: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}, step {step}: loss = {loss}")
        self.epoch, self.step, self.loss = epoch, step, loss


def cosine_lr(lr0: float, epoch: int, epochs: int) -> float:
    """Cosine annealing stepped once per epoch: ``lr0 · (1 + cos(π e / E)) / 2`` (0-based epoch e)."""
    return lr0 * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def batch_indices(
    n: int, batch_size: int, seed: int, epoch: int, stream: int = 0, device: torch.device | str = "cpu"
) -> Iterator[torch.Tensor]:
    """The minibatches of one epoch: a permutation of ``range(n)`` drawn from ``(seed, epoch, stream)``.

    ``stream`` gives independent orders to the replicas of replicated samplers. The last, smaller batch is
    kept, so every example is seen once per epoch.
    """
    g = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 101 + stream)
    perm = torch.randperm(n, generator=g).to(device)
    yield from perm.split(batch_size)


class Sampler(ABC):
    """One training algorithm. Subclasses implement :meth:`train_epoch` and :meth:`solution`."""

    #: option names and defaults this sampler accepts (the schema has the same defaults)
    defaults: dict[str, Any] = {}

    def __init__(
        self,
        factory: ModelFactory,
        data: Dataset,
        options: dict[str, Any],
        *,
        epochs: int,
        batch_size: int,
        seed: int,
        device: torch.device,
    ) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown options {sorted(unknown)}")
        self.options = {**self.defaults, **options}
        self.data, self.epochs, self.batch_size, self.seed, self.device = (
            data,
            epochs,
            batch_size,
            seed,
            device,
        )
        self.x_train = data.x_train.to(device)
        self.y_train = data.y_train.to(device)
        self.factory = factory

    @abstractmethod
    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch; return at least ``loss`` (mean minibatch loss) and ``train_error_running``."""

    @abstractmethod
    def solution(self) -> Network:
        """The network this sampler returns (for replicated samplers, e.g. the centre)."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The networks whose state must be checkpointed, by name."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers whose per-parameter buffers must be checkpointed, by name."""

    def state(self) -> dict[str, torch.Tensor]:
        """Everything needed to resume: every network's state dict and every optimizer's buffers."""
        out: dict[str, torch.Tensor] = {}
        for name, mod in self.modules().items():
            out.update({f"{name}/{k}": v for k, v in mod.state_dict().items()})
        for name, opt in self.optimizers().items():
            for i, group in enumerate(opt.param_groups):
                for j, p in enumerate(group["params"]):
                    for key, buf in opt.state.get(p, {}).items():
                        if isinstance(buf, torch.Tensor):
                            out[f"{name}.optim/{i}.{j}.{key}"] = buf
        return out

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state`; raises ``KeyError`` naming a missing tensor."""
        for name, mod in self.modules().items():
            prefix = f"{name}/"
            mod.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        for name, opt in self.optimizers().items():
            prefix = f"{name}.optim/"
            for key, buf in state.items():
                if key.startswith(prefix):
                    i, j, buf_name = key[len(prefix) :].split(".", 2)
                    p = opt.param_groups[int(i)]["params"][int(j)]
                    opt.state[p][buf_name] = buf.to(p.device).clone()

    def _set_lr(self, opt: torch.optim.Optimizer, lr: float) -> None:
        for group in opt.param_groups:
            group["lr"] = lr
