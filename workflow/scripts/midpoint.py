"""Rule midpoint: single-bend paths of one pair through SGD-optimized midpoints, one per path family."""

import numpy as np

from toroids import jobs, midpoint, symmetry
from toroids.checkpoint import load_model
from toroids.evaluate import evaluate_many
from toroids.pairs import representation_distances
from toroids.train import resolve_device, train

log = jobs.start(snakemake)
cfg, ev, pair = snakemake.params.midpoint, snakemake.params.evaluate, snakemake.params.pair
device = resolve_device(snakemake.params.device)
data = jobs.load_data(snakemake.params.data)
splits = {
    "train": (data.x_train.to(device), data.y_train.to(device)),
    "test": (data.x_test.to(device), data.y_test.to(device)),
}
left, right = load_model(snakemake.input.left, device), load_model(snakemake.input.right, device)
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
xs = np.linspace(0.0, 1.0, snakemake.params.n_points).tolist()
ids = {"pair": f"{pair['left']}__{pair['right']}", **pair}
path_rows, distance_rows = [], []
for variant in cfg["variants"]:
    log(f"{variant}: training the midpoint for {cfg['epochs']} epochs")
    res = train(
        arch=left.spec["arch"],
        model_options=left.spec["options"],
        data=data,
        sampler="sgd",
        sampler_options={k: cfg[k] for k in ("lr", "momentum", "nesterov")},
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        seed=cfg["seed"],
        device=device,
        log=lambda msg: log(f"  {msg}"),
        chunk_size=ev["chunk_size"],
        init_state=inits[variant],
    )
    m = {k: v.detach() for k, v in res.model.state_dict().items()}
    log(f"{variant}: midpoint train error {100 * res.train_error:.2f}%")
    end_a, end_b = ends[variant]
    points, positions, segments = midpoint.bend_path(variant, end_a, m, end_b, xs, s)
    scores = evaluate_many(
        left,
        points,
        splits,
        chunk_size=ev["chunk_size"],
        bn_policy=ev["bn_policy"],
        bn_data=splits["train"][0],
    )
    for x, seg, point in zip(positions, segments, scores):
        path_rows.append(
            {
                **ids,
                "path": f"{variant}_bend",
                "x": x,
                "segment": seg,
                "bn_policy": ev["bn_policy"],
                "midpoint_train_error": res.train_error,
                **{f"{k}_error": v.error for k, v in point.items()},
                **{f"{k}_loss": v.loss for k, v in point.items()},
            }
        )
    m_n = symmetry.normalize_state(m, s)
    for between, (e, e_n) in {"left_midpoint": (a, an), "right_midpoint": (b, bn)}.items():
        for rep, d in representation_distances(e, m, e_n, m_n, s).items():
            distance_rows.append(
                {**ids, "between": between, "variant": variant, "representation": rep, "distance": d}
            )
    barrier = max(r["train_error"] for r in path_rows if r["path"] == f"{variant}_bend")
    log(f"{variant}: single-bend barrier {100 * barrier:.2f}%")
jobs.write_csv(snakemake.output.paths, path_rows)
jobs.write_csv(snakemake.output.distances, distance_rows)
