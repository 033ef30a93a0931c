"""Rule train_{block}: train each model of one block (one experiment and sampler), record it, and put the
continuous ones on the toroid (toroids.runs.train_model). A model that diverges does not stop the others;
the job fails at the end, naming it. Each model's epoch checkpoint stays until the whole block is done, so
a block killed midway resumes every model where it was, the completed ones at once."""

from pathlib import Path

from toroids import jobs, runs
from toroids.files import read_json
from toroids.train import resolve_device

log = jobs.start(snakemake, own_log=False)
ops = jobs.operational(snakemake.config)
plans = read_json(snakemake.input.plans)
ids = jobs.block_models(snakemake.output, "final.safetensors")
logs = {Path(p).stem: p for p in snakemake.log}
device = resolve_device(ops["device"])
data = jobs.load_data({**plans[ids[0]]["data"], **ops["data"]})  # one data set for the whole block
log(f"training {len(ids)} model(s) of {plans[ids[0]]['experiment']} with {plans[ids[0]]['sampler']}")
diverged = []
for model_id in ids:
    folder = Path(snakemake.output[0]).parents[1] / model_id
    with jobs.model_log(logs[model_id], model_id) as model_log:
        ok = runs.train_model(
            plans[model_id],
            data,
            folder,
            device,
            checkpoint_every_s=ops["checkpoint_every_s"],
            chunk_size=ops["chunk_size"],
            log=model_log,
        )
    if not ok:
        diverged.append(f"{model_id} (see {folder / 'diverged.json'})")
if diverged:
    raise SystemExit(f"training diverged: {'; '.join(diverged)}")
for model_id in ids:
    (Path(snakemake.output[0]).parents[1] / model_id / "epoch_checkpoint.safetensors").unlink(missing_ok=True)
