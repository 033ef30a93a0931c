"""Rule midpoint: single-bend paths through SGD-optimized midpoints for a block of pairs of one experiment
(toroids.midpoint.single_bends): continuous networks one midpoint per path family (linear,
linear-aligned, geodesic-aligned), binary networks random shortest paths through a midpoint at equal
Hamming distance, raw and aligned (paper §4.2). Each pair's rows are also kept in midpoints/.pairs/,
keyed by its settings, endpoints and code (toroids.cache): a block that reruns (killed, or reshuffled by
added pairs) trains only the bends it lacks."""

import functools
from pathlib import Path

import pandas as pd

from toroids import cache, jobs, midpoint
from toroids.checkpoint import load_model
from toroids.train import resolve_device

log = jobs.start(snakemake)
ops = jobs.operational(snakemake.config)
cfg, geo = snakemake.params.midpoint, snakemake.params.geometry
device = resolve_device(ops["device"])
data, splits = jobs.load_splits(snakemake.input.data, device)
if not geo["test_along_paths"]:  # the paper reads the train error along paths only
    splits = {"train": splits["train"]}
raw = {Path(p).parent.name: p for p in snakemake.input.raw}
normalized = {Path(p).parent.name: p for p in snakemake.input.normalized}
kept = Path(snakemake.output.paths).parent / ".pairs"
digest = functools.cache(cache.file_digest)  # a model is an endpoint of several pairs of a block
path_rows, distance_rows = [], []
for i, pair in enumerate(snakemake.params.pairs, 1):
    left, right = pair["left"], pair["right"]
    ends = [raw[left], raw[right]] + [normalized[m] for m in (left, right) if m in normalized]
    k = cache.key("midpoint", pair, cfg, geo, snakemake.params.bn_policy, data.fingerprint(),
                  [digest(f) for f in ends])  # fmt: skip
    done = [kept / f"{left}__{right}.{k}.{t}.csv" for t in ("paths", "distances")]
    if all(f.is_file() for f in done):
        log(f"pair {i}/{len(snakemake.params.pairs)}: {left} ← {right}: kept from an earlier run")
        path_rows += pd.read_csv(done[0]).to_dict("records")
        distance_rows += pd.read_csv(done[1]).to_dict("records")
        continue
    log(f"pair {i}/{len(snakemake.params.pairs)}: {left} ← {right} ({pair['pair_type']})")
    a, b = load_model(raw[left], device), load_model(raw[right], device)
    binary_pair = left not in normalized
    # binary bends train like the experiment's "S" solutions (paper §4.2), continuous ones with SGD (§4.1)
    options = cfg["options"] if binary_pair else {k: cfg[k] for k in ("lr", "momentum", "nesterov")}
    rows, dists = midpoint.single_bends(
        a,
        b,
        data,
        splits,
        pair=f"{left}__{right}",
        sampler=cfg["sampler"] if binary_pair else "sgd",
        train_options=options,
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        seed=cfg["seed"],
        n_points=geo["n_points"],
        chunk_size=ops["chunk_size"],
        bn_policy=snakemake.params.bn_policy,
        device=device,
        log=log,
        variants=cfg.get("variants", midpoint.VARIANTS),
        left_n=None if binary_pair else load_model(normalized[left], device),
        right_n=None if binary_pair else load_model(normalized[right], device),
        n_orders=geo.get("n_orders", 0),
        repeats=cfg.get("binary_midpoints", 1),
    )
    ids = {"pair": f"{left}__{right}", **pair}
    path_rows += [{**ids, **r} for r in rows]
    distance_rows += [{**ids, **d} for d in dists]
    for old in kept.glob(f"{left}__{right}.*.csv"):
        old.unlink()
    jobs.write_csv(done[0], [{**ids, **r} for r in rows])
    jobs.write_csv(done[1], [{**ids, **d} for d in dists])
jobs.write_csv(snakemake.output.paths, path_rows)
jobs.write_csv(snakemake.output.distances, distance_rows)
