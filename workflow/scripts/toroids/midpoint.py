"""Single-bend paths through an optimized midpoint (digest §4.1).

For a pair (A, B), each path family gets its own bend:

* ``linear``: M₀ = (A + B)/2 on the raw networks; segments A→M and M→B are straight lines;
* ``linear_aligned``: M₀ = (A + B̃)/2 with B̃ = B aligned to A; straight segments A→M, M→B̃;
* ``geodesic_aligned``: M₀ = normalize((Â + B̂̃)/2), the mean of the normalized-aligned endpoints re-projected
  onto the toroid (``normalize`` keeps the function of the mean); after training, M is normalized again and
  aligned to A, and the segments are the geodesics Â→M̂ and M̂→B̂̃.

M₀ is trained with SGD (the paper: 300 epochs, batch 128, Nesterov, lr 0.02, cosine) into M. The bend sits
on the [0, 1] axis at x = d₁/(d₁ + d₂), proportional to the segments' lengths (Euclidean over every
parameter for the straight families, geodesic for the geodesic one). The barrier is the maximum train error
over both segments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from toroids import geometry, symmetry
from toroids.study import PATHS

__all__ = ["VARIANTS", "bend_path", "initial_midpoints"]

VARIANTS = PATHS  # one single-bend variant per straight path family

State = Mapping[str, torch.Tensor]


def _mean(a: State, b: State) -> dict[str, torch.Tensor]:
    return geometry.linear_path(a, b, [0.5])[0]


def initial_midpoints(
    a: State, b: State, a_normalized: State, b_normalized: State, structure: symmetry.Structure
) -> dict[str, dict[str, torch.Tensor]]:
    """M₀ of each variant (see the module doc), from the raw and the normalized endpoints."""
    perms = symmetry.match_state(a_normalized, b_normalized, structure)
    b_al = symmetry.permute_state(b, structure, perms)
    bn_al = symmetry.permute_state(b_normalized, structure, perms)
    return {
        "linear": _mean(a, b),
        "linear_aligned": _mean(a, b_al),
        "geodesic_aligned": symmetry.normalize_state(_mean(a_normalized, bn_al), structure),
    }


def bend_path(
    variant: str,
    a: State,
    midpoint: State,
    b: State,
    xs: Sequence[float],
    structure: symmetry.Structure,
) -> tuple[list[dict[str, torch.Tensor]], list[float], list[int]]:
    """Points of the two segments A→M→B, their positions on [0, 1], and their segment (1 or 2).

    ``xs`` are the fractions along each segment (including 0 and 1); the bend is listed once. For
    ``geodesic_aligned``, ``a`` and ``b`` are the normalized(-aligned) endpoints and ``midpoint`` the trained
    raw midpoint, normalized and aligned to ``a`` here; for the straight variants ``b`` is raw or aligned.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown single-bend variant {variant!r}; known: {VARIANTS}")
    if variant == "geodesic_aligned":
        m = symmetry.normalize_state(midpoint, structure)
        m = symmetry.permute_state(m, structure, symmetry.match_state(a, m, structure))
        seg1, seg2 = geometry.geodesic_path(a, m, xs, structure), geometry.geodesic_path(m, b, xs, structure)
        d1, d2 = geometry.geodesic_distance(a, m, structure), geometry.geodesic_distance(m, b, structure)
    else:
        m = dict(midpoint)
        seg1, seg2 = geometry.linear_path(a, m, xs), geometry.linear_path(m, b, xs)
        d1, d2 = geometry.euclidean_distance(a, m), geometry.euclidean_distance(m, b)  # ratio only
    total = d1 + d2
    w1 = d1 / total if total > 0 else 0.5
    points = seg1 + seg2[1:]
    positions = [w1 * t for t in xs] + [w1 + (1 - w1) * t for t in xs[1:]]
    segments = [1] * len(xs) + [2] * (len(xs) - 1)
    return points, positions, segments
