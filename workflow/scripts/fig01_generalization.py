"""Rule fig01_generalization: test error against the local energy at σ* (paper Fig. 1, panels ii)."""

import pandas as pd

from toroids import jobs, plotting

log = jobs.start(snakemake)
points = plotting.prepare_generalization(
    pd.read_csv(snakemake.input.models),
    pd.read_csv(snakemake.input.local_energy),
    snakemake.params.sigma_star,
)
fig = plotting.figure_generalization(points, snakemake.params.sigma_star)
plotting.save_figure(fig, snakemake.output.pdf, snakemake.output.png)
log(f"plotted {len(points)} models")
