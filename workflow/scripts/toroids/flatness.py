"""Flatness: the local energy of a solution (digest §3.1).

    δE_train(w, σ) = E_z[ E_train(w + σ z ⊙ w) ] − E_train(w),   z ~ N(0, I),

multiplicative Gaussian noise, hence invariant to the per-unit positive rescalings of a ReLU network
(a rescaled unit's perturbed weights are the rescaled perturbed weights). The expectation is estimated with
``n_samples`` draws; draw s uses the same z_s at every σ (common random numbers: the curve is smooth in σ
and exactly 0 at σ = 0), and the draws depend only on ``seed`` and the parameter shapes, so two models of
one architecture see the same noise. BatchNorm layers are evaluated in eval mode with their running
statistics untouched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from toroids.evaluate import evaluate

__all__ = ["PERTURB", "energy_rows", "local_energy", "perturbed_keys"]

PERTURB = ("all", "weights")


def perturbed_keys(model: nn.Module, perturb: str = "all") -> list[str]:
    """Parameters that receive noise: ``all`` trainable parameters, or only the ``weights`` of Linear/Conv."""
    if perturb not in PERTURB:
        raise ValueError(f"perturb must be one of {PERTURB}, got {perturb!r}")
    keys = []
    for mname, module in model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            is_weight = pname == "weight" and isinstance(module, nn.Linear | nn.modules.conv._ConvNd)
            if perturb == "all" or is_weight:
                keys.append(f"{mname}.{pname}" if mname else pname)
    return keys


@torch.no_grad()
def local_energy(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    sigmas: Sequence[float],
    n_samples: int,
    seed: int,
    perturb: str = "all",
    chunk_size: int = 8192,
) -> list[dict[str, float]]:
    """One row per σ: ``sigma``, ``train_error`` (of w), ``delta_mean``, ``delta_std`` (over draws) of δE."""
    model = model.eval()
    base_state = {k: v.detach() for k, v in model.state_dict().items()}
    base = evaluate(model, x_train, y_train, chunk_size).error
    keys = perturbed_keys(model, perturb)
    gen = torch.Generator().manual_seed(seed)
    deltas = torch.zeros(len(sigmas), n_samples, dtype=torch.float64)
    for s in range(n_samples):
        z = {k: torch.randn(base_state[k].shape, generator=gen, dtype=base_state[k].dtype) for k in keys}
        for i, sigma in enumerate(sigmas):
            if sigma == 0:
                continue  # w + 0·z⊙w = w exactly: δE = 0 by definition, no evaluation needed
            state = dict(base_state)
            for k in keys:
                w = base_state[k]
                state[k] = w + sigma * z[k].to(w.device) * w
            deltas[i, s] = evaluate(model, x_train, y_train, chunk_size, state).error - base
    return energy_rows(sigmas, base, deltas)


def energy_rows(grid: Sequence[float], base: float, deltas: torch.Tensor) -> list[dict[str, float]]:
    """One row per noise level of ``grid`` (σ, or the flipped fraction ε of a binary net) from the
    ``len(grid) × n_samples`` increases δE of the draws: ``sigma``, ``train_error`` (= ``base``, of the
    unperturbed net), ``delta_mean``, ``delta_std`` (unbiased, 0 for one draw), ``n_samples``."""
    n_samples = deltas.shape[1]
    return [
        {
            "sigma": float(level),
            "train_error": base,
            "delta_mean": float(deltas[i].mean()),
            "delta_std": float(deltas[i].std(unbiased=True)) if n_samples > 1 else 0.0,
            "n_samples": n_samples,
        }
        for i, level in enumerate(grid)
    ]
