"""The evaluation engine: train/test error and loss of many weight configurations of one architecture.

Contract:
* the data are tensors already on the device (materialized once per job; no per-sample transforms);
* every evaluation covers the whole split, in chunks of ``chunk_size`` samples (the memory budget);
* a configuration is a state dict (parameters and buffers) evaluated with ``torch.func.functional_call``
  on one shared module, so no module is rebuilt or reloaded per point;
* the error is the 0/1 misclassification rate of the argmax (a single-output net: the sign).

BatchNorm along a path (``bn_policy``): ``interpolate`` evaluates the configuration's own running statistics
(interpolated with the weights by the path builders); ``recompute`` resets them and re-estimates them on the
train data (momentum None, i.e. a cumulative average, one full pass in train mode), as in REPAIR.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

__all__ = ["BN_POLICIES", "Scores", "evaluate", "evaluate_many", "has_batchnorm", "recompute_bn_stats"]

BN_POLICIES = ("interpolate", "recompute")
State = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Scores:
    """Error rate (fraction in [0, 1]) and mean cross-entropy loss of one configuration on one split."""

    error: float
    loss: float


def has_batchnorm(model: nn.Module) -> bool:
    """True when ``model`` holds BatchNorm layers (only then does ``bn_policy`` matter)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _wrong_and_loss(out: torch.Tensor, y: torch.Tensor) -> tuple[int, float]:
    if out.shape[1] == 1:  # one output unit: the class is its sign, the loss binary cross-entropy
        logit = out[:, 0]
        wrong = int(((logit > 0).long() != y).sum())
        loss = float(F.binary_cross_entropy_with_logits(logit, y.to(logit.dtype), reduction="sum"))
    else:
        wrong = int((out.argmax(1) != y).sum())
        loss = float(F.cross_entropy(out, y, reduction="sum"))
    return wrong, loss


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk_size: int = 8192, state: State | None = None
) -> Scores:
    """Error and loss of ``model`` (or of ``state`` loaded into it) on the whole split (x, y), eval mode."""
    was_training = model.training
    model.eval()
    wrong, loss = 0, 0.0
    try:
        for xb, yb in zip(x.split(chunk_size), y.split(chunk_size)):
            out = model(xb) if state is None else functional_call(model, dict(state), (xb,))
            w, lo = _wrong_and_loss(out, yb)
            wrong, loss = wrong + w, loss + lo
    finally:
        model.train(was_training)
    n = len(y)
    return Scores(wrong / n, loss / n)


@torch.no_grad()
def recompute_bn_stats(
    model: nn.Module, state: State, x_train: torch.Tensor, chunk_size: int = 8192
) -> State:
    """``state`` with every BatchNorm's running statistics re-estimated on ``x_train``.

    Reset (mean 0, var 1), momentum None (cumulative average over the chunks, weighted equally per chunk),
    one full pass in train mode; the parameters are untouched.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return state
    saved = [(m.momentum, m.running_mean.clone(), m.running_var.clone()) for m in bns]
    work = {k: v.clone() for k, v in state.items()}
    model.load_state_dict(work, strict=True)
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for xb in x_train.split(chunk_size):
            model(xb)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    finally:
        for m, (mom, mean, var) in zip(bns, saved):
            m.momentum = mom
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
        model.eval()


def evaluate_many(
    model: nn.Module,
    states: Iterable[State],
    splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    chunk_size: int = 8192,
    bn_policy: str = "interpolate",
    bn_data: torch.Tensor | None = None,
) -> list[dict[str, Scores]]:
    """Scores of every configuration in ``states`` on every split (e.g. ``{"train": ..., "test": ...}``).

    ``bn_policy='recompute'`` re-estimates BatchNorm statistics on ``bn_data`` (the train inputs) first;
    for a network without BatchNorm both policies are identical.
    """
    if bn_policy not in BN_POLICIES:
        raise ValueError(f"bn_policy must be one of {BN_POLICIES}, got {bn_policy!r}")
    recompute = bn_policy == "recompute" and has_batchnorm(model)
    if recompute and bn_data is None:
        raise ValueError("bn_policy='recompute' needs bn_data (the train inputs)")
    results = []
    for state in states:
        if recompute:
            state = recompute_bn_stats(model, state, bn_data, chunk_size)
        results.append({name: evaluate(model, x, y, chunk_size, state) for name, (x, y) in splits.items()})
    return results
