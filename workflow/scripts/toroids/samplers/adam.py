"""Adam with cosine annealing of its learning rate (a "beyond the paper" sampler).

torch.optim.Adam (no weight decay), lr η_e = cosine_lr(lr, e, E) stepped once per epoch, cross-entropy loss.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from toroids.samplers.sgd import SGD

__all__ = ["Adam"]


class Adam(SGD):
    """Adam (Kingma & Ba), lr 1e-3, betas (0.9, 0.999), eps 1e-8, cosine lr, minibatches as SGD."""

    defaults: dict[str, Any] = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8}

    def _make_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        o = self.options
        b1, b2 = (float(b) for b in o["betas"])
        return torch.optim.Adam(params, lr=o["lr"], betas=(b1, b2), eps=o["eps"])

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state(state)
        # Adam keeps its step counter on the CPU (unless capturable/fused); the base class moved it to the
        # parameter's device.
        for st in self.opt.state.values():
            if isinstance(st.get("step"), torch.Tensor):
                st["step"] = st["step"].cpu()
