"""Rule analysis: flatness–generalization correlations, distance/barrier by pair type, the claims table."""

import pandas as pd

from toroids import claims, jobs, stats, tables

log = jobs.start(snakemake)
p = snakemake.params
models = pd.read_csv(snakemake.input.models)
le = pd.read_csv(snakemake.input.local_energy)
frames = tables.concat_csv(snakemake.input.sharpness)
barriers, distances = (tables.read_or_empty(f) for f in (snakemake.input.barriers, snakemake.input.distances))
# the correlations use the raw Hessian trace, the one a reader knows; the normalized one is in the table
sharp = frames[~frames["normalized"].astype(bool)] if len(frames) else None
corr = stats.flatness_generalization(
    models,
    le,
    p.sigma_star,
    sharp,
    n_resamples=p.stats["n_resamples"],
    seed=p.stats["seed"],
    confidence=p.stats["confidence"],
)
jobs.write_csv(snakemake.output.correlations, corr)
jobs.write_csv(snakemake.output.sharpness, frames)
rel = stats.distance_barrier_relation(distances, barriers, le, p.sigma_star)
jobs.write_csv(snakemake.output.distance_barrier, rel)
table = claims.claims_table(
    models, le, barriers, distances, p.sigma_star, n_resamples=p.stats["n_resamples"], seed=p.stats["seed"]
)
jobs.write_csv(snakemake.output.claims, table)
for row in table.itertuples():
    log(f"{row.claim_id}: {row.status} ({row.value})")
