"""Rule sharpness: the Hessian trace of one model's train loss (Hutchinson), raw and normalized."""

from toroids import jobs
from toroids.checkpoint import load_model
from toroids.files import read_json
from toroids.sharpness import hessian_trace
from toroids.train import resolve_device

log = jobs.start(snakemake)
cfg = snakemake.params.sharpness
device = resolve_device(snakemake.params.device)
meta = read_json(snakemake.input.meta)
model = load_model(snakemake.input.weights, device)
data = jobs.load_data(snakemake.params.data)
x, y = data.x_train.to(device), data.y_train.to(device)
rows = []
for normalized in (False, True):
    res = hessian_trace(
        model,
        x,
        y,
        cfg["n_probes"],
        cfg["seed"],
        snakemake.params.chunk_size,
        cfg["params"],
        normalized=normalized,
    )
    rows.append({"model_id": meta["model_id"], "normalized": normalized, "params": cfg["params"], **res})
    log(
        f"normalized={normalized}: tr H = {res['trace']:.4g} ± {res['stderr']:.2g} ({res['n_probes']} probes)"
    )
jobs.write_csv(snakemake.output[0], rows)
