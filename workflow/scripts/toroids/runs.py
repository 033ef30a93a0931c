"""What a job does for one model: train it and record it, put it on the toroid, measure its flatness.

The workflow's block rules (``rules/models.smk``) call these for every model of their block, so that one
process (one ``import torch``, one data set in memory) serves many small models; a GPU study runs blocks of
one. Every function writes the same files a job per model would write, where the README's table says.

* :func:`train_model`: ``final.safetensors`` and ``meta.json`` (hyper-parameters, seeds, errors, history,
  provenance, the sampler's summary), or ``diverged.json`` beside them when the loss diverged; then
  ``normalized.safetensors`` (Algorithm 1).
* :func:`measure_model`: ``local_energy.csv`` (δE under multiplicative noise, or under sign flips for a
  binary network) and, for a continuous network, ``sharpness.csv`` (the Hessian trace, raw and normalized).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from toroids import binary, cache, jobs, symmetry
from toroids.checkpoint import CheckpointError, load_model, load_state, save_model
from toroids.data import Dataset
from toroids.files import read_json, write_json
from toroids.flatness import local_energy
from toroids.samplers import TrainingDiverged
from toroids.sharpness import hessian_trace
from toroids.tables import SOLUTION_THRESHOLD
from toroids.train import init_seed, n_params, n_replicas, provenance, train

__all__ = ["measure_model", "train_model"]

Log = Callable[[str], None]


def train_model(
    plan: Mapping[str, Any],
    data: Dataset,
    folder: Path,
    device: torch.device,
    *,
    checkpoint_every_s: float,
    chunk_size: int,
    log: Log,
) -> bool:
    """Train the model of ``plan`` into ``folder``; returns False when it diverged (``diverged.json``
    written, no weights). A model whose plan and code are those it was last trained with gets its kept
    outputs back instead (:mod:`toroids.cache`: its block reran for another model). The epoch checkpoint
    ``folder/epoch_checkpoint.safetensors`` is left in place: the caller removes it once its whole block
    is done, so that a block killed midway resumes each model from where it was."""
    outputs = [folder / n for n in ("final.safetensors", "meta.json", "normalized.safetensors")]
    k = cache.key("train", plan, data.fingerprint())
    if cache.restore(outputs, k):
        try:
            load_state(outputs[0])  # its checksum: a kept copy shares the file a corruption would hit
            log(f"{plan['model_id']}: the same plan and code as when it was trained: its outputs kept")
            return True
        except CheckpointError as exc:
            log(f"{plan['model_id']}: its kept weights are unreadable ({exc}): training it again")
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
        # the tensors' fingerprint, and the files they were read from (none for digits and teacher)
        "data": {**plan["data"], "fingerprint": data.fingerprint(), "files": list(data.files)},
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
            checkpoint=folder / "epoch_checkpoint.safetensors",
            checkpoint_every_s=checkpoint_every_s,
            log=log,
            chunk_size=chunk_size,
            test_every=plan["training"]["test_every"],
        )
    except TrainingDiverged as exc:
        # Snakemake deletes a failed job's outputs, so the record of the divergence goes beside them.
        record = folder / "diverged.json"
        write_json(record, {**meta, "status": "diverged", "error": str(exc)})
        log(f"DIVERGED: {exc}; details in {record}")
        return False
    (folder / "diverged.json").unlink(missing_ok=True)
    save_model(folder / "final.safetensors", result.model)
    write_json(
        folder / "meta.json",
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
    log(
        f"done: the returned network has train error {100 * result.train_error:.2f}% and test error "
        f"{100 * result.test_error:.2f}% (whole splits, eval mode)"
    )
    if result.train_error >= SOLUTION_THRESHOLD:
        log(
            f"WARNING: train error {100 * result.train_error:.2f}% ≥ {100 * SOLUTION_THRESHOLD:g}%: not a "
            "solution; flagged in models.csv and left out of the claims"
        )
    # on the toroid (a binary network's latent weights rescaled per unit: its signs, hence its function,
    # unchanged), for the geodesic paths and the normalized sections
    normalized = symmetry.normalize(result.model.cpu())
    save_model(folder / "normalized.safetensors", normalized)
    layers = len(symmetry.structure(result.model).hidden)
    log(f"normalized: {layers} hidden layers on unit spheres (normalized.safetensors)")
    cache.keep(outputs, k)
    return True


def measure_model(
    folder: Path,
    data: Dataset,
    settings: Mapping[str, Any],
    device: torch.device,
    *,
    chunk_size: int,
    log: Log,
    memory_mb: int | None = None,
) -> None:
    """The local energy (``local_energy.csv``) and, for a continuous network, the Hessian trace
    (``sharpness.csv``) of the model in ``folder``, with ``settings`` = ``{"local_energy": …,
    "sharpness": …}`` (the config's sections); kept outputs come back when the weights, the settings and
    the code are unchanged (:mod:`toroids.cache`). ``memory_mb`` bounds the Hessian trace's memory
    (``sharpness.memory_mb``, operational: the same numbers, in smaller chunks)."""
    meta = read_json(folder / "meta.json")
    model = load_model(folder / "final.safetensors", device)
    names = ["local_energy.csv"] + ([] if binary.is_binary(model) else ["sharpness.csv"])
    outputs = [folder / n for n in names]
    k = cache.key("measure", settings, data.fingerprint(), cache.file_digest(folder / "final.safetensors"))
    if cache.restore(outputs, k):
        log(f"{meta['model_id']}: the same weights, settings and code as when it was measured: kept")
        return
    x, y = data.x_train.to(device), data.y_train.to(device)
    le = settings["local_energy"]
    if binary.is_binary(model):
        noise, grid, n = "flips", le["flip_fractions"], le["flip_samples"]
        log(f"local energy of {meta['model_id']} (binary): {len(grid)} flip fractions × {n} draws")
        rows = binary.local_energy_flips(model, x, y, grid, n, le["seed"], chunk_size)
    else:
        noise, grid, n = "multiplicative", le["sigmas"], le["n_samples"]
        log(f"local energy of {meta['model_id']}: {len(grid)} σ × {n} draws")
        rows = local_energy(model, x, y, grid, n, le["seed"], le["perturb"], chunk_size)
    symbol = "ε" if noise == "flips" else "σ"
    for row in rows:
        row.update(model_id=meta["model_id"], sampler=meta["sampler"], experiment=meta["experiment"])
        row.update(test_error=meta["test_error"], perturb=le["perturb"], noise=noise)
        log(f"{symbol} = {row['sigma']:.3f}: δE = {row['delta_mean']:.4f} ± {row['delta_std']:.4f}")
    jobs.write_csv(folder / "local_energy.csv", rows)
    if binary.is_binary(model):
        cache.keep(outputs, k)
        return
    cfg, out = settings["sharpness"], []
    for normalized in (False, True):
        res = hessian_trace(
            model,
            x,
            y,
            cfg["n_probes"],
            cfg["seed"],
            chunk_size,
            cfg["params"],
            normalized=normalized,
            memory_mb=memory_mb,
            log=log,
        )
        out.append({"model_id": meta["model_id"], "normalized": normalized, "params": cfg["params"], **res})
        log(
            f"Hessian trace, normalized={normalized}: {res['trace']:.4g} ± {res['stderr']:.2g} "
            f"({res['n_probes']} probes)"
        )
    jobs.write_csv(folder / "sharpness.csv", out)
    cache.keep(outputs, k)
