"""Distances and paths on the toroid (digest §2).

A normalized network lives on a product of spheres: every hidden unit's incoming weight vector on the unit
sphere, the whole last layer on the sphere of radius sqrt(H_L). For two normalized-and-aligned networks:

* per sphere, the angle φ = arccos(v1·v2 / |v1||v2|) and the geodesic point at fraction x (slerp)
      γ(x) = [sin((1−x)φ) v1 + sin(xφ) v2] / sin φ;
* the network geodesic applies slerp to every sphere with the same x;
* D_geo² = Σ_{hidden units} φ_k² + H_L · φ_L².

Tensors that are not on a sphere (biases, BatchNorm parameters and running statistics) are interpolated
linearly with the same x (the digest's best reading; the paper neglects them). Functions take state dicts
and a :class:`toroids.symmetry.Structure`, so they apply to any supported architecture.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from toroids.symmetry import Structure

__all__ = [
    "euclidean_distance",
    "geodesic_distance",
    "geodesic_path",
    "linear_path",
    "sphere_angles",
    "slerp",
]

State = Mapping[str, torch.Tensor]

# Below this angle slerp's 1/sin φ loses precision; there the chord is the geodesic to O(φ³).
_SMALL_ANGLE = 1e-7


def slerp(v1: torch.Tensor, v2: torch.Tensor, x: float) -> torch.Tensor:
    """Spherical interpolation of the rows of ``v1`` and ``v2`` (same norms), at fraction ``x`` of the angle.

    Rows whose angle is below 1e-7 are interpolated linearly (the two formulas agree to O(φ³)).
    """
    u, v = v1.reshape(len(v1), -1), v2.reshape(len(v2), -1)
    phi = sphere_angle_rows(u, v)
    small = phi < _SMALL_ANGLE
    sin_phi = torch.where(small, torch.ones_like(phi), torch.sin(phi))
    a = torch.where(small, 1 - x, torch.sin((1 - x) * phi) / sin_phi)
    b = torch.where(small, torch.full_like(phi, x), torch.sin(x * phi) / sin_phi)
    return (a[:, None] * u + b[:, None] * v).reshape(v1.shape)


def sphere_angle_rows(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Row-wise angles φ ∈ [0, π] between the rows of two 2-D tensors.

    Uses φ = 2·atan2(|û − v̂|, |û + v̂|) on the unit-normalized rows, accurate for small and large angles
    (arccos loses half the digits near 0).
    """
    uh = u / u.norm(dim=1, keepdim=True)
    vh = v / v.norm(dim=1, keepdim=True)
    return 2 * torch.atan2((uh - vh).norm(dim=1), (uh + vh).norm(dim=1))


def sphere_angles(a: State, b: State, structure: Structure) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per hidden layer the unit angles φ_k, and the last layer's angle φ_L (the layer as one vector)."""
    hidden = [
        sphere_angle_rows(a[g.weight].reshape(g.size, -1), b[g.weight].reshape(g.size, -1))
        for g in structure.hidden
    ]
    w = structure.output_weight
    last = sphere_angle_rows(a[w].reshape(1, -1), b[w].reshape(1, -1))[0]
    return hidden, last


def geodesic_distance(a: State, b: State, structure: Structure) -> float:
    """D_geo = sqrt(Σ_{ℓ<L} Σ_k φ_ℓk² + H_L · φ_L²) between two normalized, aligned networks."""
    hidden, last = sphere_angles(a, b, structure)
    h_l = b[structure.output_weight].shape[0]
    total = sum(float((phi.double() ** 2).sum()) for phi in hidden) + h_l * float(last.double()) ** 2
    return math.sqrt(total)


def euclidean_distance(a: State, b: State, keys: Iterable[str] | None = None) -> float:
    """Per-parameter Euclidean distance ‖a − b‖₂ / sqrt(#parameters) over ``keys`` (default: all floats)."""
    keys = [k for k in (keys if keys is not None else a) if a[k].is_floating_point()]
    sq = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in keys)
    n = sum(a[k].numel() for k in keys)
    return math.sqrt(sq / n)


def _lerp(ta: torch.Tensor, tb: torch.Tensor, x: float) -> torch.Tensor:
    if not ta.is_floating_point():  # e.g. BatchNorm's num_batches_tracked: not a coordinate of the network
        return ta.clone()
    return (1 - x) * ta + x * tb


def linear_path(a: State, b: State, xs: Sequence[float]) -> list[dict[str, torch.Tensor]]:
    """Θ(x) = (1 − x) Θ_a + x Θ_b for every tensor, at each x in ``xs``."""
    return [{k: _lerp(a[k], b[k], x) for k in a} for x in xs]


def geodesic_path(
    a: State, b: State, xs: Sequence[float], structure: Structure
) -> list[dict[str, torch.Tensor]]:
    """The network geodesic: slerp of every unit sphere and of the last layer, same x for all; the tensors
    that are not on a sphere are interpolated linearly. ``a`` and ``b`` must be normalized and aligned."""
    spheres = {g.weight: g.size for g in structure.hidden}
    spheres[structure.output_weight] = 1  # the whole last layer is one sphere
    path = []
    for x in xs:
        point = {}
        for k in a:
            if k in spheres:
                point[k] = slerp(a[k].reshape(spheres[k], -1), b[k].reshape(spheres[k], -1), x).reshape(
                    a[k].shape
                )
            else:
                point[k] = _lerp(a[k], b[k], x)
        path.append(point)
    return path
