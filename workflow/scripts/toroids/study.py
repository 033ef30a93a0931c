"""The plan of a study, derived from its validated config: models, pairs, pair types, pair blocks and the
triplets of the triplet sections.

Model ids are ``{arch}-{dataset}-{sampler}-s{seed}``. Pairs are formed within one experiment (one
architecture on one data set). A pair's left endpoint is the sampler that comes first in
:data:`SAMPLER_ORDER` (the paper's order, flattest first), so pair types read as in the paper: R-R, R-S,
S-S, R-A, S-A, A-A.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from toroids.seeds import derive, model_seed

__all__ = [
    "ARCH_OPTIONS",
    "BEND_PATHS",
    "BINARY_ARCHS",
    "BINARY_PATHS",
    "PATHS",
    "REPRESENTATIONS",
    "SAMPLER_LETTER",
    "SAMPLER_ORDER",
    "TRIPLET_COLUMNS",
    "ModelBlock",
    "ModelPlan",
    "Pair",
    "Triplet",
    "blocks_of",
    "data_id",
    "data_sets",
    "experiment_name",
    "experiment_scale",
    "flatness_stars",
    "local_energy_settings",
    "has_batchnorm",
    "measure_blocks",
    "midpoint_blocks",
    "model_groups",
    "models",
    "pair_blocks",
    "pairs",
    "per_type",
    "sampler_recipe",
    "section_pairs",
    "spread_per_type",
    "train_blocks",
    "triplets",
]

#: path families between the two endpoints of a pair, and through an optimized midpoint (single bend)
PATHS = ("linear", "linear_aligned", "geodesic_aligned")
BEND_PATHS = tuple(f"{p}_bend" for p in PATHS)  # midpoint.bend_path
#: binary networks: random shortest paths, raw and aligned, straight and through a single bend
BINARY_PATHS = ("random", "random_aligned", "random_bend", "random_aligned_bend")
#: representations in which distances are measured (pairs.representation_distances)
REPRESENTATIONS = ("raw", "aligned", "normalized", "normalized_aligned", "geodesic", "geodesic_aligned")

#: each architecture's keyword options (toroids.models / toroids.binary builders; a test keeps them in sync)
ARCH_OPTIONS = {
    "mlp": ("widths", "bias"),
    "lenet": ("channels", "kernel_size", "padding", "pool", "fc", "bias"),
    "vgg16_bn": ("width",),
    "resnet": ("depth", "planes", "batchnorm"),
    "binary_perceptron": (),
    "committee": ("hidden",),
    "binary_mlp": ("widths", "batchnorm"),
    "binary_convnet": ("channels", "kernel_size", "fc", "batchnorm"),
}

#: architectures whose layers compute with the signs of their weights (toroids.binary)
BINARY_ARCHS = ("binary_perceptron", "committee", "binary_mlp", "binary_convnet")

SAMPLER_ORDER = ("rsgd", "sgd", "adv", "sam", "esgd", "adam")
SAMPLER_LETTER = {"rsgd": "R", "sgd": "S", "adv": "A", "sam": "M", "esgd": "E", "adam": "D"}
_RANK = {s: i for i, s in enumerate(SAMPLER_ORDER)}

#: the columns of a triplet section's CSV and of tables/triplet_sections.csv (the figures read these):
#: representation ∈ {raw, aligned}, kind ∈ {grid, point}, name ∈ {a, b, c} for points (empty for the grid),
#: errors as fractions (empty for points)
TRIPLET_COLUMNS = (
    "triplet", "experiment", "sampler", "a", "b", "c", "representation", "kind", "name", "alpha", "beta",
    "train_error", "test_error",
)  # fmt: skip


@dataclass(frozen=True)
class ModelPlan:
    """Everything a training job needs to know about one model."""

    model_id: str
    experiment: str
    arch: str
    dataset: str
    sampler: str
    #: the config's seed, part of the model id
    seed: int
    model_options: dict[str, Any] = field(hash=False)
    training: dict[str, Any] = field(hash=False)
    sampler_options: dict[str, Any] = field(hash=False)
    data_options: dict[str, Any] = field(hash=False, default_factory=dict)
    #: how the experiment trains its S solutions, whatever this model's sampler (binary single bends are
    #: trained so, paper §4.2): ``{"sampler": "sgd", "options", "epochs", "batch_size"}``
    solution_training: dict[str, Any] = field(hash=False, default_factory=dict)

    @property
    def data_id(self) -> str:
        """The id of the model's materialized data set (:func:`data_id` of its data set and options)."""
        return data_id(self.dataset, self.data_options)

    @property
    def rng_seed(self) -> int:
        """The seed every draw of this model derives from: ``seeds.model_seed(experiment, sampler, seed)``,
        so that no two models of a study share an initialization or a minibatch order."""
        return model_seed(self.experiment, self.sampler, self.seed)


@dataclass(frozen=True)
class ModelBlock:
    """Models whose per-model work one job does: a block of one (experiment, sampler) group for training
    (``group`` = ``{experiment}-{sampler}``, the plan file's name), of one experiment for the measurements."""

    block_id: str
    experiment: str
    group: str
    models: tuple[str, ...]

    @property
    def rule_id(self) -> str:
        """The block id as a Snakemake rule name can carry it (letters, digits, underscores)."""
        return re.sub(r"\W", "_", self.block_id)


@dataclass(frozen=True)
class Pair:
    """An ordered pair of models of one experiment; ``right`` is aligned to ``left``."""

    left: str
    right: str
    pair_type: str
    experiment: str

    @property
    def pair_id(self) -> str:
        return f"{self.left}__{self.right}"


@dataclass(frozen=True)
class Triplet:
    """Three models of one sampler in one experiment, spanning a 2-D section; ``b`` and ``c`` (the second and
    third) are aligned to ``a`` (the first) in the section's aligned representation."""

    experiment: str
    sampler: str
    models: tuple[str, str, str]

    @property
    def triplet_id(self) -> str:
        return f"{self.experiment}-{self.sampler}"


def data_id(name: str, options: dict[str, Any]) -> str:
    """``{name}-{hash}``: the materialized data set of ``name`` with ``options`` (the first 12 hex digits of
    the SHA-256 of its canonical JSON): two experiments with the same data share one file, and an option
    changed gives another."""
    text = json.dumps({"name": name, "options": options}, sort_keys=True)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def data_sets(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The study's data sets, by :func:`data_id`: ``{"name", "options"}``, in config order."""
    return {p.data_id: {"name": p.dataset, "options": p.data_options} for p in models(config).values()}


def experiment_name(exp: dict[str, Any]) -> str:
    """An experiment's name: its ``name`` key, else ``{arch}-{dataset}``; model ids start with it."""
    return exp.get("name") or f"{exp['arch']}-{exp['dataset']}"


def sampler_recipe(
    config: dict[str, Any], exp: dict[str, Any], sampler: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(training, options)`` of ``sampler`` in experiment ``exp``: the global ``samplers.<sampler>`` under
    the experiment's ``sampler_options.<sampler>``, and the global ``training`` under the experiment's,
    whose ``epochs`` the sampler's own ``epochs`` option replaces when it is not null (that option then
    leaves the options: it is the run's length, which the sampler class receives as ``epochs``)."""
    training = {**config["training"], **exp.get("training", {})}
    options = {**config["samplers"].get(sampler, {}), **exp.get("sampler_options", {}).get(sampler, {})}
    epochs = options.pop("epochs", None)
    if epochs is not None:
        training["epochs"] = epochs
    return training, options


def models(config: dict[str, Any]) -> dict[str, ModelPlan]:
    """All models of the study, by id, in config order."""
    out: dict[str, ModelPlan] = {}
    for exp in config["experiments"]:
        name = experiment_name(exp)
        data_options = {**config["datasets"].get(exp["dataset"], {}), **exp.get("data", {})}
        sgd_training, sgd_options = sampler_recipe(config, exp, "sgd")
        solution_training = {
            "sampler": "sgd",
            "options": sgd_options,
            "epochs": sgd_training["epochs"],
            "batch_size": sgd_training["batch_size"],
        }
        for sampler in exp["samplers"]:
            training, options = sampler_recipe(config, exp, sampler)
            for seed in exp["seeds"]:
                mid = f"{name}-{sampler}-s{seed}"
                out[mid] = ModelPlan(
                    model_id=mid,
                    experiment=name,
                    arch=exp["arch"],
                    dataset=exp["dataset"],
                    sampler=sampler,
                    seed=int(seed),
                    model_options=exp.get("model", {}),
                    training=training,
                    sampler_options=options,
                    data_options=data_options,
                    solution_training=solution_training,
                )
    return out


def experiment_scale(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Per experiment, the scale it ran at, read off its models' plans: combination ``{arch}-{dataset}``,
    epochs (an integer, or ``"rsgd 300, sgd 400, adv 200"`` when its samplers train for different numbers
    of epochs; adv's are those of its main phase), batch size, train samples (the ``n_train`` option or the
    teacher's ``P``, else ``"all"``), test samples (``n_test``, else ``"all"``) and seeds per sampler."""
    plans = list(models(config).values())
    rows: dict[str, dict[str, Any]] = {}
    for p in plans:
        if p.experiment in rows:
            continue
        own = [q for q in plans if q.experiment == p.experiment]
        epochs = {q.sampler: int(q.training["epochs"]) for q in own}
        rows[p.experiment] = {
            "experiment": p.experiment,
            "combination": f"{p.arch}-{p.dataset}",
            "epochs": next(iter(epochs.values())) if len(set(epochs.values())) == 1
            else ", ".join(f"{s} {e}" for s, e in epochs.items()),
            "batch_size": int(p.training["batch_size"]),
            "n_train": p.data_options.get("n_train") or p.data_options.get("P") or "all",
            "n_test": p.data_options.get("n_test") or "all",
            "seeds": len({q.seed for q in own}),
        }  # fmt: skip
    return list(rows.values())


def local_energy_settings(config: dict[str, Any], experiment: str) -> dict[str, Any]:
    """The local-energy settings of ``experiment``: the global ``local_energy`` under the experiment's own
    ``local_energy`` (its σ grid and σ*, its ε grid and ε*)."""
    exp = next(e for e in config["experiments"] if experiment_name(e) == experiment)
    return {**config["local_energy"], **exp.get("local_energy", {})}


def flatness_stars(config: dict[str, Any]) -> dict[str, float]:
    """Each model's star, the noise level at which its flatness is compared: its experiment's σ* for a
    continuous network, ε* (the flip fraction) for a binary one; by model id."""
    out = {}
    for mid, plan in models(config).items():
        le = local_energy_settings(config, plan.experiment)
        out[mid] = float(le["flip_star"] if plan.arch in BINARY_ARCHS else le["sigma_star"])
    return out


def has_batchnorm(plan: ModelPlan) -> bool:
    """Whether the model's architecture has BatchNorm layers (VGG16-BN; the ResNet, the binary MLP and
    ConvNet unless ``batchnorm: false``), decided from the plan, without building the network."""
    if plan.arch == "vgg16_bn":
        return True
    with_bn = ("resnet", "binary_mlp", "binary_convnet")
    return plan.arch in with_bn and bool(plan.model_options.get("batchnorm", True))


def model_groups(config: dict[str, Any]) -> dict[str, list[ModelPlan]]:
    """The models of each (experiment, sampler), by group id ``{experiment}-{sampler}``, in config order:
    what one training plan file holds (so that changing one sampler's settings retrains only its models)."""
    out: dict[str, list[ModelPlan]] = {}
    for plan in models(config).values():
        out.setdefault(f"{plan.experiment}-{plan.sampler}", []).append(plan)
    return out


def _cut(group: str, experiment: str, ids: list[str], size: int, suffix: str) -> dict[str, ModelBlock]:
    return {
        f"{group}{suffix}{i // size:03d}": ModelBlock(
            f"{group}{suffix}{i // size:03d}", experiment, group, tuple(ids[i : i + size])
        )
        for i in range(0, len(ids), size)
    }


def train_blocks(config: dict[str, Any]) -> dict[str, ModelBlock]:
    """The training jobs: each group cut into blocks of ``resources.models_per_job`` models,
    ``{group}-b{index:03d}``. A block never spans two groups, so its only input is its group's plan file and
    the block size decides nothing but how many processes do the work."""
    size = int(config["resources"]["models_per_job"])
    out: dict[str, ModelBlock] = {}
    for group, plans in model_groups(config).items():
        out |= _cut(group, plans[0].experiment, [p.model_id for p in plans], size, "-b")
    return out


def measure_blocks(config: dict[str, Any]) -> dict[str, ModelBlock]:
    """The measuring jobs (local energy, Hessian trace): each experiment cut into blocks of
    ``resources.models_per_job`` models, ``{experiment}-m{index:03d}``; their inputs are the experiment's
    measure plan and all of its checkpoints, whatever the block."""
    size = int(config["resources"]["models_per_job"])
    by_exp: dict[str, list[str]] = {}
    for plan in models(config).values():
        by_exp.setdefault(plan.experiment, []).append(plan.model_id)
    out: dict[str, ModelBlock] = {}
    for exp, ids in by_exp.items():
        out |= _cut(exp, exp, ids, size, "-m")
    return out


def _pair_type(a: ModelPlan, b: ModelPlan) -> str:
    return f"{SAMPLER_LETTER[a.sampler]}-{SAMPLER_LETTER[b.sampler]}"


def pairs(config: dict[str, Any]) -> list[Pair]:
    """The pairs of the study: every pair within each experiment, or ``geometry.pairs`` = k per pair type.

    The k pairs of a type are a seeded random choice, from ``derive("pairs", geometry.pair_seed, experiment,
    pair type)``: reproducible, and independent of the other experiments and types.
    """
    plans = models(config)
    by_exp: dict[str, list[ModelPlan]] = {}
    for plan in plans.values():
        by_exp.setdefault(plan.experiment, []).append(plan)
    chosen: list[Pair] = []
    k = config["geometry"]["pairs"]
    for exp, members in by_exp.items():
        typed: dict[str, list[Pair]] = {}
        for a, b in itertools.combinations(members, 2):
            if (_RANK[b.sampler], b.seed) < (_RANK[a.sampler], a.seed):
                a, b = b, a
            typed.setdefault(_pair_type(a, b), []).append(Pair(a.model_id, b.model_id, _pair_type(a, b), exp))
        for ptype in sorted(typed, key=lambda t: [_RANK[s] for s in _samplers_of(t)]):
            group = typed[ptype]
            # a generator per (experiment, pair type): a seed added to one experiment changes no other choice
            rng = random.Random(derive("pairs", config["geometry"]["pair_seed"], exp, ptype))
            chosen += group if k == "all" else sorted(rng.sample(group, min(k, len(group))), key=group.index)
    return chosen


def _samplers_of(pair_type: str) -> list[str]:
    inverse = {v: k for k, v in SAMPLER_LETTER.items()}
    return [inverse[c] for c in pair_type.split("-")]


def pair_blocks(config: dict[str, Any]) -> dict[str, list[Pair]]:
    """Pairs grouped into jobs of ``geometry.block_size``: ``{experiment}-b{index:03d} -> pairs``."""
    return blocks_of(pairs(config), config["geometry"]["block_size"], "b")


def blocks_of(some: list[Pair], size: int, tag: str) -> dict[str, list[Pair]]:
    """``some`` pairs cut into jobs of ``size`` within each experiment: ``{experiment}-{tag}{index:03d}``;
    a job of one pair is named by the pair (so that adding pairs renames no existing job)."""
    if size == 1:
        return {p.pair_id: [p] for p in some}
    blocks: dict[str, list[Pair]] = {}
    by_exp: dict[str, list[Pair]] = {}
    for p in some:
        by_exp.setdefault(p.experiment, []).append(p)
    for exp, group in by_exp.items():
        for i in range(0, len(group), size):
            blocks[f"{exp}-{tag}{i // size:03d}"] = group[i : i + size]
    return blocks


def midpoint_blocks(config: dict[str, Any], all_pairs: list[Pair] | None = None) -> dict[str, list[Pair]]:
    """The single-bend jobs: the pairs of :func:`per_type` for ``midpoints``, cut into jobs of
    ``midpoints.pairs_per_job`` (:func:`blocks_of`, tag ``mid``); ``all_pairs`` defaults to :func:`pairs`."""
    chosen = per_type(config, pairs(config) if all_pairs is None else all_pairs, "midpoints")
    return blocks_of(chosen, config["midpoints"]["pairs_per_job"], "mid")


def section_pairs(config: dict[str, Any], all_pairs: list[Pair] | None = None) -> dict[str, Pair]:
    """The 2-D sections, one job per pair: the pairs of :func:`per_type` for ``sections``, by pair id."""
    chosen = per_type(config, pairs(config) if all_pairs is None else all_pairs, "sections")
    return {p.pair_id: p for p in chosen}


def spread_per_type(all_pairs: list[Pair], k: int | str) -> list[Pair]:
    """``k`` pairs of each (experiment, pair type) that share as few models as possible, or all of them for
    ``k = 'all'``; in the order of ``all_pairs``.

    Greedy: the next pair is the first of its group whose two endpoints have been used least so far (by
    the pairs already chosen in that group). Taking the first k pairs instead would, with all pairs of
    5 seeds listed in order, give (s0, s1), (s0, s2), (s0, s3), (s0, s4): four pairs resting on one model.
    """
    if k == "all":
        return list(all_pairs)
    groups: dict[tuple[str, str], list[Pair]] = {}
    for p in all_pairs:
        groups.setdefault((p.experiment, p.pair_type), []).append(p)
    chosen: set[Pair] = set()
    for group in groups.values():
        used: dict[str, int] = {}
        left = list(group)
        for _ in range(min(int(k), len(group))):
            best = min(left, key=lambda p: used.get(p.left, 0) + used.get(p.right, 0))
            left.remove(best)
            chosen.add(best)
            for m in (best.left, best.right):
                used[m] = used.get(m, 0) + 1
    return [p for p in all_pairs if p in chosen]


def per_type(config: dict[str, Any], all_pairs: list[Pair], section: str) -> list[Pair]:
    """The pairs of ``section`` (``midpoints`` or ``sections``): its global ``pairs_per_type``, overridden per
    experiment by that experiment's ``{section}_pairs_per_type``, chosen by :func:`spread_per_type`."""
    default = config[section]["pairs_per_type"]
    override = {
        experiment_name(e): e[f"{section}_pairs_per_type"]
        for e in config["experiments"]
        if f"{section}_pairs_per_type" in e
    }
    out = []
    for exp in dict.fromkeys(p.experiment for p in all_pairs):
        group = [p for p in all_pairs if p.experiment == exp]
        out += spread_per_type(group, override.get(exp, default))
    return out


def triplets(config: dict[str, Any]) -> list[Triplet]:
    """The triplet sections of the study: for each experiment with ``triplet_sections``, one triplet per
    sampler (in :data:`SAMPLER_ORDER`) made of its first three seeds, in the order the config lists them."""
    plans = models(config)
    out = []
    for exp in config["experiments"]:
        if not exp.get("triplet_sections"):
            continue
        name = experiment_name(exp)
        for sampler in sorted(exp["samplers"], key=_RANK.__getitem__):
            ids = [p.model_id for p in plans.values() if p.experiment == name and p.sampler == sampler]
            if len(ids) < 3:
                raise ValueError(
                    f"experiment {name}: triplet_sections needs 3 seeds, {sampler} has {len(ids)}"
                )
            out.append(Triplet(name, sampler, (ids[0], ids[1], ids[2])))
    return out
