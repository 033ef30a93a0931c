"""Single-bend paths through an optimized midpoint (digest §4.1; binary networks §4.2, below).

For a pair (A, B), each path family gets its own bend:

* ``linear``: M₀ = (A + B)/2 on the raw networks; segments A→M and M→B are straight lines;
* ``linear_aligned``: M₀ = (A + B̃)/2 with B̃ = B aligned to A; straight segments A→M, M→B̃;
* ``geodesic_aligned``: M₀ = normalize((Â + B̂̃)/2), the mean of the normalized-aligned endpoints re-projected
  onto the toroid (``normalize`` keeps the function of the mean); after training, M is normalized again and
  aligned to A, and the segments are the geodesics Â→M̂ and M̂→B̂̃. For a BatchNorm network M₀ takes BN's own
  canonical form (``batchnorm="own"``: every conv/linear row of unit norm, |γ| = 1; the same function): in
  the paper's form, where BN carries each unit's scale, γ and the residual blocks' rows can be far from 1,
  SGD's effective step on the scale-invariant weights (∝ lr/‖w‖²) far from the solutions', and a ResNet-8
  midpoint ended at 27 % train error with running variances of 4·10⁶ (0 % from the own form, measured).
  Networks without BatchNorm have one form.

M₀ is trained with SGD (the paper: 300 epochs, batch 128, Nesterov, lr 0.02, cosine) into M; a binary
pair's midpoint, at equal Hamming distance from both ends, is trained as its experiment trained the
solutions (:func:`single_bends`' ``sampler``). The bend sits
on the [0, 1] axis at x = d₁/(d₁ + d₂), proportional to the segments' lengths (Euclidean over every
parameter for the straight families, geodesic for the geodesic one). The barrier is the maximum train error
over both segments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from toroids import binary, geometry, symmetry
from toroids.data import Dataset
from toroids.evaluate import evaluate_many
from toroids.pairs import representation_distances
from toroids.seeds import derive
from toroids.study import PATHS
from toroids.train import train

__all__ = ["VARIANTS", "aligned_ends", "bend_path", "initial_midpoints", "single_bends"]

Log = Callable[[str], None]
Splits = Mapping[str, tuple[torch.Tensor, torch.Tensor]]

VARIANTS = PATHS  # one single-bend variant per straight path family

State = Mapping[str, torch.Tensor]


def _mean(a: State, b: State) -> dict[str, torch.Tensor]:
    return geometry.linear_path(a, b, [0.5])[0]


def aligned_ends(
    a: State, b: State, a_normalized: State, b_normalized: State, structure: symmetry.Structure
) -> dict[str, tuple[State, State]]:
    """The two endpoints of each path family: raw; b aligned to a; both normalized, b aligned. The matching
    is computed once, on the normalized networks (Algorithm 2), and applied to both."""
    perms = symmetry.match_state(a_normalized, b_normalized, structure)
    return {
        "linear": (a, b),
        "linear_aligned": (a, symmetry.permute_state(b, structure, perms)),
        "geodesic_aligned": (a_normalized, symmetry.permute_state(b_normalized, structure, perms)),
    }


def initial_midpoints(
    ends: Mapping[str, tuple[State, State]],
    structure: symmetry.Structure,
    own_form: symmetry.Structure | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """M₀ of each variant (see the module doc) from its endpoints (:func:`aligned_ends`); ``own_form``: the
    structure with BatchNorm's own scale (``symmetry.structure(model, batchnorm="own")``), whose
    normalization gives the geodesic M₀ its training form."""
    out = {v: _mean(*ends[v]) for v in ("linear", "linear_aligned")}
    mean = _mean(*ends["geodesic_aligned"])
    out["geodesic_aligned"] = symmetry.normalize_state(mean, own_form or structure)
    return out


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


def single_bends(
    left: nn.Module,
    right: nn.Module,
    data: Dataset,
    splits: Splits,
    *,
    pair: str,
    train_options: Mapping[str, Any],
    sampler: str = "sgd",
    epochs: int,
    batch_size: int,
    seed: int,
    n_points: int,
    chunk_size: int,
    bn_policy: str,
    device: torch.device,
    log: Log,
    variants: Sequence[str] = VARIANTS,
    left_n: nn.Module | None = None,
    right_n: nn.Module | None = None,
    n_orders: int = 5,
    repeats: int = 1,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The single-bend paths of one pair and the distances of its midpoints to the endpoints: rows of
    ``midpoints/{block}.paths.csv`` and ``.distances.csv`` (without the pair's own columns).

    Continuous networks (``left_n``, ``right_n``: their normalized checkpoints): one midpoint per path
    family of ``variants`` (module doc). Binary networks: random shortest paths through a midpoint at equal
    Hamming distance from both ends, raw and aligned (digest §4.2): ``repeats`` independent midpoints (the
    paper: 3), each with ``n_orders`` flip orders; the rows' ``order`` numbers the (midpoint, order) paths
    r·n_orders + o, so that the barrier table averages over all of them as the paper does, and ``midpoint``
    says which midpoint. Every midpoint is trained with ``sampler`` and ``train_options`` (the experiment's
    S recipe for a binary pair) for ``epochs``; its initialization draw and minibatch order come from
    ``derive("midpoint", pair, variant, seed)`` (a binary pair's r-th: ``derive(..., seed, r)``): a midpoint
    is a network of its own."""
    xs = [i / (n_points - 1) for i in range(n_points)]

    def trained(
        init: Mapping[str, torch.Tensor], variant: str, own_seed: int
    ) -> tuple[Any, dict[str, torch.Tensor]]:
        log(f"{variant}: training the midpoint for {epochs} epochs")
        res = train(
            arch=left.spec["arch"],
            model_options=left.spec["options"],
            data=data,
            sampler=sampler,
            sampler_options=dict(train_options),
            epochs=epochs,
            batch_size=batch_size,
            seed=own_seed,
            device=device,
            log=lambda msg: log(f"  {msg}"),
            chunk_size=chunk_size,
            init_state=init,
        )
        log(f"{variant}: midpoint train error {100 * res.train_error:.2f}%")
        return res, {k: v.detach() for k, v in res.model.state_dict().items()}

    def rows(variant: str, points: list, positions: list, segments: list, res: Any, **extra: Any) -> list:
        scores = evaluate_many(
            left, points, splits, chunk_size=chunk_size, bn_policy=bn_policy, bn_data=splits["train"][0]
        )
        return [
            {
                "path": f"{variant}_bend", "x": x, "segment": seg, "bn_policy": bn_policy,
                "midpoint_train_error": res.train_error, **extra,
                **{f"{k}_error": v.error for k, v in point.items()},
                **{f"{k}_loss": v.loss for k, v in point.items()},
            }
            for x, seg, point in zip(positions, segments, scores)
        ]  # fmt: skip

    path_rows: list[dict[str, Any]] = []
    distance_rows: list[dict[str, Any]] = []
    a, b = left.state_dict(), right.state_dict()
    if binary.is_binary(left):
        keys = binary.binary_keys(left)
        ends = {"random": (a, b), "random_aligned": (a, binary.align_binary(left, right).state_dict())}
        for variant, (end_a, end_b) in ends.items():
            for r in range(repeats):
                own = derive("midpoint", pair, variant, seed, r)
                res, m = trained(binary.equal_distance_midpoint(end_a, end_b, keys, own), variant, own)
                for o in range(n_orders):
                    order = r * n_orders + o
                    points, positions, segments = binary.random_bend_path(
                        end_a, m, end_b, keys, n_points, seed * 1000 + 2 * order
                    )
                    path_rows += rows(variant, points, positions, segments, res, order=order, midpoint=r)
                for between, end in {"left_midpoint": end_a, "right_midpoint": end_b}.items():
                    distance = binary.hamming_distance(end, m, keys)
                    distance_rows.append({"between": between, "variant": variant, "representation": "hamming",
                                          "distance": distance, "midpoint": r})  # fmt: skip
        return path_rows, distance_rows
    if left_n is None or right_n is None:
        raise ValueError("single_bends: a continuous pair needs its normalized checkpoints")
    s = symmetry.structure(left)
    an, bn = left_n.state_dict(), right_n.state_dict()
    ends = aligned_ends(a, b, an, bn, s)
    inits = initial_midpoints(ends, s, symmetry.structure(left, batchnorm="own"))
    for variant in variants:
        res, m = trained(inits[variant], variant, derive("midpoint", pair, variant, seed))
        end_a, end_b = ends[variant]
        points, positions, segments = bend_path(variant, end_a, m, end_b, xs, s)
        bend = rows(variant, points, positions, segments, res)
        path_rows += bend
        m_n = symmetry.normalize_state(m, s)
        for between, (e, e_n) in {"left_midpoint": (a, an), "right_midpoint": (b, bn)}.items():
            for rep, d in representation_distances(e, m, e_n, m_n, s).items():
                distance_rows.append({"between": between, "variant": variant, "representation": rep,
                                      "distance": d})  # fmt: skip
        log(f"{variant}: single-bend barrier {100 * max(r['train_error'] for r in bend):.2f}%")
    return path_rows, distance_rows
