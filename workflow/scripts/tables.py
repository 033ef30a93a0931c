"""Rule tables: the study's tidy tables (models, local energy, paths, distances, barriers, sections, triplet
sections)."""

from toroids import jobs, study, tables
from toroids.files import read_json

log = jobs.start(snakemake)
models = tables.models_table([read_json(p) for p in snakemake.input.meta], snakemake.params.model_ids)
for row in models.itertuples():
    if not row.is_solution:
        log(f"WARNING: {row.model_id} has train error {100 * row.train_error:.2f}% ≥ 1%: kept, flagged")
    if row.pretrain_target_reached is False:
        log(
            f"WARNING: {row.model_id}'s pre-training missed its target (random-label accuracy "
            f"{row.random_label_accuracy:.4f}): kept, flagged"
        )
jobs.write_csv(snakemake.output.models, models)
le = tables.mark_star(tables.concat_csv(snakemake.input.local_energy), snakemake.params.stars)
jobs.write_csv(snakemake.output.local_energy, le)
paths = tables.concat_csv([*snakemake.input.paths, *snakemake.input.bend_paths])
jobs.write_csv(snakemake.output.paths, paths)
distances = tables.concat_csv([*snakemake.input.distances, *snakemake.input.bend_distances])
jobs.write_csv(snakemake.output.distances, distances)
jobs.write_csv(snakemake.output.barriers, tables.barriers(paths))
jobs.write_csv(snakemake.output.sections, tables.concat_csv(snakemake.input.sections))
triplets = tables.concat_csv(snakemake.input.triplet_sections, columns=study.TRIPLET_COLUMNS)
jobs.write_csv(snakemake.output.triplet_sections, triplets)
log(f"{len(models)} models, {paths['pair'].nunique() if len(paths) else 0} pairs")
