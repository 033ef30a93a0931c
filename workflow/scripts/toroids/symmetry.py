"""Symmetry removal (paper §3): normalization onto the toroid (Algorithm 1), permutation alignment
(Algorithm 2) and a self-test of the symmetries, for any network whose unit structure
:func:`toroids.units.structure` derives from its module graph (chains, residual networks, concatenations).

The methods, in words, are the README's "Methods" section; the formulas are in the docstrings below. Every
function works on state dicts and a :class:`Structure`, with a model-level form beside it that traces the
model (``example``: a batch, or an input shape; inferred from the first layer when unambiguous).

Only permutations, positive per-unit rescalings and the global output scale are symmetries of a ReLU net;
sign flips only where every op on a group's paths is odd (``UnitGroup.odd``). The ``match``/``permute``
machinery applies flips either way.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from toroids.units import (
    PASS_THROUGH_MODULES,
    BatchNormRef,
    BatchNormScale,
    Coupled,
    Law,
    Scale,
    Structure,
    UnitGroup,
    UnsupportedGraphError,
    resolve,
    structure,
)

__all__ = [
    "PASS_THROUGH_MODULES",
    "BatchNormRef",
    "BatchNormScale",
    "CheckReport",
    "Coupled",
    "Law",
    "Permutation",
    "Scale",
    "Structure",
    "UnitGroup",
    "UnsupportedGraphError",
    "align",
    "check",
    "match",
    "match_state",
    "normalize",
    "normalize_state",
    "permute",
    "permute_state",
    "rescale_state",
    "structure",
    "unit_norms",
]

State = Mapping[str, Tensor]
Example = Tensor | Sequence[int] | None


@dataclass(frozen=True, eq=False)
class Permutation:
    """New unit k of a group is old unit ``index[k]``, then multiplied by ``signs[k]`` (±1) if given."""

    index: Tensor
    signs: Tensor | None = None


# ---------------------------------------------------------------------------------------------------------
# Transformations of a state dict (never in place: untouched entries are shared with the input)


def _positions(c: Coupled | BatchNormRef, size: int, device: torch.device) -> Tensor:
    """The entries unit k owns along the coupled dim: ``offset + k·block + j``, as a (size, block) table."""
    return c.offset + torch.arange(size * c.block, device=device).view(size, c.block)


def _take(t: Tensor, c: Coupled | BatchNormRef, dim: int, index: Tensor) -> Tensor:
    """Reorder the units' entries of ``t`` along ``dim``: new unit k takes old unit ``index[k]``'s entries."""
    size = len(index)
    index = index.to(device=t.device, dtype=torch.long)
    if c.offset == 0 and size * c.block == t.shape[dim]:
        full = (index[:, None] * c.block + torch.arange(c.block, device=t.device)).reshape(-1)
    else:
        full = torch.arange(t.shape[dim], device=t.device)
        pos = _positions(c, size, t.device)
        full[pos.reshape(-1)] = pos[index].reshape(-1)
    return t.index_select(dim, full)


def _along(t: Tensor, c: Coupled | BatchNormRef, dim: int, factor: Tensor) -> Tensor:
    """``factor`` (one per unit) spread over each unit's entries (1 elsewhere), to broadcast on ``t``."""
    f = factor.to(device=t.device, dtype=t.dtype)
    if c.block > 1:
        f = f.repeat_interleave(c.block)
    if c.offset != 0 or len(f) != t.shape[dim]:
        full = torch.ones(t.shape[dim], dtype=t.dtype, device=t.device)
        full[c.offset : c.offset + len(f)] = f
        f = full
    shape = [1] * t.dim()
    shape[dim] = -1
    return f.view(shape)


def _transform_bn(state: dict[str, Tensor], bn: BatchNormRef, f_in: Tensor, f_out: Tensor) -> None:
    """Make the eval-mode BN output exactly ``f_out``× the old one when its input is ``f_in``× the old one.

    With μ' = f_in·μ and var' + ε = f_in²(var + ε), (x' − μ')/sqrt(var' + ε) = sign(f_in)·(x − μ)/sqrt(var
    + ε),
    so γ' = f_out·sign(f_in)·γ and β' = f_out·β. A var' < 0 is clamped to 0 and γ' also takes the factor
    r = sqrt(var' + ε)/(|f_in|·sqrt(var + ε)) (1 when nothing is clamped), which keeps the function exact.
    """
    kw, kb, km, kv = bn.keys
    var = state[kv]
    fi = _along(var, bn, 0, f_in)
    fo = _along(var, bn, 0, f_out)
    f2 = fi * fi
    # For flips and pure output scalings (f_in² = 1) keep running_var bit-identical: (var + ε) − ε can round.
    new_var = torch.where(f2 == 1, var, f2 * (var + bn.eps) - bn.eps)
    gamma = fo * fi.sign()
    clamped = new_var < 0
    if bool(clamped.any()):
        new_var = new_var.clamp_min(0)
        r = torch.sqrt((new_var + bn.eps) / (var + bn.eps)) / fi.abs()
        gamma = torch.where(clamped, gamma * r, gamma)
    state[kv] = new_var
    state[km] = state[km] * fi
    state[kb] = state[kb] * fo
    state[kw] = state[kw] * gamma


def _permute(state: dict[str, Tensor], g: UnitGroup, index: Tensor | None, sign: Tensor | None) -> None:
    """Permute group ``g``'s units by ``index``, then multiply unit k by ``sign_k`` (weights, biases,
    consumers; BN with input and output both negated). Replaces entries."""
    if index is not None:
        for k in (*g.weights, *g.biases):
            state[k] = _take(state[k], Coupled(k, 0), 0, index)
        for bn in g.batchnorms:
            for k in bn.keys:
                state[k] = _take(state[k], bn, 0, index)
        for c in g.consumers:
            state[c.key] = _take(state[c.key], c, 1, index)
    if sign is None:
        return
    for k in (*g.weights, *g.biases):
        state[k] = state[k] * _along(state[k], Coupled(k, 0), 0, sign)
    for bn in g.batchnorms:
        _transform_bn(state, bn, sign, sign)
    for c in g.consumers:
        state[c.key] = state[c.key] * _along(state[c.key], c, 1, sign)


def rescale_state(state: State, scale: Scale, c: Tensor) -> dict[str, Tensor]:
    """Multiply unit k's tensors under ``scale`` by c_k > 0: weight rows and biases ×c, each BN by its rule
    (input ×c**degree_in, output ×c**degree_out), consumer columns ×1/c. Returns a new dict."""
    out = dict(state)
    _rescale(out, scale, c)
    return out


def _rescale(state: dict[str, Tensor], sc: Scale, c: Tensor) -> None:
    for k in (*sc.weights, *sc.biases):
        state[k] = state[k] * _along(state[k], Coupled(k, 0), 0, c)
    one = torch.ones_like(c)
    for b in sc.batchnorms:
        _transform_bn(state, b.bn, c if b.degree_in else one, c if b.degree_out else one)
    for cp in sc.consumers:
        state[cp.key] = state[cp.key] * _along(state[cp.key], cp, 1, 1 / c)


def _check_state(state: State, s: Structure) -> None:
    keys = [s.output_weight, *s.fixed]
    for g in s.hidden:
        keys += [
            *g.weights,
            *g.biases,
            *(c.key for c in g.consumers),
            *(k for b in g.batchnorms for k in b.keys),
        ]
    for k in keys:
        if k not in state:
            raise KeyError(f"state has no {k!r}: not the architecture of this structure")


# ---------------------------------------------------------------------------------------------------------
# Algorithm 1


def _norm_keys(sc: Scale) -> tuple[str, ...]:
    return sc.sphere if sc.sphere else tuple(b.keys[0] for b in sc.gammas)


def _unit_norms(state: State, sc: Scale, size: int) -> Tensor:
    """Per unit, the norm that normalization sets to 1: of its sphere rows (concatenated), else of its γ."""
    if sc.sphere:
        if len(sc.sphere) == 1:
            return state[sc.sphere[0]].flatten(1).norm(dim=1)
        return torch.stack([state[k].flatten(1).pow(2).sum(dim=1) for k in sc.sphere]).sum(dim=0).sqrt()
    sq = torch.zeros(size, dtype=torch.float64)
    for bn in sc.gammas:
        gamma = state[bn.keys[0]]
        sq = sq.to(gamma) + gamma[_positions(bn, size, gamma.device)].pow(2).sum(dim=1)
    return sq.sqrt()


def _inverse(n: Tensor) -> Tensor:
    # A zero unit has no direction; leaving it unscaled keeps the function and avoids 1/0.
    return torch.where(n > 0, 1 / n.clamp_min(torch.finfo(n.dtype).tiny), torch.ones_like(n))


def _scale_order(s: Structure) -> list[tuple[UnitGroup, Scale]]:
    """The scales in an order where each comes after every scale that compensates its sphere rows (a
    topological order: sphere rows are the opening rows, whose inputs do not depend on their scale)."""
    scales = [(g, sc) for g in s.hidden for sc in g.scales]
    rows = [set(_norm_keys(sc)) for _, sc in scales]
    deps = [{j for j, (_, t) in enumerate(scales) if j != i and {c.key for c in t.consumers} & rows[i]}
            for i in range(len(scales))]  # fmt: skip
    order: list[int] = []
    done: set[int] = set()
    while len(order) < len(scales):
        ready = [i for i in range(len(scales)) if i not in done and deps[i] <= done]
        if not ready:  # only where a scale has no opening row and keeps all (two interleaved streams)
            names = ", ".join(_norm_keys(scales[i][1])[0] for i in range(len(scales)) if i not in done)
            raise UnsupportedGraphError(f"the scales of {names} compensate each other's rows in a cycle")
        order.append(ready[0])
        done.add(ready[0])
    return [scales[i] for i in order]


def normalize_state(state: State, s: Structure) -> dict[str, Tensor]:
    """Algorithm 1 on a state dict: every scale's units to norm 1 on their sphere rows (concatenated; with
    none, their own-scale BN γ), the next layers compensated, each unit after the compensations that reach
    its sphere rows; then the output weight and bias ×sqrt(H_L)/‖W_L‖_F. In a chain this is the paper's
    layer-by-layer sweep. Returns a new dict; the input is not modified."""
    _check_state(state, s)
    out = dict(state)
    for g, sc in _scale_order(s):
        _rescale(out, sc, _inverse(_unit_norms(out, sc, g.size)))
    if s.output_scaled:
        w = out[s.output_weight]
        norm = w.norm()
        if norm > 0:
            a = math.sqrt(s.output_size) / norm
            out[s.output_weight] = w * a
            if s.output_bias is not None:
                out[s.output_bias] = out[s.output_bias] * a
    return out


# ---------------------------------------------------------------------------------------------------------
# Algorithm 2


def _cosines(a: Tensor, b: Tensor) -> np.ndarray:
    """Cosine matrix between the rows of ``a`` and ``b`` (float64; a zero row has cosine 0 with all)."""
    # numpy: small float64 products in torch's threaded CPU path were ~100x slower on a busy 2-core box.
    a_, b_ = (t.detach().to("cpu", torch.float64).numpy() for t in (a, b))
    a_ = a_ / np.maximum(np.linalg.norm(a_, axis=1, keepdims=True), 1e-300)
    b_ = b_ / np.maximum(np.linalg.norm(b_, axis=1, keepdims=True), 1e-300)
    return a_ @ b_.T


def _inputs(s: Structure) -> dict[str, list[tuple[int, Coupled]]]:
    """Per weight key, the (group index, columns) of every group whose units it reads."""
    cols: dict[str, list[tuple[int, Coupled]]] = {}
    for i, g in enumerate(s.hidden):
        for c in g.consumers:
            cols.setdefault(c.key, []).append((i, c))
    return cols


def _rows(
    state: State,
    g: UnitGroup,
    keys: Sequence[str],
    cols: Mapping[str, Sequence[tuple[int, Coupled]]],
    perms: Sequence[Permutation | None],
) -> Tensor:
    """Group ``g``'s weight rows over ``keys`` (concatenated), their input columns carrying ``perms``."""
    parts = []
    for k in keys:
        t = state[k]
        for j, c in cols.get(k, ()):
            p = perms[j]
            if p is not None:
                t = _take(t, c, 1, p.index)
                if p.signs is not None:
                    t = t * _along(t, c, 1, p.signs)
        parts.append(t.reshape(g.size, -1))
    return torch.cat(parts, dim=1)


def match_state(reference: State, state: State, s: Structure, *, signs: bool = False) -> list[Permutation]:
    """Algorithm 2 on two (normalized) state dicts: per group, the permutation of ``state``'s units that
    maximizes Σ_k cos(ref unit k, unit π(k)) over the units' weight rows (concatenated over the group's
    layers), the rows' inputs carrying the permutations already found (with ``signs``, in the groups whose
    units have the sign-flip symmetry (``odd``): |cos|, and a flip where cos < 0).

    In a chain the groups are matched once, from the first (the paper's greedy layer-by-layer matching).
    Where groups read each other in a cycle (residual networks), the first sweep uses, per group, only the
    layers whose inputs are matched already (the stem for a residual stream), and further sweeps re-match
    every group given all the others until no permutation changes (at most 20)."""
    _check_state(reference, s)
    _check_state(state, s)
    cols = _inputs(s)
    n = len(s.hidden)
    perms: list[Permutation | None] = [None] * n

    def solve(i: int, keys: Sequence[str]) -> Permutation:
        g = s.hidden[i]
        for k in keys:
            if reference[k].shape != state[k].shape:
                raise ValueError(f"{k}: shapes {tuple(reference[k].shape)} and {tuple(state[k].shape)}")
        ref = _rows(reference, g, keys, {}, [None] * n)
        cos = _cosines(ref, _rows(state, g, keys, cols, perms))
        # A sign flip is a symmetry only where every op up to the next layer is odd (e.g. sign, not ReLU
        # or max-pooling): elsewhere the matching stays on plain cosines.
        flips = signs and g.odd
        rows, picked = linear_sum_assignment(np.abs(cos) if flips else cos, maximize=True)
        order = np.argsort(rows)
        index = torch.as_tensor(picked[order], dtype=torch.long)
        flip = torch.as_tensor(np.where(cos[rows, picked] < 0, -1.0, 1.0)[order]) if flips else None
        return Permutation(index, flip)

    cyclic = False
    for i, g in enumerate(s.hidden):
        ready = [k for k in g.weights if all(perms[j] is not None for j, _ in cols.get(k, ()))]
        cyclic = cyclic or len(ready) < len(g.weights)
        perms[i] = solve(i, ready or g.weights)
    for _ in range(20 if cyclic else 0):
        changed = False
        for i, g in enumerate(s.hidden):
            new = solve(i, g.weights)
            old = perms[i]
            assert old is not None
            same = torch.equal(new.index, old.index) and (
                new.signs is None or old.signs is None or torch.equal(new.signs, old.signs)
            )
            changed = changed or not same
            perms[i] = new
        if not changed:
            break
    return [p for p in perms if p is not None]


def permute_state(state: State, s: Structure, perms: Sequence[Permutation | Tensor]) -> dict[str, Tensor]:
    """Apply one :class:`Permutation` (or plain index tensor) per hidden group; returns a new dict."""
    if len(perms) != len(s.hidden):
        raise ValueError(f"{len(perms)} permutations for {len(s.hidden)} hidden groups")
    _check_state(state, s)
    out = dict(state)
    for g, p in zip(s.hidden, perms):
        p = p if isinstance(p, Permutation) else Permutation(torch.as_tensor(p))
        idx = p.index.to(torch.long).cpu()
        if idx.shape != (g.size,) or not torch.equal(idx.sort().values, torch.arange(g.size)):
            raise ValueError(f"{g.weight}: not a permutation of {g.size} units")
        if p.signs is not None and (p.signs.shape != (g.size,) or not bool((p.signs.abs() == 1).all())):
            raise ValueError(f"{g.weight}: signs must be {g.size} values ±1")
        _permute(out, g, idx, p.signs)
    return out


# ---------------------------------------------------------------------------------------------------------
# Model-level API (every function returns a new model; its input is never modified)


def _with_state(model: nn.Module, state: State) -> nn.Module:
    new = copy.deepcopy(model)
    new.load_state_dict(state)
    return new


def unit_norms(model: nn.Module, example: Example = None, *, batchnorm: str = "carry") -> list[Tensor]:
    """Per scale (in group order), each unit's norm that normalization sets to 1."""
    state = model.state_dict()
    s = structure(model, example, batchnorm=batchnorm)
    return [_unit_norms(state, sc, g.size) for g in s.hidden for sc in g.scales]


def normalize(model: nn.Module, example: Example = None, *, batchnorm: str = "carry") -> nn.Module:
    """Algorithm 1 (:func:`normalize_state`): a new model with every unit on its sphere and ‖W_L‖_F =
    sqrt(H_L). Same eval-mode function up to a positive factor on the logits. ``batchnorm="own"`` also moves
    BN's own scale into the next layer (|γ| = 1), so networks that differ by a BN rescaling coincide."""
    s = structure(model, example, batchnorm=batchnorm)
    return _with_state(model, normalize_state(model.state_dict(), s))


def match(
    reference: nn.Module, model: nn.Module, example: Example = None, *, signs: bool = False
) -> list[Permutation]:
    """Algorithm 2's permutations of ``model``'s hidden units onto ``reference``'s. Both should already be
    normalized (the cosines of a layer depend on the scales of its inputs); :func:`align` normalizes for
    you."""
    return match_state(reference.state_dict(), model.state_dict(), structure(model, example), signs=signs)


def permute(model: nn.Module, perms: Sequence[Permutation | Tensor], example: Example = None) -> nn.Module:
    """A new model with ``perms`` (and their sign flips) applied; the function is unchanged by permutations
    and, for groups with ``odd`` paths, by flips. Works on raw and normalized models alike."""
    return _with_state(model, permute_state(model.state_dict(), structure(model, example), perms))


def align(
    reference: nn.Module,
    model: nn.Module,
    example: Example = None,
    *,
    signs: bool = False,
    batchnorm: str = "carry",
) -> nn.Module:
    """``model`` permuted (and flipped if ``signs``) to match ``reference``.

    The permutations are always computed on normalized copies of both networks, ``match(normalize(ref),
    normalize(model))``, and applied to ``model`` as given. A raw ``model`` therefore stays raw ("Linear-
    Aligned"; paper footnote 4) and a normalized one stays normalized ("Normalized-Aligned")."""
    s = structure(model, example, batchnorm=batchnorm)
    if structure(reference, example, batchnorm=batchnorm) != s:
        raise ValueError("reference and model have different unit structures")
    perms = match_state(
        normalize_state(reference.state_dict(), s), normalize_state(model.state_dict(), s), s, signs=signs
    )
    return _with_state(model, permute_state(model.state_dict(), s, perms))


# ---------------------------------------------------------------------------------------------------------
# Self-test


@dataclass(frozen=True)
class CheckReport:
    """The outcome of :func:`check`: one row per symmetry tried, ``(what, units, deviation)``, where the
    deviation is max |f'(x) − f(x)| / max |f(x)| over the example batch (for the output scale and the
    normalization, after dividing out the positive logit factor); ``ok`` when every deviation ≤ ``tol``."""

    rows: tuple[tuple[str, int, float], ...]
    tol: float
    structure: Structure

    @property
    def ok(self) -> bool:
        """Every symmetry preserved the function to ``tol``."""
        return all(d <= self.tol for _, _, d in self.rows)

    def __str__(self) -> str:
        width = max(len(w) for w, _, _ in self.rows)
        lines = [f"{'symmetry':<{width}}  units  deviation  ok"]
        for what, units, d in self.rows:
            lines.append(f"{what:<{width}}  {units:>5}  {d:9.1e}  {'yes' if d <= self.tol else 'NO'}")
        notes = "\n".join(self.structure.notes)
        return "\n".join(lines) + (f"\n{notes}" if notes else "")


def check(
    model: nn.Module,
    example: Example = None,
    *,
    batchnorm: str = "carry",
    seed: int = 0,
    tol: float = 1e-9,
) -> CheckReport:
    """Apply each derived symmetry of ``model`` at random and compare the outputs (float64, eval mode).

    Per group: a random permutation, random sign flips if the group is ``odd``, and for each scale random
    factors log-uniform in [1/2, 2]; then the output layer's global scale and the whole normalization (whose
    outputs must be a positive multiple of the original). ``example``: a batch, or an input shape (a standard
    normal batch of 8 is drawn). A row above ``tol`` means the structure is wrong for this network: report it
    with the model's code."""
    shape, s = resolve(model, example, batchnorm=batchnorm)
    g = torch.Generator().manual_seed(seed)
    net = copy.deepcopy(model).double().eval()
    if isinstance(example, Tensor):
        x = example.detach().to("cpu", torch.float64)
    else:
        x = torch.randn(8, *shape, generator=g, dtype=torch.float64)
    x = x.to(next(net.parameters()).device)
    state = {k: v.clone() for k, v in net.state_dict().items()}  # load_state_dict writes into its tensors
    with torch.no_grad():
        y = net(x)
    scale_y = float(y.abs().max()) or 1.0

    def run(st: State, positive: bool = False) -> float:
        net.load_state_dict(st)
        with torch.no_grad():
            z = net(x)
        if positive:  # divide out the positive factor a that minimizes |z − a y|
            a = float((y * z).sum() / (y * y).sum()) if float((y * y).sum()) > 0 else 1.0
            if a <= 0:
                return math.inf
            z = z / a
        return float((z - y).abs().max()) / scale_y

    rows: list[tuple[str, int, float]] = []
    for i, grp in enumerate(s.hidden):
        perms: list[Permutation | Tensor] = [torch.arange(h.size) for h in s.hidden]
        perms[i] = torch.randperm(grp.size, generator=g)
        rows.append((f"group {i} ({grp.weight}): permutation", grp.size, run(permute_state(state, s, perms))))
        if grp.odd:
            flips = torch.where(torch.rand(grp.size, generator=g) < 0.5, -1.0, 1.0).double()
            perms[i] = Permutation(torch.arange(grp.size), flips)
            rows.append(
                (f"group {i} ({grp.weight}): sign flips", grp.size, run(permute_state(state, s, perms)))
            )
        for j, sc in enumerate(grp.scales):
            c = torch.exp((torch.rand(grp.size, generator=g, dtype=torch.float64) * 2 - 1) * math.log(2))
            name = sc.weights[0] if sc.weights else f"{sc.gammas[0].prefix} γ"
            rows.append((f"group {i} scale {j} ({name})", grp.size, run(rescale_state(state, sc, c))))
    if s.output_scaled:
        out = dict(state)
        out[s.output_weight] = out[s.output_weight] * 1.7
        if s.output_bias is not None:
            out[s.output_bias] = out[s.output_bias] * 1.7
        rows.append(("output layer: global scale", s.output_size, run(out, positive=True)))
    rows.append(
        ("normalization (Algorithm 1)", sum(h.size for h in s.hidden), run(normalize_state(state, s), True))
    )
    return CheckReport(tuple(rows), tol, s)
