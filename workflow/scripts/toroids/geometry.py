"""Distances and paths on the toroid (digest §2).

A normalized network lives on a product of spheres: every hidden unit's incoming weight vector on the unit
sphere, the whole last layer on the sphere of radius sqrt(H_L). For two normalized-and-aligned networks:

* per sphere, the angle φ = arccos(v1·v2 / |v1||v2|) and the geodesic point at fraction x (slerp)
      γ(x) = [sin((1−x)φ) v1 + sin(xφ) v2] / sin φ;
* the network geodesic applies slerp to every sphere with the same x;
* D_geo² = Σ_{hidden units} φ_k² + H_L · φ_L².

A unit's sphere is its incoming weight rows: one row in a chain; in a residual stream the rows of the layers
that open it, concatenated (:meth:`toroids.units.Structure.spheres`). Weights off the spheres (the blocks
that write back to a stream, layers without a scale freedom: :attr:`Structure.notes`) are interpolated
linearly like the tensors below and do not enter D_geo.

Tensors that are not on a sphere (biases, BatchNorm parameters and running statistics) are interpolated
linearly with the same x (the digest's best reading; the paper neglects them). Functions take state dicts
and a :class:`toroids.units.Structure`, so they apply to any supported architecture; the distances and
paths also take two modules (normalized and aligned here, Algorithms 1 and 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from toroids import symmetry
from toroids.units import Sphere, Structure

__all__ = [
    "euclidean_distance",
    "geodesic_distance",
    "geodesic_path",
    "linear_path",
    "sphere_angles",
    "slerp",
]

State = Mapping[str, torch.Tensor]
Example = torch.Tensor | Sequence[int] | None

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
    (arccos loses half the digits near 0); a zero row is at π/2 from a nonzero one and at 0 from a zero one.
    """
    # A zero row (a pruned or dead unit) has no direction: it is at π/2 from any other row, 0 from a zero row.
    tiny = torch.finfo(u.dtype).tiny
    uh = u / u.norm(dim=1, keepdim=True).clamp_min(tiny)
    vh = v / v.norm(dim=1, keepdim=True).clamp_min(tiny)
    return 2 * torch.atan2((uh - vh).norm(dim=1), (uh + vh).norm(dim=1))


def _rows(state: State, sphere: Sphere) -> torch.Tensor:
    """The sphere's points: row k of each of its tensors, flattened and concatenated, one row per unit."""
    if len(sphere.keys) == 1:  # a chain's layer: a view, no copy
        return state[sphere.keys[0]].reshape(sphere.size, -1)
    return torch.cat([state[k].reshape(sphere.size, -1) for k in sphere.keys], dim=1)


def sphere_angles(a: State, b: State, structure: Structure) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Per hidden sphere (:meth:`Structure.spheres`: one per unit of each scale) the angles φ_k, and the
    last layer's angle φ_L (the layer as one vector; None if the output layer is not on a sphere)."""
    spheres = structure.spheres()
    hidden = spheres[:-1] if structure.output_scaled else spheres
    angles = [sphere_angle_rows(_rows(a, sp), _rows(b, sp)) for sp in hidden]
    if not structure.output_scaled:
        return angles, None
    w = structure.output_weight
    return angles, sphere_angle_rows(a[w].reshape(1, -1), b[w].reshape(1, -1))[0]


def geodesic_distance(
    a: State | nn.Module,
    b: State | nn.Module,
    structure: Structure | None = None,
    *,
    example: Example = None,
    batchnorm: str = "carry",
    signs: bool = True,
) -> float:
    """D_geo = sqrt(Σ_{hidden spheres} Σ_k φ_k² + H_L · φ_L²) between two normalized, aligned networks.

    Given two modules, normalizes both and aligns ``b`` to ``a`` first (``example``: a batch or an input
    shape where the trace needs one; ``signs``: with the sign flips of the groups where they are a
    symmetry, e.g. through Tanh)."""
    a, b, structure = _toroid_pair(a, b, structure, example, batchnorm, signs)
    hidden, last = sphere_angles(a, b, structure)
    total = sum(float((phi.double() ** 2).sum()) for phi in hidden)
    if last is not None:
        total += structure.output_size * float(last.double()) ** 2
    return math.sqrt(total)


def _toroid_pair(
    a: State | nn.Module,
    b: State | nn.Module,
    s: Structure | None,
    example: Example,
    batchnorm: str,
    signs: bool,
) -> tuple[State, State, Structure]:
    """States and structure; two modules are normalized and ``b`` aligned to ``a`` (Algorithms 1, 2)."""
    if isinstance(a, nn.Module) != isinstance(b, nn.Module):
        raise TypeError("pass two modules or two state dicts")
    if isinstance(a, nn.Module):
        assert isinstance(b, nn.Module)
        s = s if s is not None else symmetry.structure(a, example, batchnorm=batchnorm)
        an = symmetry.normalize_state(a.state_dict(), s)
        bn = symmetry.normalize_state(b.state_dict(), s)
        return an, symmetry.permute_state(bn, s, symmetry.match_state(an, bn, s, signs=signs)), s
    if s is None:
        raise TypeError(
            "state dicts need their structure: geodesic_distance(a, b, symmetry.structure(model))"
        )
    return a, b, s


def euclidean_distance(
    a: State | nn.Module, b: State | nn.Module, keys: Iterable[str] | None = None, *, example: Example = None
) -> float:
    """Per-parameter Euclidean distance ‖a − b‖₂ / sqrt(#parameters) over ``keys`` (default: every floating
    tensor of two state dicts; for two modules, their weights, biases and BatchNorm excluded, as given)."""
    if isinstance(a, nn.Module) and isinstance(b, nn.Module):
        if keys is None:
            keys = symmetry.structure(a, example).weight_keys()
        a, b = a.state_dict(), b.state_dict()
    assert not isinstance(a, nn.Module) and not isinstance(b, nn.Module)
    keys = [k for k in (keys if keys is not None else a) if a[k].is_floating_point()]
    sq = sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in keys)
    n = sum(a[k].numel() for k in keys)
    return math.sqrt(sq / n)


def _lerp(ta: torch.Tensor, tb: torch.Tensor, x: float) -> torch.Tensor:
    if not ta.is_floating_point():  # e.g. BatchNorm's num_batches_tracked: not a coordinate of the network
        return ta.clone()
    return (1 - x) * ta + x * tb


def linear_path(
    a: State | nn.Module, b: State | nn.Module, xs: Sequence[float]
) -> list[dict[str, torch.Tensor]]:
    """Θ(x) = (1 − x) Θ_a + x Θ_b for every tensor, at each x in ``xs`` (modules: their state dicts; load a
    point with ``model.load_state_dict(point)``)."""
    if isinstance(a, nn.Module) and isinstance(b, nn.Module):
        a, b = a.state_dict(), b.state_dict()
    assert not isinstance(a, nn.Module) and not isinstance(b, nn.Module)
    return [{k: _lerp(a[k], b[k], x) for k in a} for x in xs]


def geodesic_path(
    a: State | nn.Module,
    b: State | nn.Module,
    xs: Sequence[float],
    structure: Structure | None = None,
    *,
    example: Example = None,
    batchnorm: str = "carry",
    signs: bool = True,
) -> list[dict[str, torch.Tensor]]:
    """The network geodesic: slerp of every unit sphere and of the last layer, same x for all; the tensors
    that are not on a sphere are interpolated linearly. State dicts must be normalized and aligned; two
    modules are normalized and ``b`` aligned to ``a`` first (the points are then normalized state dicts;
    ``signs`` as in :func:`geodesic_distance`)."""
    a, b, structure = _toroid_pair(a, b, structure, example, batchnorm, signs)
    spheres = structure.spheres()
    on_sphere = {k for sp in spheres for k in sp.keys}
    path = []
    for x in xs:
        point = {k: _lerp(a[k], b[k], x) for k in a if k not in on_sphere}
        for sp in spheres:
            moved = slerp(_rows(a, sp), _rows(b, sp), x)
            start = 0
            for k in sp.keys:
                width = a[k].numel() // sp.size
                point[k] = moved[:, start : start + width].reshape(a[k].shape)
                start += width
        path.append({k: point[k] for k in a})
    return path
