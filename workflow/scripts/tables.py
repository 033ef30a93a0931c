"""Rules table_*: one of the study's tidy tables from the per-job outputs (params.table): models, local
energy (each model's star marked), paths with their barriers, distances, sections, triplet sections."""

from toroids import jobs, study, tables
from toroids.files import read_json

log = jobs.start(snakemake)
p, parts, out = snakemake.params, list(snakemake.input.parts), snakemake.output


def models() -> None:
    frame = tables.models_table([read_json(f) for f in parts], p.model_ids)
    for row in frame.itertuples():
        if not row.is_solution:
            log(f"WARNING: {row.model_id} has train error {100 * row.train_error:.2f}% ≥ 1%: kept, flagged")
        if row.pretrain_target_reached is False:
            log(
                f"WARNING: {row.model_id}'s pre-training missed its target (random-label accuracy "
                f"{row.random_label_accuracy:.4f}): kept, flagged"
            )
    jobs.write_csv(out.table, frame)
    log(f"{len(frame)} models")


def local_energy() -> None:
    jobs.write_csv(out.table, tables.mark_star(tables.concat_csv(parts), p.stars))


def paths() -> None:
    frame = tables.concat_csv(parts)
    jobs.write_csv(out.table, frame)
    jobs.write_csv(out.barriers, tables.barriers(frame))
    log(f"{frame['pair'].nunique() if len(frame) else 0} pairs")


def triplet_sections() -> None:
    jobs.write_csv(out.table, tables.concat_csv(parts, columns=study.TRIPLET_COLUMNS))


def concatenated() -> None:  # distances, sections
    jobs.write_csv(out.table, tables.concat_csv(parts))


{"models": models, "local_energy": local_energy, "paths": paths, "triplet_sections": triplet_sections}.get(
    p.table, concatenated
)()
