"""SGD with (Nesterov) momentum and cosine annealing, the paper's "SGD" sampler (App. A.1).

Update (PyTorch's Nesterov form), with η_e = cosine_lr(lr, e, E):
    v ← μ v + g,   w ← w − η_e (g + μ v)
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from toroids.models import Network
from toroids.samplers.base import Sampler, TrainingDiverged, batch_indices, cosine_lr

__all__ = ["SGD"]


class SGD(Sampler):
    """Minibatch SGD, momentum μ, Nesterov by default, cross-entropy loss, no weight decay."""

    defaults: dict[str, Any] = {"lr": 0.02, "momentum": 0.9, "nesterov": True}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = self.factory(0).to(self.device)
        o = self.options
        self.opt = torch.optim.SGD(
            self.model.parameters(),
            lr=o["lr"],
            momentum=o["momentum"],
            nesterov=o["nesterov"] and o["momentum"] > 0,
        )

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self._set_lr(self.opt, cosine_lr(self.options["lr"], epoch, self.epochs))
        self.model.train()
        total, wrong, n = 0.0, 0, 0
        batches = batch_indices(len(self.y_train), self.batch_size, self.seed, epoch, device=self.device)
        for step, idx in enumerate(batches):
            x, y = self.x_train[idx], self.y_train[idx]
            out = self.model(x)
            loss = F.cross_entropy(out, y)
            if not math.isfinite(loss.item()):
                raise TrainingDiverged(epoch, step, loss.item())
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.item() * len(y)
            wrong += int((out.argmax(1) != y).sum())
            n += len(y)
        return {"loss": total / n, "train_error_running": wrong / n}

    def solution(self) -> Network:
        return self.model

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.opt}
