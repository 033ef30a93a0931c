"""Measurements of one pair of solutions: distances in four representations, and the error along paths.

Representations (digest §2.3): ``raw`` (as trained), ``aligned`` (right permuted to match left, permutation
found on the normalized networks), ``normalized`` (Algorithm 1), ``normalized_aligned``. Paths: ``linear``
(raw endpoints), ``linear_aligned`` (raw left, aligned right) and ``geodesic_aligned`` (the toroidal
geodesic between the normalized left and the normalized, aligned right). The barrier of a path is the
largest train error along it (the paper's definition); ``barrier_excess`` subtracts the endpoints' mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from toroids import geometry, symmetry
from toroids.evaluate import evaluate_many
from toroids.study import PATHS

__all__ = ["measure_pair", "representation_distances"]


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach() for k, v in model.state_dict().items()}


def representation_distances(
    a: Mapping[str, torch.Tensor],
    b: Mapping[str, torch.Tensor],
    a_normalized: Mapping[str, torch.Tensor],
    b_normalized: Mapping[str, torch.Tensor],
    structure: symmetry.Structure,
    perms: Sequence[symmetry.Permutation] | None = None,
) -> dict[str, float]:
    """Distances between two networks in every representation.

    ``raw``, ``aligned``, ``normalized``, ``normalized_aligned``: per-parameter Euclidean distance over the
    weight tensors (biases and BatchNorm excluded, as in the paper), b aligned to a when the name says so (the
    permutation is always found on the normalized networks); ``geodesic``, ``geodesic_aligned``: the
    geodesic distance on the toroid between the normalized networks. ``perms``: the alignment of b to a, if
    already known.
    """
    if perms is None:
        perms = symmetry.match_state(a_normalized, b_normalized, structure)
    b_al = symmetry.permute_state(b, structure, perms)
    bn_al = symmetry.permute_state(b_normalized, structure, perms)
    weights = structure.weight_keys()
    return {
        "raw": geometry.euclidean_distance(a, b, weights),
        "aligned": geometry.euclidean_distance(a, b_al, weights),
        "normalized": geometry.euclidean_distance(a_normalized, b_normalized, weights),
        "normalized_aligned": geometry.euclidean_distance(a_normalized, bn_al, weights),
        "geodesic": geometry.geodesic_distance(a_normalized, b_normalized, structure),
        "geodesic_aligned": geometry.geodesic_distance(a_normalized, bn_al, structure),
    }


def measure_pair(
    left: nn.Module,
    right: nn.Module,
    left_normalized: nn.Module,
    right_normalized: nn.Module,
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    xs: Sequence[float],
    *,
    chunk_size: int = 8192,
    bn_policy: str = "interpolate",
    paths: Sequence[str] = PATHS,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return ``(path_rows, distance_rows)`` for one pair; ``right`` is aligned to ``left``.

    Path rows: ``path, x, {split}_error, {split}_loss`` per point. Distance rows: ``between`` (endpoints),
    ``representation`` and ``distance``, see :func:`representation_distances`.
    """
    structure = symmetry.structure(left)  # traced once: every state below shares it
    a, b = _state(left), _state(right)
    an, bn = _state(left_normalized), _state(right_normalized)
    perms = symmetry.match_state(an, bn, structure)
    b_al = symmetry.permute_state(b, structure, perms)
    bn_al = symmetry.permute_state(bn, structure, perms)
    distances = [
        {"between": "endpoints", "representation": rep, "distance": d}
        for rep, d in representation_distances(a, b, an, bn, structure, perms).items()
    ]

    builders = {
        "linear": lambda: geometry.linear_path(a, b, xs),
        "linear_aligned": lambda: geometry.linear_path(a, b_al, xs),
        "geodesic_aligned": lambda: geometry.geodesic_path(an, bn_al, xs, structure),
    }
    bn_data = splits["train"][0] if "train" in splits else None
    rows: list[dict[str, Any]] = []
    for name in paths:
        scores = evaluate_many(
            left, builders[name](), splits, chunk_size=chunk_size, bn_policy=bn_policy, bn_data=bn_data
        )
        for x, point in zip(xs, scores):
            row: dict[str, Any] = {"path": name, "x": float(x), "bn_policy": bn_policy}
            for split, s in point.items():
                row[f"{split}_error"], row[f"{split}_loss"] = s.error, s.loss
            rows.append(row)
    return rows, distances
