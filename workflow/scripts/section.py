"""Rule section: train and test error on the Gram–Schmidt plane through (left, right, right aligned)."""

import numpy as np

from toroids import geometry, jobs, sections, symmetry
from toroids.checkpoint import load_model
from toroids.train import resolve_device

log = jobs.start(snakemake)
ops = jobs.operational(snakemake.config)
cfg, pair = snakemake.params.sections, snakemake.params.pair
device = resolve_device(ops["device"])
_, splits = jobs.load_splits(snakemake.input.data, device)
left, right = load_model(snakemake.input.left, device), load_model(snakemake.input.right, device)
left_n, right_n = load_model(snakemake.input.left_n, device), load_model(snakemake.input.right_n, device)
s = symmetry.structure(left)
# binary networks: permutations and, where they are symmetries, sign flips (their latent weights span the
# plane and every grid point is binarized by the layers themselves)
perms = sections.alignment(left, right, left_n, right_n)
ids = {"pair": f"{pair['left']}__{pair['right']}", **pair}
rows = []
for rep in cfg["representations"]:
    l_, r_ = (left, right) if rep == "raw" else (left_n, right_n)
    p0, p1 = l_.state_dict(), r_.state_dict()
    p2 = symmetry.permute_state(p1, s, perms)
    pl = sections.plane(p0, p1, p2)
    named = {"left": p0, "right": p1, "right_aligned": p2}
    coords = {name: pl.coordinates(st) for name, st in named.items()}
    alphas, betas = sections.grid_axes(list(coords.values()), cfg["resolution"], cfg["margin"])
    log(f"{rep}: {len(alphas)}×{len(betas)} grid")
    rows += [
        {**ids, "representation": rep, **r}
        for r in sections.plane_rows(
            left,
            pl,
            coords,
            alphas,
            betas,
            splits,
            chunk_size=ops["chunk_size"],
            bn_policy=snakemake.params.bn_policy,
        )
    ]
    # the path drawn on the section: straight lines on the raw plane, projected geodesics on the normalized
    xs = np.linspace(0.0, 1.0, 41).tolist()
    curve = geometry.linear_path(p0, p2, xs) if rep == "raw" else geometry.geodesic_path(p0, p2, xs, s)
    for x, (a, b) in zip(xs, sections.project(pl, curve)):
        rows.append({**ids, "representation": rep, "kind": "path", "name": f"{x:.3f}", "alpha": a, "beta": b})
jobs.write_csv(snakemake.output[0], rows)
log(f"wrote {len(rows)} rows")
