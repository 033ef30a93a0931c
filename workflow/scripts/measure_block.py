"""Rule measure_{block}: the local energy and, for continuous networks, the Hessian trace of each model of
one block (toroids.runs.measure_model), on the experiment's train set loaded once. A model whose checkpoint
cannot be read does not stop the others; the job fails at the end, naming the files."""

from pathlib import Path

from toroids import jobs, runs
from toroids.checkpoint import CheckpointError
from toroids.files import read_json
from toroids.train import resolve_device

log = jobs.start(snakemake, own_log=False)
ops = jobs.operational(snakemake.config)
plan = read_json(snakemake.input.plan)
ids = jobs.block_models(snakemake.output, "local_energy.csv")
logs = {Path(p).stem: p for p in snakemake.log}
device = resolve_device(ops["device"])
data = jobs.load_data({**plan["data"], **ops["data"]})
log(f"measuring {len(ids)} model(s) on {data.name}")
failed = []
for model_id in ids:
    folder = Path(snakemake.output[0]).parents[1] / model_id
    with jobs.model_log(logs[model_id], model_id) as model_log:
        try:
            runs.measure_model(folder, data, plan, device, chunk_size=ops["chunk_size"], log=model_log)
        except CheckpointError as exc:
            model_log(f"ERROR: {exc}")
            failed.append(str(exc))
if failed:
    raise SystemExit("unreadable checkpoints:\n  " + "\n  ".join(failed))
