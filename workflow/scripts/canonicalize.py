"""Rule canonicalize: the model's normalized checkpoint (Algorithm 1), one point of the toroid."""

from toroids import jobs, symmetry
from toroids.checkpoint import load_model, save_model

log = jobs.start(snakemake)
model = load_model(snakemake.input[0])
normalized = symmetry.normalize(model)
save_model(snakemake.output[0], normalized)
log(f"normalized {snakemake.input[0]}: {len(symmetry.structure(model).hidden)} hidden layers on unit spheres")
