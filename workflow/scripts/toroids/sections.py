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
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch

__all__ = ["Plane", "grid_axes", "plane", "project"]

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


def plane(p0: State, p1: State, p2: State) -> Plane:
    """The Gram–Schmidt plane through ``p0``, ``p1``, ``p2`` (float64 coordinates)."""
    keys = [k for k, t in p0.items() if t.is_floating_point()]

    def flat(s: State) -> torch.Tensor:
        return torch.cat([s[k].reshape(-1).to(torch.float64) for k in keys])

    o = flat(p0)
    e1, e2 = flat(p1) - o, flat(p2) - o
    if float(e1.norm()) == 0:
        raise ValueError("the left and right networks coincide: no plane through them")
    u = e1 / e1.norm()
    r = e2 - (e2 @ u) * u
    if float(r.norm()) <= 1e-12 * float(e2.norm() + 1):
        # the aligned point lies on the line left–right (e.g. alignment was the identity): any normal
        # direction spans a valid plane; take the first coordinate axis not parallel to u
        r = torch.zeros_like(u)
        r[int(u.abs().argmin())] = 1.0
        r = r - (r @ u) * u
    return Plane(p0, o, u, r / r.norm())


def project(pl: Plane, states: Sequence[State]) -> list[tuple[float, float]]:
    """Plane coordinates of each state (e.g. the points of a geodesic)."""
    return [pl.coordinates(s) for s in states]


def grid_axes(
    points: Sequence[tuple[float, float]], resolution: int, margin: float
) -> tuple[list[float], list[float]]:
    """``resolution`` equally spaced α and β values covering ``points``, plus ``margin`` × their extent."""
    a = [p[0] for p in points]
    b = [p[1] for p in points]
    span = max(max(a) - min(a), max(b) - min(b))
    pad = margin * span
    return (
        torch.linspace(min(a) - pad, max(a) + pad, resolution).tolist(),
        torch.linspace(min(b) - pad, max(b) + pad, resolution).tolist(),
    )
