"""Rule fig02_geodesic_paths: train error along the geodesic-aligned paths per pair type (paper Fig. 2)."""

import pandas as pd
from pandas.errors import EmptyDataError

from toroids import jobs, plotting

log = jobs.start(snakemake)
try:
    paths = pd.read_csv(snakemake.input[0])
except EmptyDataError:  # a study without pairs writes an empty table
    paths = pd.DataFrame()
plotting.save_figure(
    plotting.figure_paths(paths, "geodesic_aligned"), snakemake.output.pdf, snakemake.output.png
)
log(f"plotted {paths['pair'].nunique() if len(paths) else 0} pairs")
