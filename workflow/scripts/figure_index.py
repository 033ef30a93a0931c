"""Rule figure_index: one line per paper figure, drawn or left out and why (toroids.figures.figure_index)."""

from toroids import jobs, pages
from toroids.files import atomic_write_text

log = jobs.start(snakemake)
rows = snakemake.params.rows
jobs.write_csv(snakemake.output.table, rows)
atomic_write_text(snakemake.output.page, pages.figure_index_page(rows))
drawn = sum(r["status"] == "drawn" for r in rows)
missing = [r["figure"] for r in rows if r["status"] != "drawn"]
log(f"{drawn} of {len(rows)} paper figures drawn; not drawn: figures {missing}")
