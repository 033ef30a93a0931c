"""Sharpness: the trace of the Hessian of the train loss, a second flatness measure beyond the paper.

The paper measures flatness only with the local energy (digest §3); this module adds the classical
curvature measure

    tr H(w),   H(w) = ∇²_w L(w),   L(w) = (1/N) Σ_{n≤N} ℓ(f_w(x_n), y_n)

on the **whole** train split: ℓ is the cross-entropy of the logits (a single-output net: the binary
cross-entropy of its logit, as in :mod:`toroids.evaluate`). The data are processed in chunks of
``chunk_size`` samples; each chunk contributes the Hessian of its *summed* loss divided by N, so the chunked
Hessian is exactly the chunk-size-weighted sum and does not depend on ``chunk_size``.

Estimator (Hutchinson). For Rademacher probes v_i (entries ±1 with probability 1/2), E[vᵀHv] = tr H, so

    tr H ≈ (1/m) Σ_{i≤m} v_iᵀ H v_i,      stderr = std_i(v_iᵀ H v_i) / sqrt(m)   (ddof = 1).

Each H v is a Hessian-vector product computed forward-over-reverse, ``torch.func.jvp(torch.func.grad(L))``,
through :func:`torch.func.functional_call` (``mode="forward"``, the default: one forward-mode pass over the
backward graph; it works for Linear, Conv, MaxPool and eval-mode BatchNorm). ``mode="reverse"`` computes the
same product by double backward (``torch.autograd.grad`` with ``create_graph=True``), kept as a cross-check.
In forward mode ``probe_batch`` probes go through one ``torch.func.vmap``-ed HVP per chunk (fast on small
nets and GPUs; memory grows with ``chunk_size × probe_batch``, see Memory below); each chunk adds
v_iᵀ H_chunk v_i to q_i, so the full H v is never stored.
The probes depend only on ``seed`` and the parameter shapes (common random numbers across models of one
architecture). BatchNorm layers are in eval mode: their running statistics are constants, so the loss is a
fixed function of the parameters and no buffer is updated.

Memory. One pass of b vmapped probes over a chunk of c samples holds the chunk's activations, their b
tangents, and the backward pass's gradients of both; its peak is modelled as

    M(c, b) = fixed(b) + c · per_sample(b),

measured on CUDA (two trial passes of c₁ and 2c₁ samples, ``torch.cuda.max_memory_allocated``, then
×``MEASURED_MARGIN``) and estimated elsewhere (:func:`hvp_memory`: per_sample = (4 + 2b)·a, fixed =
(2 + 8b)·P, with a the bytes of one sample's activations and P those of the differentiated parameters).
Given a budget B (``memory_mb``, the config's ``sharpness.memory_mb``), :func:`budget_chunk` runs the
largest chunk with M(c, b) ≤ B, at most ``chunk_size``; the trace is exact whatever the chunk, so the budget
changes the time and the memory, never the result.

Caveats, stated rather than hidden:
* **Not invariant to the symmetries.** Rescaling a ReLU unit's incoming weights by a and its outgoing
  weights by 1/a leaves the function unchanged but scales the Hessian blocks by a^{±2}, so tr H can be made
  arbitrarily large or small at constant function (Dinh et al. 2017). The local energy, with its
  multiplicative noise, does not have this problem. ``normalized=True`` evaluates the trace on
  ``symmetry.normalize(model)`` (Algorithm 1: every hidden unit on the unit sphere, ‖W_L‖_F = sqrt(H_L)),
  one canonical representative of the rescaling orbit, so that number *is* rescaling-invariant. But
  normalization also multiplies the logits by a positive global factor c = sqrt(H_L)/‖W_L‖_F, which changes
  the cross-entropy (not the error): the normalized trace is the curvature of a *different* loss,
  L(normalize(w)), whose logit temperature is fixed by the toroid's convention. It is not comparable to the
  raw trace; say which one a table holds.
* **Ambient curvature.** ``params`` selects the block of the Hessian whose trace is taken (``all``
  trainable parameters, or only the Linear/Conv ``weights``); the other parameters are held fixed. The
  trace includes the directions that leave the toroid (radial, per unit), along which the normalized net's
  loss is not flat.
* **Binary (sign) networks**: the loss is piecewise constant in the weights and the Hessian is 0 almost
  everywhere; the measure is meaningless there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, hessian, jvp, vmap

from toroids.flatness import perturbed_keys

__all__ = [
    "MODES",
    "HvpMemory",
    "activation_bytes",
    "budget_chunk",
    "exact_hessian_trace",
    "hessian_trace",
    "hvp",
    "hvp_memory",
]

MODES = ("forward", "reverse")
Params = dict[str, Tensor]
Log = Callable[[str], None]

#: samples of the smaller of the two trial passes that measure an HVP's memory on CUDA (the other: twice it)
TRIAL_CHUNK = 8
#: the measured CUDA cost is multiplied by this, for what a small trial does not show (the convolution
#: algorithm and its workspace chosen for a larger batch, the allocator's rounding)
MEASURED_MARGIN = 1.25
MIB = 2**20


def _summed_loss(out: Tensor, y: Tensor) -> Tensor:
    """Summed loss of one chunk: cross-entropy, or BCE-with-logits for a single-output net."""
    if out.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(out[:, 0], y.to(out.dtype), reduction="sum")
    return F.cross_entropy(out, y, reduction="sum")


def _split(model: nn.Module, params: str) -> tuple[Params, Params]:
    """(differentiated parameters, everything else held constant: other parameters and buffers)."""
    keys = set(perturbed_keys(model, params))
    state = {k: v.detach() for k, v in model.state_dict(keep_vars=True).items()}
    return {k: v for k, v in state.items() if k in keys}, {k: v for k, v in state.items() if k not in keys}


def _chunk_loss(
    model: nn.Module, const: Params, xb: Tensor, yb: Tensor, n: int
) -> Callable[[Params], Tensor]:
    def loss(p: Params) -> Tensor:
        return _summed_loss(functional_call(model, {**const, **p}, (xb,)), yb) / n

    return loss


def hvp(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    v: Params,
    chunk_size: int = 8192,
    params: str = "all",
    mode: str = "forward",
) -> Params:
    """H v for the mean train loss over all of (x, y): Σ_chunks ∇²(Σ_{n∈chunk} ℓ_n / N) v. Eval mode."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    was_training = model.training
    model.eval()
    try:
        p, const = _split(model, params)
        out = {k: torch.zeros_like(t) for k, t in p.items()}
        n = len(y)
        for xb, yb in zip(x.split(chunk_size), y.split(chunk_size)):
            f = _chunk_loss(model, const, xb, yb, n)
            if mode == "forward":
                hv = jvp(grad(f), (p,), (v,))[1]
            else:
                leaves = {k: t.clone().requires_grad_(True) for k, t in p.items()}
                g = torch.autograd.grad(f(leaves), list(leaves.values()), create_graph=True)
                gv = sum((gi * v[k]).sum() for gi, k in zip(g, leaves))
                hv = dict(zip(leaves, torch.autograd.grad(gv, list(leaves.values()))))
            for k in out:
                out[k] += hv[k].detach()
        return out
    finally:
        model.train(was_training)


def _rademacher(p: Params, gen: torch.Generator) -> Params:
    return {
        k: (torch.randint(0, 2, t.shape, generator=gen) * 2 - 1).to(dtype=t.dtype, device=t.device)
        for k, t in p.items()
    }


def _quadratic_forms(
    model: nn.Module, x: Tensor, y: Tensor, probes: list[Params], chunk_size: int, params: str, mode: str
) -> list[float]:
    """q_i = v_iᵀ H v_i for each probe, H of the mean loss over (x, y); the probes are vmapped together."""
    if mode == "reverse":
        out = []
        for v in probes:
            hv = hvp(model, x, y, v, chunk_size, params, mode)
            out.append(sum(float((hv[k].double() * v[k].double()).sum()) for k in v))
        return out
    was_training = model.training
    model.eval()
    try:
        p, const = _split(model, params)
        stacked = {k: torch.stack([v[k] for v in probes]) for k in p}
        q = torch.zeros(len(probes), dtype=torch.float64, device=next(iter(p.values())).device)
        n = len(y)
        for xb, yb in zip(x.split(chunk_size), y.split(chunk_size)):
            f = _chunk_loss(model, const, xb, yb, n)
            hv = vmap(lambda v, f=f: jvp(grad(f), (p,), (v,))[1])(stacked)
            for k in p:
                q += (hv[k].double() * stacked[k].double()).flatten(1).sum(1)
        return q.tolist()
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class HvpMemory:
    """Peak bytes of one pass of vmapped HVPs over a chunk of c samples: ``fixed + per_sample · c``."""

    fixed: float
    per_sample: float
    how: str  # "measured on cuda:0" or "estimated from the activations": for the log

    def bytes(self, chunk: int) -> float:
        return self.fixed + self.per_sample * chunk

    def chunk(self, budget: float) -> int:
        """The largest c with ``bytes(c) ≤ budget`` (0 when not even one sample fits)."""
        return max(0, math.floor((budget - self.fixed) / self.per_sample))


def activation_bytes(model: nn.Module, x: Tensor) -> int:
    """a: bytes of one sample's activations, the input plus the output of every leaf module (forward hooks
    on a no-grad, eval-mode pass of ``x[:1]``; views such as Flatten's count too, and functional operations
    outside modules are not seen)."""
    sizes = [x[:1].numel() * x.element_size()]

    def record(_module: nn.Module, _inputs: object, out: object) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, Tensor):
                sizes.append(t.numel() * t.element_size())

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(record) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return sum(sizes)


def _trial_peak(
    model: nn.Module, x: Tensor, y: Tensor, chunk: int, params: str, mode: str, probe_batch: int
) -> int:
    """Peak CUDA bytes allocated, above those allocated before, by one pass of ``probe_batch`` probes over
    ``x[:chunk]`` (resets the device's peak-memory statistics)."""
    device = x.device
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    p, _ = _split(model, params)
    probes = [{k: torch.ones_like(t) for k, t in p.items()} for _ in range(probe_batch)]
    _quadratic_forms(model, x[:chunk], y[:chunk], probes, chunk, params, mode)
    del probes
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def _measured(model: nn.Module, x: Tensor, y: Tensor, params: str, mode: str, probe_batch: int) -> HvpMemory:
    """fixed and per_sample from trial passes over c₁ = min(TRIAL_CHUNK, N/2) and c₂ = 2c₁ samples: the
    slope and intercept of the two peaks (one pass, peak/c, when N < 2), times MEASURED_MARGIN."""
    c1 = max(1, min(TRIAL_CHUNK, len(y) // 2))
    c2 = min(len(y), 2 * c1)
    m1 = _trial_peak(model, x, y, c1, params, mode, probe_batch)
    if c2 == c1:
        fixed, slope = 0.0, m1 / c1
    else:
        m2 = _trial_peak(model, x, y, c2, params, mode, probe_batch)
        slope = max((m2 - m1) / (c2 - c1), 1.0)
        fixed = max(m1 - c1 * slope, 0.0)
    how = f"measured on {x.device}, ×{MEASURED_MARGIN} margin"
    return HvpMemory(MEASURED_MARGIN * fixed, MEASURED_MARGIN * slope, how)


def hvp_memory(
    model: nn.Module, x: Tensor, y: Tensor, params: str = "all", mode: str = "forward", probe_batch: int = 1
) -> HvpMemory:
    """The memory of one pass of ``probe_batch`` probes (reverse mode: one probe at a time) over a chunk.

    On CUDA it is measured (:func:`_measured`). Elsewhere it is estimated from a = :func:`activation_bytes`
    and P = the bytes of the differentiated parameters, for b probes per pass:

        per_sample = (4 + 2b) · a,      fixed = (2 + 8b) · P.

    Forward-over-reverse keeps the activations and their b tangents for the backward pass, whose gradients
    and their tangents are as large again: 2(1 + b)·a, plus 2a for the transients of one layer. The b
    probes, their H v, the tangents of the weights and the float64 products v·Hv were measured at ≈ 6b·P,
    taken as (2 + 8b)·P. Calibrated against the peak RSS on a CPU (torch 2.14; MLPs of 64 to 4096 units,
    LeNet, VGG16-BN at width 1/8; b = 1 to 8; 128 and 1024 samples): the measured peak was 0.2 to 0.95
    times the estimate, 0.55 to 0.95 where the activations dominate (LeNet, VGG).
    """
    b = probe_batch if mode == "forward" else 1
    if x.device.type == "cuda":
        return _measured(model, x, y, params, mode, b)
    p, _ = _split(model, params)
    weights = sum(t.numel() * t.element_size() for t in p.values())
    a = activation_bytes(model, x)
    return HvpMemory((2 + 8 * b) * weights, (4 + 2 * b) * a, "estimated from the activations")


def budget_chunk(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    memory_mb: int,
    chunk_size: int,
    params: str = "all",
    mode: str = "forward",
    probe_batch: int = 1,
    log: Log | None = None,
) -> tuple[int, int]:
    """(chunk, probe batch) for :func:`hessian_trace` within ``memory_mb`` MiB (2²⁰ bytes).

    chunk = min(``chunk_size``, N, the largest c with M(c, b) ≤ B) for M of :func:`hvp_memory`; the probe
    batch b stays ``probe_batch`` unless not even one sample fits, when it is halved until one does (or is
    1). When one sample of one probe does not fit either, chunk is 1 and the pass exceeds the budget (said
    in the log). ``log`` receives the chunk chosen and why. On CUDA this runs two small trial passes, which
    reset the device's peak-memory statistics.
    """
    if memory_mb < 1:
        raise ValueError(f"memory_mb must be ≥ 1, got {memory_mb}")
    budget, b = memory_mb * MIB, probe_batch
    while True:
        mem = hvp_memory(model, x, y, params, mode, b)
        fit = mem.chunk(budget)
        if fit >= 1 or b == 1 or mode != "forward":
            break
        b = max(1, b // 2)
    cap = min(chunk_size, len(y))
    chunk = max(1, min(cap, fit))
    if fit < 1:
        why = f"over the budget: one sample needs {mem.bytes(1) / MIB:.0f} MB"
    elif fit < cap:
        why = f"the most that fits (below chunk_size {chunk_size})"
    else:
        why = f"min(chunk_size {chunk_size}, {len(y)} samples): the budget would allow {fit}"
    if log is not None:
        if mode != "forward":
            batch = ", one probe per pass (reverse mode)"
        else:
            batch = f", {b} probe(s) per pass" + (f" (not {probe_batch})" if b != probe_batch else "")
        log(
            f"Hessian trace within {memory_mb} MB: {mem.fixed / MIB:.3g} MB + {mem.per_sample / MIB:.3g} MB "
            f"per sample ({mem.how}): chunk {chunk}, {why}{batch}"
        )
    return chunk, b


def hessian_trace(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    n_probes: int,
    seed: int,
    chunk_size: int = 8192,
    params: str = "all",
    *,
    normalized: bool = False,
    mode: str = "forward",
    probe_batch: int = 1,
    memory_mb: int | None = None,
    log: Log | None = None,
) -> dict[str, float | int]:
    """Hutchinson's estimate of tr ∇²L on the whole split (see the module doc).

    Returns ``{"trace": mean_i q_i, "stderr": std(q)/sqrt(m), "n_probes": m}`` with q_i = v_iᵀ H v_i for
    m = ``n_probes`` Rademacher probes drawn one after the other from ``torch.Generator().manual_seed(seed)``
    (so the probes, hence the result, do not depend on ``probe_batch`` or ``chunk_size``). ``probe_batch``
    probes are evaluated together with ``torch.func.vmap`` (forward mode only): memory grows as
    ``chunk_size × probe_batch`` activations, speed too on small nets. ``normalized`` evaluates it on
    ``symmetry.normalize(model)`` (a different loss: the logits are rescaled; module doc). ``memory_mb``
    bounds the memory of each pass (:func:`budget_chunk`: a smaller chunk, or fewer probes per pass; the
    same result); None: ``chunk_size`` and ``probe_batch`` as given. ``log`` hears the chunk chosen.
    """
    if n_probes < 1:
        raise ValueError(f"n_probes must be ≥ 1, got {n_probes}")
    if probe_batch < 1:
        raise ValueError(f"probe_batch must be ≥ 1, got {probe_batch}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if normalized:
        from toroids.symmetry import normalize

        model = normalize(model)
    p, _ = _split(model, params)
    if not p:
        raise ValueError(f"no parameters selected by params={params!r}")
    if memory_mb is not None:
        chunk_size, probe_batch = budget_chunk(
            model, x, y, memory_mb, chunk_size, params, mode, probe_batch, log
        )
    gen = torch.Generator().manual_seed(seed)
    q: list[float] = []
    while len(q) < n_probes:
        batch = [_rademacher(p, gen) for _ in range(min(probe_batch, n_probes - len(q)))]
        q += _quadratic_forms(model, x, y, batch, chunk_size, params, mode)
    qt = torch.tensor(q, dtype=torch.float64)
    stderr = float(qt.std(unbiased=True)) / math.sqrt(n_probes) if n_probes > 1 else float("nan")
    return {"trace": float(qt.mean()), "stderr": stderr, "n_probes": n_probes}


def exact_hessian_trace(model: nn.Module, x: Tensor, y: Tensor, params: str = "all") -> float:
    """tr ∇²L exactly, from the full Hessian of the flattened parameters (``torch.func.hessian``).

    For tiny networks only (memory grows as #params²); the reference for :func:`hessian_trace` in tests.
    """
    was_training = model.training
    model.eval()
    try:
        p, const = _split(model, params)
        keys = list(p)
        shapes = [p[k].shape for k in keys]
        sizes = [p[k].numel() for k in keys]
        flat = torch.cat([p[k].reshape(-1) for k in keys])

        def loss(w: Tensor) -> Tensor:
            parts = {k: t.reshape(s) for k, t, s in zip(keys, w.split(sizes), shapes)}
            return _summed_loss(functional_call(model, {**const, **parts}, (x,)), y) / len(y)

        return float(torch.diagonal(hessian(loss)(flat)).sum())
    finally:
        model.train(was_training)
