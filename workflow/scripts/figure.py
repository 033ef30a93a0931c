"""Rule fig*: draw one paper figure from the study's tables (see toroids.figures.FIGURES)."""

from pathlib import Path

from toroids import jobs
from toroids.figures import render

log = jobs.start(snakemake)
figure = Path(snakemake.output.png).stem  # not snakemake.rule: a host workflow may prefix the rule's name
tables = {name: path for name, path in snakemake.input.items()}
render(figure, tables, dict(snakemake.params.items()), snakemake.output.pdf, snakemake.output.png)
log(f"drew {figure} from {', '.join(tables)}")
