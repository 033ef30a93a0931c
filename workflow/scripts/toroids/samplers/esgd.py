"""Entropy-SGD (Chaudhari et al., ICLR 2017), a "beyond the paper" sampler.

One outer step at w (the returned, checkpointed variable) consumes L minibatches:

1. w′ ← w, μ ← w (and the inner momentum buffer m ← 0);
2. for ℓ = 1..L, each on a fresh minibatch B_ℓ (SGLD with an elastic pull towards w):
       d = ∇L(w′; B_ℓ)                         (with ``inner_momentum`` μ′ > 0, Nesterov on the data
                                                gradient only: m ← μ′ m + d, d ← d + μ′ m; the ucla code)
       w′ ← w′ − η′ (d + γ_t (w′ − w)) + ε √(2η′) ξ,   ξ ~ N(0, I)   (noise std ε√(2η′), the ucla code)
       μ  ← α μ + (1 − α) w′                   (α weighs the old average, the ucla code)
3. outer step: the "gradient" w − μ is given to SGD (momentum 0.9, Nesterov, lr η_e = cosine_lr(lr, e, E)):
   w ← w − η_e Nesterov(w − μ). This is the ucla-vision PyTorch form (its defaults: Nesterov momentum 0.9,
   γ0 = 1e-4, ε = 1e-4, η′ = 0.1, α = 0.75): no γ factor in the outer step, so lr = 1 without momentum means
   w ← μ (the ucla Lua code), and lr needs no rescaling when γ grows. (The paper's Algorithm 1 writes
   η γ (w − μ): this form with lr scaled by γ.) Measured on digits (MLP 64-128-128-10, 30 epochs): outer
   momentum 0.9 reaches 0.2% train error, momentum 0 stays at 7%; γ0 = 0.03 (ucla's CIFAR value) grows into
   the clip below and freezes the chain for the last third of the run.

Reduction (tested): with L = 1 and ε = 0 (any γ, inner_momentum 0), w′ = w − η′ g and
μ = w − (1 − α) η′ g, so w − μ = (1 − α) η′ ∇L(w; B): Entropy-SGD is exactly SGD with the same momentum and
Nesterov flag and learning rate lr · (1 − α) · η′ (same cosine schedule, same minibatches), up to
floating-point rounding.

Epochs and γ. An epoch is one pass over the train set by the inner chain: its minibatches (the usual
``batch_indices`` order) are taken L at a time, one outer step per group, so an epoch costs one gradient per
minibatch like an SGD epoch (the "effective epochs" of the paper), has ceil(n_batches / L) outer steps, and
its last chain is shorter when L does not divide n_batches. Scoping: γ_t = γ0 (1 + γ1)^t, t = 0-based global
outer step. ``gamma1: null`` (automatic) is gmax^(1/T) − 1, T = epochs × outer steps per epoch. γ_t is clipped
at 1/η′ (where the elastic term pulls w′ all the way back to w; beyond it the chain is unstable).

BatchNorm: only the first inner step (at w′ = w) updates the running statistics, so they are updated once per
outer step, at w; the later SGLD steps normalize with their batch statistics inside
:func:`~toroids.samplers.base.frozen_bn_stats`. The SGLD noise of an epoch comes from a generator seeded by
``derive(seed, "sgld", epoch)`` (:mod:`toroids.seeds`), so a resumed run is exact.

Extra per-epoch stats: ``gamma`` (γ of the epoch's last outer step), ``outer_steps``.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from toroids.models import Network
from toroids.samplers.base import (
    Sampler,
    batch_indices,
    batch_loss,
    checked,
    count_wrong,
    flatten_parameters,
    frozen_bn_stats,
)
from toroids.schedules import cosine_lr
from toroids.seeds import derive

__all__ = ["EntropySGD"]


class EntropySGD(Sampler):
    """Entropy-SGD: an SGLD inner loop of L steps estimates the local-entropy gradient w − ⟨w′⟩."""

    defaults: dict[str, Any] = {
        "L": 20,
        "inner_lr": 0.1,
        "noise": 1e-4,
        "alpha": 0.75,
        "inner_momentum": 0.0,
        "gamma0": 1e-4,
        "gamma1": None,
        "gmax": 1e4,
        "lr": 1.0,
        "momentum": 0.9,
        "nesterov": True,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        if isinstance(o["L"], bool) or not isinstance(o["L"], int) or o["L"] < 1:
            raise ValueError(f"esgd: L must be an integer ≥ 1, got {o['L']!r}")
        if not 0 <= o["alpha"] < 1:
            raise ValueError(f"esgd: alpha must be in [0, 1), got {o['alpha']!r}")
        if not o["inner_lr"] > 0 or o["noise"] < 0 or o["gamma0"] < 0 or not o["gmax"] > 0:
            raise ValueError("esgd: inner_lr and gmax must be > 0, noise and gamma0 ≥ 0")
        self.model = self.factory(0).to(self.device)
        flat, grad = flatten_parameters([self.model])
        self.flat, self.grad = flat, grad
        self.flat.grad = self.grad
        self.opt = torch.optim.SGD(
            [self.flat], lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"] and o["momentum"] > 0
        )
        n_batches = math.ceil(len(self.y_train) / self.batch_size)
        self.outer_per_epoch = math.ceil(n_batches / o["L"])
        if o["gamma1"] is not None:
            self.gamma1 = float(o["gamma1"])
        else:
            self.gamma1 = float(o["gmax"]) ** (1.0 / (self.epochs * self.outer_per_epoch)) - 1.0

    def gamma(self, t: int) -> float:
        """γ of global outer step ``t`` (0-based), after the clip at 1/inner_lr."""
        return min(self.options["gamma0"] * (1.0 + self.gamma1) ** t, 1.0 / self.options["inner_lr"])

    def train_epoch(self, epoch: int) -> dict[str, float]:
        o = self.options
        self._set_lr(self.opt, cosine_lr(o["lr"], epoch, self.epochs))
        self.model.train()
        n = len(self.y_train)
        batches = list(batch_indices(n, self.batch_size, self.seed, epoch, device=self.device))
        gen = torch.Generator(device=self.device).manual_seed(derive(self.seed, "sgld", epoch))
        w, g, inner_lr, alpha = self.flat[0], self.grad[0], o["inner_lr"], o["alpha"]
        mom, noise_std = o["inner_momentum"], o["noise"] * math.sqrt(2.0 * o["inner_lr"])
        mu, buf = torch.empty_like(w), torch.zeros_like(w) if mom > 0 else None
        total, wrong, seen, step, gamma = 0.0, 0, 0, 0, 0.0
        for s in range(self.outer_per_epoch):
            chunk = batches[s * o["L"] : (s + 1) * o["L"]]
            gamma = self.gamma(epoch * self.outer_per_epoch + s)
            w0 = w.detach().clone()
            with torch.no_grad():
                mu.copy_(w)
                if buf is not None:
                    buf.zero_()
            for inner, idx in enumerate(chunk):
                x, y = self.x_train[idx], self.y_train[idx]
                with frozen_bn_stats(self.model) if inner > 0 else nullcontext():
                    out = self.model(x)
                loss = batch_loss(out, y)
                value = checked(loss, epoch, step)
                g.zero_()
                loss.backward()
                with torch.no_grad():
                    if buf is not None:
                        buf.mul_(mom).add_(g)
                        g.add_(buf, alpha=mom)
                    if gamma != 0.0:
                        g.add_(w - w0, alpha=gamma)
                    w.add_(g, alpha=-inner_lr)
                    if noise_std > 0:
                        xi = torch.randn(w.shape, generator=gen, device=w.device, dtype=w.dtype)
                        w.add_(xi, alpha=noise_std)
                    mu.mul_(alpha).add_(w, alpha=1.0 - alpha)
                total += value * len(y)
                wrong += count_wrong(out, y)
                seen += len(y)
                step += 1
            with torch.no_grad():
                torch.sub(w0, mu, out=g)
                w.copy_(w0)
            self.opt.step()
            self.clip_binary(self.model)
        return {
            "loss": total / seen,
            "train_error_running": wrong / seen,
            "gamma": gamma,
            "outer_steps": float(self.outer_per_epoch),
        }

    def solution(self) -> Network:
        return self.model

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"outer": self.opt}

    def resolved_options(self) -> dict[str, Any]:
        return {**self.options, "gamma1": self.gamma1}
