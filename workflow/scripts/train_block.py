"""Rule train_{block}: train each model of one block (one experiment and sampler), record it, and put it on
the toroid (toroids.runs.train_model). A model that diverges does not stop the others; the job fails at the
end, naming it. A block that reruns (killed, or given another model) gets its completed models' kept
outputs back (toroids.cache) and resumes the others from their epoch checkpoints, which stay until the
whole block is done."""

from toroids import jobs, runs
from toroids.files import read_json
from toroids.train import resolve_device

job = jobs.block(snakemake, "final.safetensors")
plans = read_json(snakemake.input.plans)
first = plans[job.models[0]]
device = resolve_device(job.ops["device"])
data = jobs.read_data(snakemake.input.data)  # one data set for the whole block
job.log(f"training {len(job.models)} model(s) of {first['experiment']} with {first['sampler']}")
diverged = []
for model_id in job.models:
    with job.model_log(model_id) as log:
        ok = runs.train_model(
            plans[model_id],
            data,
            job.folders[model_id],
            device,
            checkpoint_every_s=job.ops["checkpoint_every_s"],
            chunk_size=job.ops["chunk_size"],
            log=log,
        )
    if not ok:
        diverged.append(f"{model_id} (see {job.folders[model_id] / 'diverged.json'})")
if diverged:
    job.fail(f"training diverged: {'; '.join(diverged)}")
for folder in job.folders.values():
    (folder / "epoch_checkpoint.safetensors").unlink(missing_ok=True)
