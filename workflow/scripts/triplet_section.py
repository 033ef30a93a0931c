"""Rule triplet_section: train and test error on the Gram–Schmidt planes through three solutions of one
sampler (a, b, c), as trained and with b and c aligned to a (toroids.sections.triplet_section)."""

from toroids import jobs, sections, study
from toroids.checkpoint import load_model
from toroids.train import resolve_device

log = jobs.start(snakemake)
ops = jobs.operational(snakemake.config)
cfg, ids = snakemake.params.sections, snakemake.params.triplet
device = resolve_device(ops["device"])
_, splits = jobs.load_splits(snakemake.input.data, device)
models = [load_model(snakemake.input[n], device) for n in sections.TRIPLET_POINTS]
# continuous networks are aligned on their normalized checkpoints; binary ones need none
normalized = (
    [load_model(snakemake.input[f"{n}_n"], device) for n in sections.TRIPLET_POINTS]
    if hasattr(snakemake.input, "a_n")
    else None
)
log(f"triplet {ids['triplet']}: a={ids['a']} b={ids['b']} c={ids['c']}")
rows = sections.triplet_section(
    models,
    splits,
    resolution=cfg["resolution"],
    margin=cfg["margin"],
    normalized=normalized,
    chunk_size=ops["chunk_size"],
    bn_policy=snakemake.params.bn_policy,
    log=log,
)
frame = jobs.write_csv(snakemake.output[0], [{**ids, **r} for r in rows])
assert list(frame.columns) == list(study.TRIPLET_COLUMNS), list(frame.columns)
log(f"wrote {len(rows)} rows")
