"""Rule fig*: draw one paper figure from the study's tables (see toroids.figures.FIGURES)."""

from toroids import jobs
from toroids.figures import render

log = jobs.start(snakemake)
tables = {name: path for name, path in snakemake.input.items()}
render(snakemake.rule, tables, dict(snakemake.params.items()), snakemake.output.pdf, snakemake.output.png)
log(f"drew {snakemake.rule} from {', '.join(tables)}")
