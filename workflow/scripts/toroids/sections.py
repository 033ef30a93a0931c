"""2-D sections of the landscape (digest §5.4, after Garipov et al. 2018).

Three networks p₀ (left), p₁ (right) and p₂ (right aligned to left), flattened over every floating-point
tensor (weights, biases, BatchNorm parameters and running statistics), span a plane. Gram–Schmidt gives
its orthonormal basis

    u = (p₁ − p₀) / ‖p₁ − p₀‖,   v = r / ‖r‖,  r = (p₂ − p₀) − ((p₂ − p₀)·u) u,

and the grid point (α, β) is the network p₀ + α u + β v. The grid covers the three points with a margin (a
fraction of the larger extent on each side). In the normalized version the three points are the normalized
networks; the plane itself is not on the toroid ("mild distortion"), and geodesics between the normalized
left and the normalized aligned right are drawn by projecting their points onto the plane. A BatchNorm
running variance that an extrapolated grid point would make negative is clamped to 0.

Triplet sections (the paper's binary Figs. 8, 20–23; :func:`triplet_section`): three solutions a, b, c of
the same sampler span the plane twice, as trained ("raw") and with b and c aligned to a ("aligned"). For
binary networks the plane is in the latent continuous weights and every grid point is binarized by the
binary layers themselves; the alignment is :func:`toroids.binary.binary_perms` (permutations, and sign
flips where they are a symmetry). For continuous networks it is Algorithm 2 on the normalized networks,
applied to the raw ones; the plane is through the raw networks either way. Aligned points may coincide
(b and c exact symmetric copies of a): the plane is then completed by arbitrary orthonormal directions and
the grid, centred on the points, takes the raw plane's extent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from toroids import binary, symmetry
from toroids.evaluate import evaluate_many

__all__ = [
    "TRIPLET_POINTS",
    "TRIPLET_REPRESENTATIONS",
    "Plane",
    "alignment",
    "extent",
    "grid_axes",
    "plane_rows",
    "plane",
    "project",
    "triplet_planes",
    "triplet_section",
]

#: the three points of a triplet section, and its two planes
TRIPLET_POINTS = ("a", "b", "c")
TRIPLET_REPRESENTATIONS = ("raw", "aligned")

State = Mapping[str, torch.Tensor]


class Plane:
    """The affine plane p₀ + α u + β v through three flattened states."""

    def __init__(self, template: State, origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> None:
        self.keys = [k for k, t in template.items() if t.is_floating_point()]
        self.template = dict(template)
        self.origin, self.u, self.v = origin, u, v

    def flatten(self, state: State) -> torch.Tensor:
        return torch.cat([state[k].reshape(-1).to(self.origin.dtype) for k in self.keys])

    def coordinates(self, state: State) -> tuple[float, float]:
        """(α, β) of the orthogonal projection of ``state`` onto the plane."""
        d = self.flatten(state) - self.origin
        return float(d @ self.u), float(d @ self.v)

    def point(self, alpha: float, beta: float) -> dict[str, torch.Tensor]:
        """The network at (α, β)."""
        flat = self.origin + alpha * self.u + beta * self.v
        out, i = dict(self.template), 0
        for k in self.keys:
            t = self.template[k]
            out[k] = flat[i : i + t.numel()].reshape(t.shape).to(t.dtype)
            i += t.numel()
            if k.endswith("running_var"):
                out[k] = out[k].clamp_min(0)
        return out

    def grid(self, alphas: Sequence[float], betas: Sequence[float]) -> Iterator[dict[str, torch.Tensor]]:
        """Networks on the grid, β fastest."""
        for a in alphas:
            for b in betas:
                yield self.point(a, b)


def _orthogonal_axis(u: torch.Tensor) -> torch.Tensor:
    """A unit vector orthogonal to the unit vector ``u``: the coordinate axis least parallel to it, minus its
    component along ``u``."""
    r = torch.zeros_like(u)
    r[int(u.abs().argmin())] = 1.0
    r = r - (r @ u) * u
    return r / r.norm()


def plane(p0: State, p1: State, p2: State, *, strict: bool = True) -> Plane:
    """The Gram–Schmidt plane through ``p0``, ``p1``, ``p2`` (float64 coordinates).

    ``p1 = p0`` raises unless ``strict`` is false; then ``p2`` gives the first direction, or, when all three
    coincide, the first coordinate axis does (any plane through a single point is one of its sections)."""
    keys = [k for k, t in p0.items() if t.is_floating_point()]

    def flat(s: State) -> torch.Tensor:
        return torch.cat([s[k].reshape(-1).to(torch.float64) for k in keys])

    o = flat(p0)
    e1, e2 = flat(p1) - o, flat(p2) - o
    if float(e1.norm()) == 0:
        if strict:
            raise ValueError("the left and right networks coincide: no plane through them")
        e1, e2 = e2, e1
        if float(e1.norm()) == 0:
            e1 = torch.zeros_like(o)
            e1[0] = 1.0
    u = e1 / e1.norm()
    r = e2 - (e2 @ u) * u
    if float(r.norm()) <= 1e-12 * float(e2.norm() + 1):
        # the aligned point lies on the line left–right (e.g. alignment was the identity): any normal
        # direction spans a valid plane; take the first coordinate axis not parallel to u
        return Plane(p0, o, u, _orthogonal_axis(u))
    return Plane(p0, o, u, r / r.norm())


def project(pl: Plane, states: Sequence[State]) -> list[tuple[float, float]]:
    """Plane coordinates of each state (e.g. the points of a geodesic)."""
    return [pl.coordinates(s) for s in states]


def extent(points: Sequence[tuple[float, float]]) -> float:
    """The larger of the α and β ranges of ``points``."""
    a = [p[0] for p in points]
    b = [p[1] for p in points]
    return max(max(a) - min(a), max(b) - min(b))


def grid_axes(
    points: Sequence[tuple[float, float]], resolution: int, margin: float, *, fallback_span: float = 0.0
) -> tuple[list[float], list[float]]:
    """``resolution`` equally spaced α and β values covering ``points``, plus ``margin`` × their extent.

    Points that all coincide have no extent: the grid is then centred on them and ``(1 + 2 margin) ×
    fallback_span`` wide (e.g. the raw plane's extent, for an aligned plane whose points coincide)."""
    a = [p[0] for p in points]
    b = [p[1] for p in points]
    span = extent(points)
    pad = margin * span
    if span == 0:
        pad = (0.5 + margin) * fallback_span
    return (
        torch.linspace(min(a) - pad, max(a) + pad, resolution).tolist(),
        torch.linspace(min(b) - pad, max(b) + pad, resolution).tolist(),
    )


def plane_rows(
    model: nn.Module,
    pl: Plane,
    points: Mapping[str, tuple[float, float]],
    alphas: Sequence[float],
    betas: Sequence[float],
    splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    chunk_size: int = 8192,
    bn_policy: str = "interpolate",
) -> list[dict[str, Any]]:
    """The rows of one plane: its α × β grid evaluated with ``model``'s architecture (``kind='grid'``, train
    and test error as fractions, β fastest; BatchNorm statistics by ``bn_policy``), then the named points
    (``kind='point'``, their (α, β), no errors)."""
    scores = evaluate_many(
        model,
        pl.grid(alphas, betas),
        splits,
        chunk_size=chunk_size,
        bn_policy=bn_policy,
        bn_data=splits["train"][0],
    )
    grid = [(x, y) for x in alphas for y in betas]
    rows: list[dict[str, Any]] = [
        {
            "kind": "grid",
            "name": "",
            "alpha": x,
            "beta": y,
            "train_error": sc["train"].error,
            "test_error": sc["test"].error,
        }
        for (x, y), sc in zip(grid, scores)
    ]
    nan = float("nan")
    rows += [
        {"kind": "point", "name": n, "alpha": x, "beta": y, "train_error": nan, "test_error": nan}
        for n, (x, y) in points.items()
    ]
    return rows


def alignment(
    reference: nn.Module,
    model: nn.Module,
    reference_n: nn.Module | None = None,
    model_n: nn.Module | None = None,
) -> list[symmetry.Permutation]:
    """The permutations that align ``model`` to ``reference``, to apply with :func:`symmetry.permute_state`.

    Binary networks: :func:`binary.binary_perms` (latent weights; sign flips where they are a symmetry).
    Continuous: Algorithm 2 on the normalized networks (``reference_n``, ``model_n``, e.g. the normalized
    checkpoints; computed with :func:`symmetry.normalize` when not given)."""
    if binary.is_binary(reference):
        return binary.binary_perms(reference, model)
    reference_n = reference_n if reference_n is not None else symmetry.normalize(reference)
    model_n = model_n if model_n is not None else symmetry.normalize(model)
    return symmetry.match(reference_n, model_n)


def triplet_planes(
    states: Sequence[State], s: symmetry.Structure, perms: Sequence[Sequence[symmetry.Permutation]]
) -> dict[str, tuple[Plane, dict[str, dict[str, torch.Tensor]]]]:
    """The two planes of a triplet section through ``states`` = (a, b, c), with ``perms`` = (b's, c's)
    alignment onto a: ``{"raw": (plane, {"a": a, "b": b, "c": c}), "aligned": (plane, {"a": a, "b": b
    aligned, "c": c aligned})}``. The aligned points may coincide (see :func:`plane`'s ``strict``)."""
    a, b, c = (dict(st) for st in states)
    b_al, c_al = (symmetry.permute_state(st, s, p) for st, p in zip((b, c), perms))
    return {
        "raw": (plane(a, b, c), {"a": a, "b": b, "c": c}),
        "aligned": (plane(a, b_al, c_al, strict=False), {"a": a, "b": b_al, "c": c_al}),
    }


def triplet_section(
    models: Sequence[nn.Module],
    splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    *,
    resolution: int,
    margin: float,
    normalized: Sequence[nn.Module] | None = None,
    chunk_size: int = 8192,
    bn_policy: str = "interpolate",
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """The rows of a triplet section through ``models`` = (a, b, c): per representation (raw, aligned), the
    ``resolution``² grid (``kind='grid'``, train and test error as fractions, β fastest) and the three
    points (``kind='point'``, ``name`` a, b or c, no errors). ``normalized``: the three normalized networks,
    used to align continuous ones (see :func:`alignment`). The aligned grid covers the aligned points; if
    they coincide, it takes the raw grid's extent."""
    a, b, c = models
    a_n, b_n, c_n = normalized if normalized is not None else (None, None, None)
    perms = [alignment(a, b, a_n, b_n), alignment(a, c, a_n, c_n)]
    s = symmetry.structure(a)
    planes = triplet_planes([m.state_dict() for m in models], s, perms)
    rows: list[dict[str, Any]] = []
    raw_span = 0.0
    for rep in TRIPLET_REPRESENTATIONS:
        pl, named = planes[rep]
        coords = {name: pl.coordinates(named[name]) for name in TRIPLET_POINTS}
        pts = list(coords.values())
        alphas, betas = grid_axes(pts, resolution, margin, fallback_span=raw_span)
        if rep == "raw":
            raw_span = extent(pts)
        here = plane_rows(a, pl, coords, alphas, betas, splits, chunk_size=chunk_size, bn_policy=bn_policy)
        rows += [{"representation": rep, **r} for r in here]
        train = [r["train_error"] for r in here if r["kind"] == "grid"]
        if log is not None:
            where = ", ".join(f"{n} ({x:.4g}, {y:.4g})" for n, (x, y) in coords.items())
            log(
                f"{rep}: {len(alphas)}×{len(betas)} grid, α ∈ [{alphas[0]:.4g}, {alphas[-1]:.4g}], "
                f"β ∈ [{betas[0]:.4g}, {betas[-1]:.4g}]; points {where}; train error "
                f"{min(train):.4f}–{max(train):.4f}"
            )
    return rows
