"""Sharpness-Aware Minimization (Foret et al., ICLR 2021), optionally adaptive (ASAM, Kwon et al. 2021).

Per minibatch B (same batch for both passes):

1. g = ∇L_B(w);
2. ε = ρ g / (‖g‖₂ + 1e-12), the norm global over all parameters
   (``adaptive``: ε = ρ T² g / (‖T g‖₂ + 1e-12) with T = |w| + 0.01 element-wise, every parameter included);
3. g_SAM = ∇L_B(w + ε);
4. w is restored exactly (a saved copy, not w + ε − ε), and the base optimizer (SGD, Nesterov momentum,
   cosine lr as :class:`~toroids.samplers.sgd.SGD`) steps with g_SAM.

BatchNorm: both passes normalize with the batch statistics, but the running statistics (and
``num_batches_tracked``) are updated by the first pass only, at w: the perturbed pass runs inside
:func:`~toroids.samplers.base.frozen_bn_stats` (``track_running_stats`` switched off for that pass).
With ρ = 0 the sampler is therefore SGD, step by step, BatchNorm included.

Extra per-epoch stat: ``loss_perturbed``, the mean minibatch loss at w + ε.
"""

from __future__ import annotations

from typing import Any

import torch

from toroids.samplers.base import batch_loss, checked, frozen_bn_stats
from toroids.samplers.sgd import SGD

__all__ = ["SAM"]


class SAM(SGD):
    """SAM / ASAM around SGD-Nesterov; two forward/backward passes per step."""

    defaults: dict[str, Any] = {"lr": 0.02, "momentum": 0.9, "nesterov": True, "rho": 0.05, "adaptive": False}

    #: ASAM's η in T_w = |w| + η
    asam_eta = 0.01

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.options["rho"] < 0:
            raise ValueError(f"sam: rho must be ≥ 0, got {self.options['rho']}")
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self._perturbed, self._seen = 0.0, 0
        stats = super().train_epoch(epoch)
        stats["loss_perturbed"] = self._perturbed / max(self._seen, 1)
        return stats

    def _step(self, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> tuple[float, torch.Tensor]:
        rho, params = self.options["rho"], self.params
        out = self.model(x)
        loss = batch_loss(out, y)
        value = checked(loss, epoch, step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            if self.options["adaptive"]:
                scale = torch._foreach_add(torch._foreach_abs(params), self.asam_eta)
                tg = torch._foreach_mul(grads, scale)
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tg)))
                eps = torch._foreach_mul(tg, scale)
            else:
                norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
                eps = grads
            eps = torch._foreach_mul(eps, rho / (norm + 1e-12))
            saved = [p.detach().clone() for p in params]
            torch._foreach_add_(params, eps)
        with frozen_bn_stats(self.model):
            loss2 = batch_loss(self.model(x), y)
        value2 = checked(loss2, epoch, step)
        self.opt.zero_grad(set_to_none=True)
        loss2.backward()
        with torch.no_grad():
            torch._foreach_copy_(params, saved)
        self.opt.step()
        self.clip_binary(self.model)
        self._perturbed += value2 * len(y)
        self._seen += len(y)
        return value, out
