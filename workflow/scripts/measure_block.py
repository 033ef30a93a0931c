"""Rule measure_{block}: the local energy and, for continuous networks, the Hessian trace of each model of
one block (toroids.runs.measure_model), on the experiment's train set loaded once. A model whose checkpoint
cannot be read does not stop the others; the job fails at the end, naming the files."""

from toroids import jobs, runs
from toroids.checkpoint import CheckpointError
from toroids.files import read_json
from toroids.train import resolve_device

job = jobs.block(snakemake, "local_energy.csv")
plan = read_json(snakemake.input.plan)
device = resolve_device(job.ops["device"])
data = jobs.read_data(snakemake.input.data)
job.log(f"measuring {len(job.models)} model(s) on {data.name}")
failed = []
for model_id in job.models:
    with job.model_log(model_id) as log:
        try:
            runs.measure_model(
                job.folders[model_id],
                data,
                plan,
                device,
                chunk_size=job.ops["chunk_size"],
                memory_mb=job.ops["hessian_memory_mb"],
                log=log,
            )
        except CheckpointError as exc:
            log(f"ERROR: {exc}")
            failed.append(f"{exc}\n    {jobs.remake_hint(str(exc))}")
if failed:
    job.fail("unreadable checkpoints:\n  " + "\n  ".join(failed))
