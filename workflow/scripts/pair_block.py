"""Rule pair_block: align, measure distances and evaluate the path families for a block of pairs.

Continuous networks: linear, linear-aligned, geodesic-aligned; binary: random shortest paths, raw and aligned.
"""

from pathlib import Path

import numpy as np

from toroids import binary, jobs
from toroids.checkpoint import load_model
from toroids.pairs import measure_pair
from toroids.train import resolve_device

log = jobs.start(snakemake)
ops = jobs.operational(snakemake.config)
device = resolve_device(ops["device"])
geo, bn_policy, chunk = snakemake.params.geometry, snakemake.params.bn_policy, ops["chunk_size"]
_, splits = jobs.load_splits(snakemake.input.data, device)
if not geo["test_along_paths"]:  # the paper reads the train error along paths only
    splits = {"train": splits["train"]}
raw = {Path(p).parent.name: p for p in snakemake.input.raw}
normalized = {Path(p).parent.name: p for p in snakemake.input.normalized}
xs = np.linspace(0.0, 1.0, geo["n_points"]).tolist()
path_rows, distance_rows = [], []
for i, pair in enumerate(snakemake.params.pairs, 1):
    left, right = pair["left"], pair["right"]
    log(f"pair {i}/{len(snakemake.params.pairs)}: {left} ← {right} ({pair['pair_type']})")
    a, b = load_model(raw[left], device), load_model(raw[right], device)
    if binary.is_binary(a):  # Hamming distances and random shortest paths (paper §2.3)
        rows, dists = binary.measure_binary_pair(
            a,
            b,
            splits,
            geo["n_points"],
            geo["n_orders"],
            geo["pair_seed"],
            chunk,
            bn_policy,
        )
    else:
        an, bn = load_model(normalized[left], device), load_model(normalized[right], device)
        rows, dists = measure_pair(a, b, an, bn, splits, xs, chunk_size=chunk, bn_policy=bn_policy)
    ids = {"pair": f"{left}__{right}", **pair}
    path_rows += [{**ids, **r} for r in rows]
    distance_rows += [{**ids, **d} for d in dists]
    for path in dict.fromkeys(r["path"] for r in rows):
        log(
            f"  {path}: max train error {100 * max(r['train_error'] for r in rows if r['path'] == path):.2f}%"
        )
jobs.write_csv(snakemake.output.paths, path_rows)
jobs.write_csv(snakemake.output.distances, distance_rows)
