"""Rule local_energy: δE of one model on its full train set, with its test error beside it.

Continuous networks: multiplicative Gaussian noise of amplitude σ; binary networks: sign flips of a
fraction ε of the weights (reported in the same ``sigma`` column, ``noise`` says which)."""

from toroids import binary, jobs
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
x, y, chunk = data.x_train.to(device), data.y_train.to(device), snakemake.params.chunk_size
if binary.is_binary(model):
    noise, star, grid, n = "flips", cfg["flip_star"], cfg["flip_fractions"], cfg["flip_samples"]
    log(f"local energy of {meta['model_id']} (binary): {len(grid)} flip fractions × {n} draws")
    rows = binary.local_energy_flips(model, x, y, grid, n, cfg["seed"], chunk)
else:
    noise, star, grid, n = "multiplicative", cfg["sigma_star"], cfg["sigmas"], cfg["n_samples"]
    log(f"local energy of {meta['model_id']}: {len(grid)} σ × {n} draws")
    rows = local_energy(model, x, y, grid, n, cfg["seed"], cfg["perturb"], chunk)
for row in rows:
    row.update(model_id=meta["model_id"], sampler=meta["sampler"], experiment=meta["experiment"])
    row.update(
        test_error=meta["test_error"], perturb=cfg["perturb"], noise=noise, is_star=row["sigma"] == star
    )
    symbol = "ε" if noise == "flips" else "σ"
    log(f"{symbol} = {row['sigma']:.3f}: δE = {row['delta_mean']:.4f} ± {row['delta_std']:.4f}")
jobs.write_csv(snakemake.output[0], rows)
