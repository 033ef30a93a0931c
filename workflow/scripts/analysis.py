"""Rule analysis: flatness–generalization correlations, distance/barrier by pair type, the claims table."""

import pandas as pd

from toroids import claims, jobs, pages, stats, tables
from toroids.files import atomic_write_text

log = jobs.start(snakemake)
p = snakemake.params
models = pd.read_csv(snakemake.input.models)
le = pd.read_csv(snakemake.input.local_energy)
frames = tables.concat_csv(snakemake.input.sharpness)
barriers, distances = (tables.read_or_empty(f) for f in (snakemake.input.barriers, snakemake.input.distances))
# the correlations use the raw Hessian trace, the one a reader knows; the normalized one is in the table
sharp = frames[~frames["normalized"].astype(bool)] if len(frames) else None
# every model's σ* (ε* for a binary net) is marked in the local-energy table's is_star column
corr = stats.flatness_generalization(
    models,
    le,
    sharpness=sharp,
    n_resamples=p.stats["n_resamples"],
    seed=p.stats["seed"],
    confidence=p.stats["confidence"],
    solutions_only=p.stats["solutions_only"],
)
jobs.write_csv(snakemake.output.correlations, corr)
jobs.write_csv(snakemake.output.sharpness, frames)
rel = stats.distance_barrier_relation(distances, barriers, le)
jobs.write_csv(snakemake.output.distance_barrier, rel)
table, comparisons = claims.claims_table(
    models,
    le,
    barriers,
    distances,
    n_resamples=p.stats["n_resamples"],
    seed=p.stats["seed"],
    confidence=p.stats["confidence"],
    min_models=p.stats["min_models"],
    solutions_only=p.stats["solutions_only"],
)
jobs.write_csv(snakemake.output.claims, table)
jobs.write_csv(snakemake.output.claim_tests, comparisons)
atomic_write_text(snakemake.output.page, pages.claims_page(table, comparisons))
for row in table.itertuples():
    log(
        f"{row.claim_id}: {row.status} ({row.summary}; deciding {row.deciding} = {row.estimate:.4g} "
        f"[{row.ci_low:.4g}, {row.ci_high:.4g}]; {row.n_models} models and {row.n_pairs} pairs entered, "
        f"{row.n_models_excluded} models and {row.n_pairs_excluded} pairs left out)"
    )
