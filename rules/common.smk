# Helpers only: config validation, the study plan, path builders. No rules here.

import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.sourcecache import LocalSourceFile

# This workflow's own files come from its own folder: `workflow.current_basedir` (this file's, rules/),
# never `workflow.basedir`, which is the main Snakefile's: a host workflow's when this one is its module.
# Read from a git host (`module toroids: snakefile: github(...)`), the workflow has no folder on this
# machine: its files are Snakemake's cached copies, its package the one installed (README, "As a module").
LOCAL = isinstance(workflow.current_basedir, LocalSourceFile)
ROOT = Path(workflow.current_basedir).parent if LOCAL else None


def workflow_file(path):
    """The workflow's file ``path`` (from its root) on this machine: where it lies, or Snakemake's cached
    copy of it when the workflow is read from a git host."""
    return str(ROOT / path) if LOCAL else workflow.source_path(f"../{path}")


# The package `toroids` is this workflow's own, ahead of any other on the path (another copy's install,
# editable or not), here and in the jobs, which inherit PYTHONPATH: Snakemake's preamble of a script only
# appends the script's folder to sys.path, after the site packages. (Jobs in conda environments, whose
# PYTHONPATH Snakemake clears, have no other `toroids`: the preamble's folder is the one they import.)
if LOCAL:
    SCRIPTS = ROOT / "workflow" / "scripts"
    sys.path.insert(0, str(SCRIPTS))
    _path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    os.environ.update(
        PYTHONPATH=os.pathsep.join(
            [str(SCRIPTS), *(p for p in _path if p and p != str(SCRIPTS))]
        )
    )
try:
    from toroids import study
except ImportError as err:
    raise WorkflowError(
        f"{err}: a workflow read from a git host imports the package `toroids` installed in the Python "
        "environment (pip install git+https://github.com/OWNER/toroids@TAG, the module's tag)"
    ) from None
_package = Path(study.__file__).parent
if LOCAL:
    if _package.resolve() != (SCRIPTS / "toroids").resolve():
        raise WorkflowError(
            f"`toroids` is imported from {_package}, not from this workflow's {SCRIPTS / 'toroids'}: "
            "this process imported another copy of the package first"
        )
else:
    # read from a git host: the installed package must be the module's own, file for file (the same tag),
    # or the jobs would compute with another version of it
    for _file in sorted(_package.rglob("*.py")):
        _name = _file.relative_to(_package.parent).as_posix()
        try:  # (Snakemake's copy of a file from git lacks its last newline)
            _theirs = Path(workflow_file(f"workflow/scripts/{_name}")).read_bytes()
        except WorkflowError:  # a file the module's version does not have
            _theirs = None
        if _theirs is None or _theirs.rstrip() != _file.read_bytes().rstrip():
            raise WorkflowError(
                f"the installed package `toroids` ({_package}) is not this workflow's: its {_name} is "
                "not the module's. Install the module's version: pip install "
                "git+https://github.com/OWNER/toroids@TAG, with the module's tag"
            )
from toroids import datafiles  # noqa: E402
from toroids.figures import (
    FIGURES as FIGURE_MANIFEST,
    figure_index,
    select_all as select_figures,
)  # noqa: E402
from toroids.config import (
    RULE_KINDS,
    ConfigError,
    config_warnings,
    load_schema,
    read_config_file,
    rule_resources,
    validate_config,
    without_operational,
)  # noqa: E402

# The study. Standalone: the --configfile files, or else the default study (then --config KEY=VALUE
# overrides its keys); a study file is complete on its own over the schema's defaults: it is never merged
# over the default study, so it means the same from any folder. As a module of a host workflow: the config
# the host gives it (`module toroids: config: ...`, over which Snakemake skips `configfile`), or else the
# default study.
DEFAULT_STUDY = workflow_file("config/config.yaml")
if workflow.modifier.is_main_snakefile():
    STUDY_FILES = list(workflow.overwrite_configfiles) or [DEFAULT_STUDY]
else:
    STUDY_FILES = [] if config else [DEFAULT_STUDY]
if STUDY_FILES == [DEFAULT_STUDY]:

    configfile: DEFAULT_STUDY


try:
    # Snakemake's reading of a study file keeps the last of a key given twice: refuse it, naming the line
    for _file in STUDY_FILES:
        read_config_file(_file)
    config.update(
        validate_config(
            config, load_schema(workflow_file("config/schema/config.schema.yaml"))
        )
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None
for _warning in config_warnings(config):
    print(f"toroids: warning: {_warning}", file=sys.stderr)
# The study's config files, for the commands the jobs' messages suggest (an environment variable, which the
# jobs inherit, not a param: it changes no result). Set, never read here: envvars (which asserts that the
# user set a variable) does not apply. In a module, the host's files: its command is the one to run again.
os.environ.update(
    TOROIDS_CONFIGFILES=" ".join(str(f) for f in workflow.overwrite_configfiles or ())
)

RESULTS = f"results/{config['study']}"
# the paper's numbers, for the scorecard (toroids.scorecard): a file of the workflow, not of the study
PAPER_NUMBERS = workflow_file("workflow/resources/paper_numbers.csv")


def grown(kind, name, group=None):
    """Resource `name` (mem_mb, runtime) of a network job of `kind` (toroids.config.rule_resources): the
    config's `resources.rules.<kind>` over `resources`, times the attempt, so that a job a cluster killed
    for memory or time is retried (the profile's `retries`) with two, then three times it; the runtime at
    most `resources.max_runtime`, for a job of `group` at most that over the group's size (the profile's
    group-components: a group asks for the sum of its jobs' runtimes, at every attempt).
    """
    settings = getattr(workflow, "group_settings", None)
    size = (
        int(settings.group_components.get(group, 1))
        if settings is not None and group
        else 1
    )
    return lambda wildcards, attempt: rule_resources(config, kind, attempt, size)[name]


# GPUs per network job: the rules declare them so that the same rule runs locally (--resources gpu=N) and
# on a SLURM GPU partition (--gpus); a CPU study declares 0.
GPU = {kind: rule_resources(config, kind)["gpu"] for kind in RULE_KINDS}
MODELS = study.models(config)
MODEL_GROUPS = study.model_groups(config)
TRAIN_BLOCKS = study.train_blocks(config)
MEASURE_BLOCKS = study.measure_blocks(config)
BLOCKS = study.pair_blocks(config)
PAIRS = study.pairs(config)
MIDPOINT_BLOCKS = study.midpoint_blocks(config, PAIRS)
SECTION_PAIRS = study.section_pairs(config, PAIRS)
TRIPLETS = {t.triplet_id: t for t in study.triplets(config)}
EXPERIMENTS = sorted({m.experiment for m in MODELS.values()})
# The data sets (rules/data.smk): each (data set, options) materialized once into one file, read by every
# network job; each torchvision folder found, or downloaded, once before that. By folder: the first data
# set of the study that reads it (MNIST and its parity task share one).
DATA_SETS = study.data_sets(config)
DATA_SOURCES = {}
for _spec in DATA_SETS.values():
    if _spec["name"] in datafiles.TORCHVISION:
        DATA_SOURCES.setdefault(datafiles.source_folder(_spec["name"]), _spec["name"])
# The Hessian trace means nothing for sign networks, and their pair jobs need no normalized checkpoint.
CONTINUOUS = [m for m, p in MODELS.items() if p.arch not in study.BINARY_ARCHS]

# Every paper figure has a rule; the study draws those whose data it has (toroids.figures.select) and the
# figure index says, for every figure, what was drawn and what was left out and why.
FIGURE_SELECTION = select_figures(config)
FIGURES = [
    f"{RESULTS}/figures/{name}.{ext}"
    for name, sel in FIGURE_SELECTION.items()
    if sel.drawn
    for ext in ("pdf", "png")
] + [f"{RESULTS}/figures/index.csv", f"{RESULTS}/config.yaml"]
# the report's pages: the tables a reader reads in the browser (toroids.pages)
PAGES = [
    f"{RESULTS}/figures/index.html",
    f"{RESULTS}/config.html",
    f"{RESULTS}/tables/claims.html",
    f"{RESULTS}/tables/paper_comparison.html",
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
        "triplet_sections",
        "correlations",
        "sharpness",
        "distance_barrier",
        "claims",
        "claim_tests",
        "paper_comparison",
    ]
]


def model_dir(model_id):
    return f"{RESULTS}/models/{model_id}"


def train_plans(group):
    """The training plan of every model of ``group`` (plain data, written to its plan file): what the
    model's weights depend on, and nothing operational (device, data root, chunk size: read by the job).
    """
    return {
        p.model_id: {
            "model_id": p.model_id,
            "experiment": p.experiment,
            "arch": p.arch,
            "dataset": p.dataset,
            "sampler": p.sampler,
            "seed": p.seed,
            "rng_seed": p.rng_seed,
            "model_options": p.model_options,
            "training": p.training,
            "sampler_options": p.sampler_options,
            "data": {"name": p.dataset, "options": p.data_options},
        }
        for p in MODEL_GROUPS[group]
    }


#: the measurement settings of the continuous and of the binary networks (σ*, ε* are the analysis')
MEASURE_KEYS = {
    False: {
        "local_energy": ("sigmas", "n_samples", "seed", "perturb"),
        "sharpness": ("n_probes", "seed", "params"),
    },
    True: {"local_energy": ("flip_fractions", "flip_samples", "seed", "perturb")},
}


def measure_plan(experiment):
    """What the measurements of ``experiment``'s models depend on: its data set and the settings that its
    kind of network (continuous or binary) reads, its own local-energy grid included."""
    first = next(p for p in MODELS.values() if p.experiment == experiment)
    keys = MEASURE_KEYS[first.arch in study.BINARY_ARCHS]
    # the experiment's own σ or ε grid where it sets one (the paper's ranges differ per architecture)
    settings = {
        "local_energy": study.local_energy_settings(config, experiment),
        "sharpness": config["sharpness"],
    }
    return {
        "data": {"name": first.dataset, "options": first.data_options},
        **{
            section: {k: settings[section][k] for k in ks}
            for section, ks in keys.items()
        },
    }


def plan_json(content):
    """A plan file's text: ``content`` as JSON, keys sorted (the same plan always gives the same bytes)."""
    import json

    return json.dumps(content, indent=1, sort_keys=True)


def model_files(model_id, names):
    return [f"{model_dir(model_id)}/{n}" for n in names]


def train_outputs(block):
    """A training block's outputs: every model's weights, record and normalized weights."""
    names = ["final.safetensors", "meta.json", "normalized.safetensors"]
    return [f for m in block.models for f in model_files(m, names)]


def measure_outputs(block):
    out = []
    for m in block.models:
        out += model_files(
            m, ["local_energy.csv"] + (["sharpness.csv"] if m in CONTINUOUS else [])
        )
    return out


def measure_inputs(experiment):
    """Every checkpoint of ``experiment``, whatever the block: the block size must not change the inputs."""
    ids = [m for m, p in MODELS.items() if p.experiment == experiment]
    return {
        "data": data_file(ids[0]),
        "plan": f"{RESULTS}/plans/{experiment}.measure.json",
        "weights": [f"{model_dir(m)}/final.safetensors" for m in ids],
        "meta": [f"{model_dir(m)}/meta.json" for m in ids],
    }


def caption_noise(figure):
    """What the caption of ``figure`` names of each experiment it draws: the noise grid and star of its kind
    (σ for a continuous network, ε for a binary one), and nothing for a figure that draws no local energy,
    so that a changed σ* or grid reruns only the figures that show it."""
    if "local_energy" not in FIGURE_MANIFEST[figure].tables:
        return {}
    binary = {p.experiment: p.arch in study.BINARY_ARCHS for p in MODELS.values()}
    keys = {False: ("sigmas", "sigma_star"), True: ("flip_fractions", "flip_star")}
    return {
        e: {k: study.local_energy_settings(config, e)[k] for k in keys[binary[e]]}
        for slot in FIGURE_SELECTION[figure].slots.values()
        for e in slot
    }


def data_file(model_id):
    """The materialized data set of a model (made by the dataset rule), what its results depend on: an
    input of every network job. Where the original files are (data.root) and whether to download them are operational,
    read by the data rules' jobs (toroids.jobs.operational), so they rerun nothing once the file exists.
    """
    return f"{RESULTS}/data/{MODELS[model_id].data_id}.safetensors"


def data_source_record(data):
    """The record of the torchvision folder data set ``data`` is read from (rule data_files); none for the
    data made in memory (digits, teacher)."""
    name = DATA_SETS[data]["name"]
    if name not in datafiles.TORCHVISION:
        return []
    return [f"{RESULTS}/data/{datafiles.source_folder(name)}.files.json"]


def bn_policy(model_id):
    """evaluate.bn_policy for a network with BatchNorm; for one without, the no-op 'interpolate' (so that
    the setting reruns only the jobs it changes)."""
    has_bn = study.has_batchnorm(MODELS[model_id])
    return config["evaluate"]["bn_policy"] if has_bn else "interpolate"


def canonical(value):
    """``value`` with every dict's keys sorted, recursively: Snakemake compares params by their text, so
    the order in which a study file writes its keys must not make a rerun."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def geometry_settings(model_id):
    """The geometry keys a pair job reads; the random flip orders and their seed (n_orders, pair_seed) only
    for binary networks."""
    keys = ["n_points", "test_along_paths"]
    if model_id not in CONTINUOUS:
        keys += ["n_orders", "pair_seed"]
    return canonical({k: config["geometry"][k] for k in keys})


def midpoint_settings(model_id):
    """The midpoint keys a single-bend job reads: a binary bend trains like the experiment's "S" solutions
    (``study.ModelPlan.solution_training``: the experiment's sgd, with its optimizer, schedule, epochs and
    batch size), a continuous one with the midpoints section's SGD (paper §4.1).
    """
    cfg = config["midpoints"]
    if model_id in CONTINUOUS:
        keys = (
            "variants",
            "epochs",
            "batch_size",
            "lr",
            "momentum",
            "nesterov",
            "seed",
        )
        return canonical({k: cfg[k] for k in keys})
    return canonical(
        {
            "seed": cfg["seed"],
            "binary_midpoints": cfg["binary_midpoints"],
            **MODELS[model_id].solution_training,
        }
    )


def block_pairs(wildcards):
    return [pair_params(p) for p in BLOCKS[wildcards.block]]


def block_models(wildcards):
    return _checkpoints_of(BLOCKS[wildcards.block])


def midpoint_block_models(wildcards):
    return _checkpoints_of(MIDPOINT_BLOCKS[wildcards.block])


def _checkpoints_of(pairs):
    """The raw checkpoints of the pairs' models, and the normalized ones of the continuous models."""
    ids = sorted({m for p in pairs for m in (p.left, p.right)})
    return {
        "data": data_file(pairs[0].left),
        "raw": [f"{model_dir(m)}/final.safetensors" for m in ids],
        "normalized": [
            f"{model_dir(m)}/normalized.safetensors" for m in ids if m in CONTINUOUS
        ],
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
            "data": data_file(p.left),
            "left": f"{model_dir(p.left)}/final.safetensors",
            "right": f"{model_dir(p.right)}/final.safetensors",
            "left_n": f"{model_dir(p.left)}/normalized.safetensors",
            "right_n": f"{model_dir(p.right)}/normalized.safetensors",
        }

    return inputs


def one_of(names):
    """A wildcard constraint matching exactly ``names`` (nothing at all when there are none)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def triplet_inputs(wildcards):
    """The raw checkpoints of the ``triplet`` wildcard's models (a, b, c); for continuous networks also
    their normalized ones (a_n, b_n, c_n), on which the alignment is computed.
    """
    t = TRIPLETS[wildcards.triplet]
    files = {n: f"{model_dir(m)}/final.safetensors" for n, m in zip("abc", t.models)}
    files["data"] = data_file(t.models[0])
    if t.models[0] in CONTINUOUS:
        files |= {
            f"{n}_n": f"{model_dir(m)}/normalized.safetensors"
            for n, m in zip("abc", t.models)
        }
    return files


def triplet_params(wildcards):
    t = TRIPLETS[wildcards.triplet]
    return {
        "triplet": t.triplet_id,
        "experiment": t.experiment,
        "sampler": t.sampler,
        **dict(zip("abc", t.models)),
    }
