"""Rule midpoint: single-bend paths of one pair through SGD-optimized midpoints, one per path family.

Continuous networks: linear, linear-aligned, geodesic-aligned (toroids.midpoint). Binary networks: random
shortest paths through a midpoint at equal Hamming distance from both ends, raw and aligned (paper §4.2).
"""

import numpy as np

from toroids import binary, jobs, midpoint, symmetry
from toroids.checkpoint import load_model
from toroids.evaluate import evaluate_many
from toroids.pairs import representation_distances
from toroids.seeds import derive
from toroids.train import TrainResult, resolve_device, train

log = jobs.start(snakemake)
cfg, ev, pair = snakemake.params.midpoint, snakemake.params.evaluate, snakemake.params.pair
device = resolve_device(snakemake.params.device)
data, splits = jobs.load_splits(snakemake.params.data, device)
left, right = load_model(snakemake.input.left, device), load_model(snakemake.input.right, device)
ids = {"pair": f"{pair['left']}__{pair['right']}", **pair}
xs = np.linspace(0.0, 1.0, snakemake.params.n_points).tolist()


def midpoint_seed(variant: str) -> int:
    """A midpoint is a trained network: its minibatch order gets a seed of its own (toroids.seeds)."""
    return derive("midpoint", ids["pair"], variant, cfg["seed"])


def train_midpoint(init: dict, epochs: int, options: dict, variant: str) -> tuple[TrainResult, dict]:
    res = train(
        arch=left.spec["arch"],
        model_options=left.spec["options"],
        data=data,
        sampler="sgd",
        sampler_options=options,
        epochs=epochs,
        batch_size=cfg["batch_size"],
        seed=midpoint_seed(variant),
        device=device,
        log=lambda msg: log(f"  {msg}"),
        chunk_size=ev["chunk_size"],
        init_state=init,
    )
    return res, {k: v.detach() for k, v in res.model.state_dict().items()}


def evaluate_rows(
    variant: str, points: list, positions: list, segments: list, res: TrainResult, **extra: object
) -> list[dict]:
    scores = evaluate_many(
        left,
        points,
        splits,
        chunk_size=ev["chunk_size"],
        bn_policy=ev["bn_policy"],
        bn_data=splits["train"][0],
    )
    return [
        {
            **ids,
            "path": f"{variant}_bend",
            "x": x,
            "segment": seg,
            "bn_policy": ev["bn_policy"],
            "midpoint_train_error": res.train_error,
            **extra,
            **{f"{k}_error": v.error for k, v in point.items()},
            **{f"{k}_loss": v.loss for k, v in point.items()},
        }
        for x, seg, point in zip(positions, segments, scores)
    ]


def run_binary() -> tuple[list, list]:
    """The midpoint is trained with the experiment's own SGD settings (the paper: those of the SGD
    solutions); the paths are random shortest paths, averaged over orders later (``order`` column)."""
    keys = binary.binary_keys(left)
    a, b = left.state_dict(), right.state_dict()
    ends = {"random": (a, b), "random_aligned": (a, binary.align_binary(left, right).state_dict())}
    path_rows, distance_rows = [], []
    for variant, (end_a, end_b) in ends.items():
        m0 = binary.equal_distance_midpoint(end_a, end_b, keys, midpoint_seed(variant))
        log(f"{variant}: training the midpoint for {snakemake.params.binary_epochs} epochs")
        res, m = train_midpoint(m0, snakemake.params.binary_epochs, snakemake.params.binary_sgd, variant)
        log(f"{variant}: midpoint train error {100 * res.train_error:.2f}%")
        for order in range(snakemake.params.n_orders):
            seed = cfg["seed"] * 1000 + 2 * order
            points, positions, segments = binary.random_bend_path(end_a, m, end_b, keys, len(xs), seed)
            path_rows += evaluate_rows(variant, points, positions, segments, res, order=order)
        for between, end in {"left_midpoint": end_a, "right_midpoint": end_b}.items():
            distance_rows.append(
                {
                    **ids,
                    "between": between,
                    "variant": variant,
                    "representation": "hamming",
                    "distance": binary.hamming_distance(end, m, keys),
                }
            )
    return path_rows, distance_rows


def run_continuous() -> tuple[list, list]:
    left_n, right_n = load_model(snakemake.input.left_n, device), load_model(snakemake.input.right_n, device)
    s = symmetry.structure(left)
    a, b, an, bn = (m.state_dict() for m in (left, right, left_n, right_n))
    perms = symmetry.match_state(an, bn, s)
    ends = {
        "linear": (a, b),
        "linear_aligned": (a, symmetry.permute_state(b, s, perms)),
        "geodesic_aligned": (an, symmetry.permute_state(bn, s, perms)),
    }
    inits = midpoint.initial_midpoints(a, b, an, bn, s)
    path_rows, distance_rows = [], []
    options = {k: cfg[k] for k in ("lr", "momentum", "nesterov")}
    for variant in cfg["variants"]:
        log(f"{variant}: training the midpoint for {cfg['epochs']} epochs")
        res, m = train_midpoint(inits[variant], cfg["epochs"], options, variant)
        log(f"{variant}: midpoint train error {100 * res.train_error:.2f}%")
        end_a, end_b = ends[variant]
        points, positions, segments = midpoint.bend_path(variant, end_a, m, end_b, xs, s)
        rows = evaluate_rows(variant, points, positions, segments, res)
        path_rows += rows
        m_n = symmetry.normalize_state(m, s)
        for between, (e, e_n) in {"left_midpoint": (a, an), "right_midpoint": (b, bn)}.items():
            for rep, d in representation_distances(e, m, e_n, m_n, s).items():
                distance_rows.append(
                    {**ids, "between": between, "variant": variant, "representation": rep, "distance": d}
                )
        log(f"{variant}: single-bend barrier {100 * max(r['train_error'] for r in rows):.2f}%")
    return path_rows, distance_rows


path_rows, distance_rows = run_binary() if binary.is_binary(left) else run_continuous()
jobs.write_csv(snakemake.output.paths, path_rows)
jobs.write_csv(snakemake.output.distances, distance_rows)
