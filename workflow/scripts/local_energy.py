"""Rule local_energy: δE(σ) of one model on its full train set, with its test error beside it."""

from toroids import jobs
from toroids.checkpoint import load_model
from toroids.files import read_json
from toroids.flatness import local_energy
from toroids.train import resolve_device

log = jobs.start(snakemake)
cfg = snakemake.params.local_energy
device = resolve_device(snakemake.params.device)
meta = read_json(snakemake.input.meta)
model = load_model(snakemake.input.weights, device)
data = jobs.load_data(snakemake.params.data)
log(f"local energy of {meta['model_id']}: {len(cfg['sigmas'])} σ × {cfg['n_samples']} draws")
rows = local_energy(
    model,
    data.x_train.to(device),
    data.y_train.to(device),
    cfg["sigmas"],
    cfg["n_samples"],
    cfg["seed"],
    cfg["perturb"],
    snakemake.params.chunk_size,
)
for row in rows:
    row.update(
        model_id=meta["model_id"], sampler=meta["sampler"], experiment=f"{meta['arch']}-{meta['dataset']}"
    )
    row.update(test_error=meta["test_error"], perturb=cfg["perturb"])
    log(f"σ = {row['sigma']:.3f}: δE = {row['delta_mean']:.4f} ± {row['delta_std']:.4f}")
jobs.write_csv(snakemake.output[0], rows)
