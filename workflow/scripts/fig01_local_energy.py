"""Rule fig01_local_energy: δE(σ) per sampler (paper Fig. 1, panels i)."""

import pandas as pd

from toroids import jobs, plotting

log = jobs.start(snakemake)
le = pd.read_csv(snakemake.input[0])
plotting.save_figure(plotting.figure_local_energy(le), snakemake.output.pdf, snakemake.output.png)
log(f"plotted {le['model_id'].nunique()} models")
