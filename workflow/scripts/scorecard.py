"""Rule scorecard: the paper's numbers beside this study's (toroids.scorecard): paper_comparison.csv."""

import pandas as pd

from toroids import jobs, pages, scorecard, tables
from toroids.files import atomic_write_text

log = jobs.start(snakemake)
out = scorecard.compare(
    scorecard.read_paper(snakemake.input.paper),
    pd.read_csv(snakemake.input.models),
    tables.read_or_empty(snakemake.input.barriers),
    tables.read_or_empty(snakemake.input.distances),
    pd.DataFrame(snakemake.params.scale),
    solutions_only=snakemake.params.solutions_only,
)
jobs.write_csv(snakemake.output.table, out)
atomic_write_text(snakemake.output.page, pages.scorecard_page(out))
compared = out[out["why_not"] == ""]
groups = compared.drop_duplicates(["figure", "panel", "combination", "size", "quantity", "path"])
verdicts = groups["ordering"].str.split(" (", regex=False).str[0].value_counts().to_dict()
log(
    f"{len(compared)} of {len(out)} paper numbers compared ({len(out) - len(compared)} not: their "
    f"combination, sampler or pair type is not in this study); orderings of the compared groups: {verdicts}"
)
