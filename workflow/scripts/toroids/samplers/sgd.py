"""SGD with (Nesterov) momentum and cosine annealing, the paper's "SGD" sampler (App. A.1).

Update (PyTorch's Nesterov form), with η_e = cosine_lr(lr, e, E) (``schedule: cosine``, the default):
    v ← μ v + g,   w ← w − η_e (g + μ v)

The paper's "SGD" of its deep binary networks (the 3×1001 MLP on Fashion-MNIST, the ConvNet on CIFAR-10)
steps with Adam: ``optimizer: adam`` (betas, eps; momentum and nesterov are then not read), and the
ConvNet's lr is halved every 50 epochs (``schedule: step``; :func:`toroids.schedules.scheduled_lr`).
Those networks are still the paper's S solutions, one network trained on the plain loss, and count as S in
the pair types and the claims; the ``adam`` sampler is the same optimizer as a sampler beyond the paper.

:class:`SGD` is also the skeleton of the single-network samplers (``sam``, ``adam``, ``adv``): they change
the optimizer (:meth:`SGD._make_optimizer`) or the step (:meth:`SGD._step`) and keep the epoch loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from toroids.models import Network
from toroids.samplers.base import (
    OPTIMIZER_DEFAULTS,
    Sampler,
    batch_indices,
    batch_loss,
    checked,
    count_wrong,
    make_optimizer,
)
from toroids.schedules import SCHEDULE_DEFAULTS

__all__ = ["SGD"]


class SGD(Sampler):
    """Minibatch SGD, momentum μ, Nesterov by default, cross-entropy loss, no weight decay."""

    defaults: dict[str, Any] = {
        "lr": 0.02,
        "momentum": 0.9,
        "nesterov": True,
        **OPTIMIZER_DEFAULTS,
        **SCHEDULE_DEFAULTS,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = self.factory(0).to(self.device)
        self.opt = self._make_optimizer(self.model.parameters())

    def _make_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return make_optimizer(params, self.options)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self._set_lr(self.opt, self.lr_at(epoch))
        n = len(self.y_train)
        return self._run_epoch(epoch, batch_indices(n, self.batch_size, self.seed, epoch, device=self.device))

    def _run_epoch(self, epoch: int, batches: Iterable[torch.Tensor]) -> dict[str, float]:
        """One pass of :meth:`_step` over ``batches`` (index tensors into the train set)."""
        self.model.train()
        total, wrong, n = 0.0, 0, 0
        for step, idx in enumerate(batches):
            idx = idx.to(self.device)
            x, y = self.x_train[idx], self.y_train[idx]
            loss, out = self._step(x, y, epoch, step)
            total += loss * len(y)
            wrong += count_wrong(out, y)
            n += len(y)
        return {"loss": total / n, "train_error_running": wrong / n}

    def _step(self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[float, torch.Tensor]:
        """One optimizer step on the minibatch (x, y); returns its loss (before the step) and the outputs."""
        out = self.model(x)
        loss = batch_loss(out, y)
        value = checked(loss, epoch, step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.clip_binary(self.model)
        return value, out

    def solution(self) -> Network:
        return self.model

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.opt}
