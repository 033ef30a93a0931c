"""Rule train: train one model with its sampler; write final.safetensors and meta.json."""

import os
from pathlib import Path

from toroids import jobs
from toroids.checkpoint import save_model
from toroids.files import write_json
from toroids.samplers import TrainingDiverged
from toroids.tables import SOLUTION_THRESHOLD
from toroids.train import (
    CHECKPOINT_EVERY_S,
    init_seed,
    n_params,
    n_replicas,
    provenance,
    resolve_device,
    train,
)

log = jobs.start(snakemake)
plan = snakemake.params.plan
data = jobs.load_data(snakemake.params.data)
device = resolve_device(snakemake.params.device)
log(
    f"training {plan['model_id']} on {data.name} "
    f"({len(data.y_train)} train, {len(data.y_test)} test samples) on {device}"
)
meta = {
    **plan,
    # every draw of this model derives from rng_seed (toroids.seeds); the initializations, by replica:
    "seeds": {
        "rng_seed": plan["rng_seed"],
        "derived_from": ["model", plan["experiment"], plan["sampler"], plan["seed"]],
        "init": [init_seed(plan["rng_seed"], r) for r in range(n_replicas(plan))],
    },
    "data": {**snakemake.params.data, "fingerprint": data.fingerprint()},
    **provenance(device),
}
try:
    result = train(
        arch=plan["arch"],
        model_options=plan["model_options"],
        data=data,
        sampler=plan["sampler"],
        sampler_options=plan["sampler_options"],
        epochs=plan["training"]["epochs"],
        batch_size=plan["training"]["batch_size"],
        seed=plan["rng_seed"],
        device=device,
        checkpoint=snakemake.params.checkpoint,
        # operational, not a param: how often the epoch checkpoint is written changes no result
        checkpoint_every_s=float(os.environ.get("TOROIDS_CHECKPOINT_EVERY_S", CHECKPOINT_EVERY_S)),
        log=log,
        chunk_size=snakemake.params.chunk_size,
    )
except TrainingDiverged as exc:
    # Snakemake deletes a failed job's outputs, so the record of the divergence goes beside them.
    record = Path(snakemake.output.meta).with_name("diverged.json")
    write_json(record, {**meta, "status": "diverged", "error": str(exc)})
    log(f"DIVERGED: {exc}; details in {record}")
    raise SystemExit(f"{plan['model_id']}: {exc} (see {record})") from None

save_model(snakemake.output.weights, result.model)
write_json(
    snakemake.output.meta,
    {
        **meta,
        "status": "ok",
        "train_error": result.train_error,
        "test_error": result.test_error,
        "train_loss": result.train_loss,
        "test_loss": result.test_loss,
        "wall_time_s": result.wall_time_s,
        "resumed_from_epoch": result.resumed_from_epoch,
        "sampler_options_resolved": result.sampler_options,
        "sampler_summary": result.summary,
        "n_params": n_params(result.model),
        "history": result.history,
    },
)
Path(snakemake.params.checkpoint).unlink(missing_ok=True)
log(
    f"done: the returned network has train error {100 * result.train_error:.2f}% and test error "
    f"{100 * result.test_error:.2f}% (whole splits, eval mode)"
)
if result.train_error >= SOLUTION_THRESHOLD:
    log(
        f"WARNING: train error {100 * result.train_error:.2f}% ≥ {100 * SOLUTION_THRESHOLD:g}%: not a "
        "solution; flagged in models.csv and left out of the claims"
    )
