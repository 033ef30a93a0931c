"""Adam with cosine annealing of its learning rate (a "beyond the paper" sampler, letter D).

torch.optim.Adam (no weight decay), lr η_e = cosine_lr(lr, e, E) stepped once per epoch (or the schedule
of :func:`toroids.schedules.scheduled_lr`), cross-entropy loss. The paper's Adam-trained "SGD" of its
deep binary nets is the ``sgd`` sampler with ``optimizer: adam``, which counts as S.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from toroids.samplers.base import make_optimizer
from toroids.samplers.sgd import SGD
from toroids.schedules import SCHEDULE_DEFAULTS

__all__ = ["Adam"]


class Adam(SGD):
    """Adam (Kingma & Ba), lr 1e-3, betas (0.9, 0.999), eps 1e-8, cosine lr, minibatches as SGD."""

    defaults: dict[str, Any] = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, **SCHEDULE_DEFAULTS}

    def _make_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return make_optimizer(params, {**self.options, "optimizer": "adam"})
