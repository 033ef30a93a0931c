# Helpers only: config validation, the study plan, path builders. No rules here.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from snakemake.exceptions import WorkflowError  # noqa: E402

from toroids import study  # noqa: E402
from toroids.figures import FIGURES as FIGURE_MANIFEST  # noqa: E402
from toroids.config import ConfigError, load_schema, validate_config  # noqa: E402

try:
    config.update(
        validate_config(
            config,
            load_schema(Path(workflow.basedir) / "config/schema/config.schema.yaml"),
        )
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RESULTS = f"results/{config['study']}"
MODELS = study.models(config)
BLOCKS = study.pair_blocks(config)
PAIRS = study.pairs(config)
MIDPOINT_PAIRS = {
    p.pair_id: p
    for p in study.first_per_type(PAIRS, config["midpoints"]["pairs_per_type"])
}
SECTION_PAIRS = {
    p.pair_id: p
    for p in study.first_per_type(PAIRS, config["sections"]["pairs_per_type"])
}
EXPERIMENTS = sorted({m.experiment for m in MODELS.values()})

FIGURES = [
    f"{RESULTS}/figures/{name}.{ext}"
    for name in FIGURE_MANIFEST
    for ext in ("pdf", "png")
]
TABLES = [
    f"{RESULTS}/tables/{name}.csv"
    for name in [
        "models",
        "local_energy",
        "paths",
        "distances",
        "barriers",
        "sections",
        "correlations",
        "sharpness",
        "distance_barrier",
        "claims",
    ]
]


def model_dir(model_id):
    return f"{RESULTS}/models/{model_id}"


def plan(wildcards):
    """The training plan of one model, as plain data for the job's params."""
    p = MODELS[wildcards.model_id]
    return {
        "model_id": p.model_id,
        "arch": p.arch,
        "dataset": p.dataset,
        "sampler": p.sampler,
        "seed": p.seed,
        "model_options": p.model_options,
        "training": p.training,
        "sampler_options": p.sampler_options,
    }


def data_params(name):
    """What a job needs to load data set ``name``: its options, the root and the download flag."""
    return {"name": name, "options": config["datasets"].get(name, {}), **config["data"]}


def model_data(wildcards):
    return data_params(MODELS[wildcards.model_id].dataset)


def block_pairs(wildcards):
    return [pair_params(p) for p in BLOCKS[wildcards.block]]


def block_models(wildcards):
    ids = sorted({m for p in BLOCKS[wildcards.block] for m in (p.left, p.right)})
    return {
        "raw": [f"{model_dir(m)}/final.safetensors" for m in ids],
        "normalized": [f"{model_dir(m)}/normalized.safetensors" for m in ids],
    }


def pair_params(pair):
    return {
        "left": pair.left,
        "right": pair.right,
        "pair_type": pair.pair_type,
        "experiment": pair.experiment,
    }


def pair_inputs(pairs):
    """Input function: the raw and normalized checkpoints of the pair named by the ``pair`` wildcard."""

    def inputs(wildcards):
        p = pairs[wildcards.pair]
        return {
            "left": f"{model_dir(p.left)}/final.safetensors",
            "right": f"{model_dir(p.right)}/final.safetensors",
            "left_n": f"{model_dir(p.left)}/normalized.safetensors",
            "right_n": f"{model_dir(p.right)}/normalized.safetensors",
        }

    return inputs


def block_data(wildcards):
    return data_params(MODELS[BLOCKS[wildcards.block][0].left].dataset)
