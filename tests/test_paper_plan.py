"""config/paper.yaml, read as the workflow reads it (the file over the schema's defaults, never merged with
the default study), against the paper's numbers (../shared/paper-digest.md §3, §4, §5; [F] = read off a plot).

Every number below is the digest's, with its paragraph; a later edit of the config that drifts from the
paper fails here, naming the experiment, the sampler and the key. Where the paper states nothing, the
config's choice is not tested as the paper's (the README's Methods names those choices).
"""

import math

import pytest

from tests.conftest import ROOT
from toroids.config import read_config_file, validate_config
from toroids.samplers import get_sampler
from toroids.study import local_energy_settings, models, per_type, sampler_recipe, triplets
from toroids.study import pairs as study_pairs

CONFIG = validate_config(read_config_file(ROOT / "config" / "paper.yaml"))
PLANS = models(CONFIG)
EXPERIMENTS = {p.experiment: p for p in PLANS.values()}


def _options(experiment, sampler):
    plan = next(p for p in PLANS.values() if p.experiment == experiment and p.sampler == sampler)
    return {**get_sampler(sampler).defaults, **plan.sampler_options}, plan.training


def _check(experiment, sampler, expected):
    options, training = _options(experiment, sampler)
    got = {**options, **{f"training.{k}": v for k, v in training.items()}}
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not wrong, f"{experiment} {sampler}: (config, paper) = {wrong}"


# ------------------------------------------------------------------------------- continuous (§5.1, §5.2)

CONTINUOUS = {
    # experiment: (architecture options, σ range of Fig. 1 [F], §3.1)
    "mlp-mnist": ({"widths": [512, 512]}, 0.5),
    "mlp-fashion_mnist": ({"widths": [512, 512]}, 0.5),
    "mlp-cifar10": ({"widths": [512, 512]}, 0.5),
    "lenet-mnist": ({"channels": [20, 50], "kernel_size": 5, "fc": 500}, 0.25),
    "lenet-fashion_mnist": ({"channels": [20, 50], "kernel_size": 5, "fc": 500}, 0.25),
    "lenet-cifar10": ({"channels": [20, 50], "kernel_size": 5, "fc": 500}, 0.25),
    "vgg16_bn-cifar10": ({"width": 1.0}, 0.08),
}
#: §5.1: batch 128, 300 epochs; SGD Nesterov lr 0.02 cosine (0.002 for the MLP on CIFAR-10); RSGD 5 replicas
#: lr 0.05 cosine, γ0 and γ1 automatic; ADV: R = 1, 10 % of the pixels zeroed, random labels only, then
#: vanilla SGD lr 0.02 cosine
CONTINUOUS_SAMPLERS = {
    "sgd": {"optimizer": "sgd", "lr": 0.02, "nesterov": True, "schedule": "cosine"},
    "rsgd": {"optimizer": "sgd", "lr": 0.05, "nesterov": True, "schedule": "cosine", "replicas": 5,
             "gamma0": None, "gamma1": None},
    "adv": {"optimizer": "sgd", "lr": 0.02, "momentum": 0.0, "schedule": "cosine", "R": 1,
            "zero_fraction": None, "include_clean": False},
}  # fmt: skip


@pytest.mark.parametrize("experiment", sorted(CONTINUOUS))
def test_continuous_recipes(experiment):
    arch_options, sigma_max = CONTINUOUS[experiment]
    plan = EXPERIMENTS[experiment]
    assert {k: plan.model_options.get(k) for k in arch_options} == arch_options
    assert "n_train" not in plan.data_options, "the paper trains on the full train sets"
    assert sorted({p.sampler for p in PLANS.values() if p.experiment == experiment}) == ["adv", "rsgd", "sgd"]
    for sampler, expected in CONTINUOUS_SAMPLERS.items():
        lr = 0.002 if (experiment, sampler) == ("mlp-cifar10", "sgd") else expected["lr"]
        recipe = {**expected, "lr": lr, "training.epochs": 300, "training.batch_size": 128}
        _check(experiment, sampler, recipe)
    le = local_energy_settings(CONFIG, experiment)
    # Fig. 1 (ii): δE "at maximal reported noise"; about 10 points (§8.5), 100 draws per σ
    assert max(le["sigmas"]) == le["sigma_star"] == sigma_max and len(le["sigmas"]) >= 9
    assert le["n_samples"] == 100


def test_continuous_adv_zeroes_a_tenth_of_the_pixels():
    """zero_fraction null is 0.1 for a continuous network on images (adv.CONTINUOUS_ZERO_FRACTION)."""
    from toroids.samplers.adv import CONTINUOUS_ZERO_FRACTION

    assert CONTINUOUS_ZERO_FRACTION == 0.1


# ----------------------------------------------------------------------------------------- binary (§5.3)

#: §5.3 (i): batch 100, 200 epochs, SGD without momentum
HMM_RUN = {"training.epochs": 200, "training.batch_size": 100}
HMM = {
    "sgd": {"optimizer": "sgd", "lr": 1.0, "momentum": 0.0, **HMM_RUN},
    "rsgd": {"optimizer": "sgd", "lr": 1.0, "momentum": 0.0, "replicas": 5, "gamma0": 0.002, "gamma1": 0.002,
             "gamma_unit": "epoch", **HMM_RUN},
    "adv": {"pretrain_lr": 10.0, "pretrain_epochs": 500, "pretrain_target": None, "pretrain_momentum": 0.0,
            "lr": 5.0, "momentum": 0.0, "optimizer": "sgd", **HMM_RUN},
}  # fmt: skip
#: §5.3 (ii): BCE, 1000 epochs, SGD without momentum, batch 100, lr 10
PARITY_RUN = {"training.epochs": 1000, "training.batch_size": 100}
PARITY = {
    "sgd": {"optimizer": "sgd", "lr": 10.0, "momentum": 0.0, **PARITY_RUN},
    "rsgd": {"optimizer": "sgd", "lr": 10.0, "momentum": 0.0, "replicas": 5, "gamma0": 0.002, "gamma1": 0.002,
             **PARITY_RUN},
    "adv": {"pretrain_epochs": 1000, "pretrain_target": None, "pretrain_lr": 10.0, "lr": 10.0,
            "momentum": 0.0, "optimizer": "sgd", **PARITY_RUN},
}  # fmt: skip
FMNIST_MLP = {  # §5.3 (iii): SGD and RSGD with Adam lr 0.001; ADV SGD lr 5, 500 + 1000 epochs
    "sgd": {"optimizer": "adam", "lr": 0.001},
    "rsgd": {"optimizer": "adam", "lr": 0.001, "replicas": 5, "gamma0": 0.002, "gamma1": 0.002},
    "adv": {"pretrain_lr": 5.0, "pretrain_epochs": 500, "pretrain_target": None, "pretrain_momentum": 0.0,
            "optimizer": "sgd", "lr": 5.0, "momentum": 0.0, "training.epochs": 1000},
}  # fmt: skip
CONVNET = {  # §5.3 (iv)
    "sgd": {"optimizer": "adam", "lr": 0.005, "schedule": "step", "lr_milestones": [], "lr_every": 50,
            "lr_factor": 0.5, "training.epochs": 400, "training.batch_size": 128},
    "rsgd": {"optimizer": "adam", "lr": 0.005, "schedule": "step", "lr_milestones": [], "lr_every": 50,
             "lr_factor": 0.5, "replicas": 3, "gamma0": 0.001, "gamma1": 0.001, "training.epochs": 300,
             "training.batch_size": 128},
    "adv": {"pretrain_lr": 10.0, "pretrain_epochs": 200, "pretrain_target": None, "pretrain_momentum": 0.0,
            "pretrain_milestones": [], "optimizer": "adam", "lr": 0.01, "schedule": "step",
            "lr_milestones": [10, 20, 50], "lr_every": 50, "lr_factor": 0.5, "training.epochs": 200},
}  # fmt: skip


def _family(arch, dataset):
    return sorted(e for e, p in EXPERIMENTS.items() if (p.arch, p.dataset) == (arch, dataset))


@pytest.mark.parametrize(
    "arch, dataset, recipe",
    [
        ("binary_perceptron", "teacher", HMM),
        ("committee", "teacher", HMM),
        ("binary_mlp", "mnist_parity", PARITY),
        ("binary_mlp", "fashion_mnist", FMNIST_MLP),
        ("binary_convnet", "cifar10", CONVNET),
    ],
)
def test_binary_recipes(arch, dataset, recipe):
    family = _family(arch, dataset)
    assert family, f"no {arch} on {dataset} in config/paper.yaml"
    for experiment in family:
        samplers = {p.sampler for p in PLANS.values() if p.experiment == experiment}
        assert sorted(samplers) == ["adv", "rsgd", "sgd"], experiment
        for sampler, expected in recipe.items():
            _check(experiment, sampler, expected)
        # ADV pre-trains on the randomized labels only (§5.3: no zeroed pixels, no clean copy)
        _check(experiment, "adv", {"R": 1, "zero_fraction": None, "include_clean": False})
        # §4.2: a binary bend starts SGD "with the same parameters as the SGD solutions"
        sgd_training, sgd_options = sampler_recipe(CONFIG, _exp(experiment), "sgd")
        bend = EXPERIMENTS[experiment].solution_training
        assert bend == {"sampler": "sgd", "options": sgd_options, "epochs": sgd_training["epochs"],
                        "batch_size": sgd_training["batch_size"]}  # fmt: skip


def _exp(name):
    return next(e for e in CONFIG["experiments"] if (e.get("name") or f"{e['arch']}-{e['dataset']}") == name)


def _n_params(experiment):
    from toroids.config import input_shape
    from toroids.models import build_model
    from toroids.train import n_params

    plan = EXPERIMENTS[experiment]
    n_classes = 2 if plan.dataset in ("teacher", "mnist_parity") else 10
    net = build_model(plan.arch, input_shape(plan.dataset, plan.data_options), n_classes, seed=0,
                      **plan.model_options)  # fmt: skip
    return n_params(net)


@pytest.mark.parametrize(
    "arch, dataset, low, high",
    [
        ("binary_perceptron", "teacher", 6e3, 2e4),  # Fig. 18 [F]
        ("committee", "teacher", 1e5, 8e5),  # Fig. 6 [F]
        ("binary_mlp", "mnist_parity", 1e5, 4.5e5),  # Fig. 19 [F]
    ],
)
def test_sweeps_have_five_sizes_spanning_the_papers_range(arch, dataset, low, high):
    sizes = sorted(_n_params(e) for e in _family(arch, dataset))
    assert len(sizes) >= 5, sizes
    # the ends within a factor 1.15 of the plot's (read off a log axis), the sizes spread over the range
    assert low / 1.15 <= sizes[0] <= low * 1.15 and high / 1.15 <= sizes[-1] <= high * 1.15, sizes
    gaps = [math.log(b / a) for a, b in zip(sizes, sizes[1:])]
    assert max(gaps) < 0.6 * math.log(sizes[-1] / sizes[0]), sizes


def test_the_shallow_and_parity_nets_are_the_papers():
    assert {k: CONFIG["datasets"]["teacher"][k] for k in ("D", "P")} == {"D": 501, "P": 1503}  # §5.3 (i)
    assert CONFIG["datasets"]["mnist_parity"]["n_train"] == 10000  # §5.3 (ii)
    assert {EXPERIMENTS[e].model_options["hidden"] for e in _family("committee", "teacher")} == {101}
    widths = {tuple(EXPERIMENTS[e].model_options["widths"]) for e in _family("binary_mlp", "mnist_parity")}
    assert {(101, 101), (201, 201), (401, 401)} <= widths  # Figs. 20-22's rows
    parity = _family("binary_mlp", "mnist_parity")
    sectioned = {t.experiment for t in triplets(CONFIG) if t.experiment in parity}
    assert sectioned == {f"binary_mlp-mnist_parity-H{h}" for h in (101, 201, 401)}
    assert EXPERIMENTS["binary_mlp-fashion_mnist"].model_options["widths"] == [1001, 1001, 1001]  # §5.3 (iii)
    conv = EXPERIMENTS["binary_convnet-cifar10"].model_options  # §5.3 (iv)
    assert (conv["channels"], conv["kernel_size"]) == ([20, 50], 5)


@pytest.mark.parametrize(
    "arch, dataset, eps_max, eps_star",
    [
        ("binary_perceptron", "teacher", 0.10, 0.10),  # Fig. 18: ε to 0.10
        ("committee", "teacher", 0.06, 0.053),  # Fig. 6: ε to 0.06, the inset at δ ≈ 0.053 [F]
        ("binary_mlp", "mnist_parity", 0.10, 0.10),  # Fig. 19
        ("binary_mlp", "fashion_mnist", 0.06, 0.06),  # Fig. 7
        ("binary_convnet", "cifar10", 0.06, 0.06),  # Fig. 7
    ],
)
def test_flip_grids(arch, dataset, eps_max, eps_star):
    for experiment in _family(arch, dataset):
        le = local_energy_settings(CONFIG, experiment)
        assert (max(le["flip_fractions"]), le["flip_star"], le["flip_samples"]) == (eps_max, eps_star, 10)


# ------------------------------------------------------------------------------ geometry (§2, §4, §5.1)


def test_pairs_paths_and_bends():
    assert CONFIG["geometry"]["pairs"] == 5  # §5.1: 5 distinct pairs per pair type
    assert CONFIG["geometry"]["n_points"] >= 20  # §8.7: about 20 points per path [F]
    assert CONFIG["geometry"]["n_orders"] == 5  # §5.3: 5 random flip orders
    mid = CONFIG["midpoints"]  # §4.1 and Fig. 10: 300 epochs, batch 128, Nesterov, lr 0.02, cosine
    assert (mid["epochs"], mid["batch_size"], mid["lr"], mid["nesterov"]) == (300, 128, 0.02, True)
    assert mid["pairs_per_type"] == 5
    # every sampler has at least 4 seeds: C(4, 2) = 6 ≥ 5 distinct same-type pairs (§5.1, §8.4)
    for experiment in EXPERIMENTS:
        for sampler in ("rsgd", "sgd", "adv"):
            seeds = [p.seed for p in PLANS.values() if (p.experiment, p.sampler) == (experiment, sampler)]
            assert len(seeds) >= 4, (experiment, sampler, seeds)
    chosen = study_pairs(CONFIG)
    per = {}
    for p in chosen:
        per[(p.experiment, p.pair_type)] = per.get((p.experiment, p.pair_type), 0) + 1
    assert set(per.values()) == {5}, "every pair type of every experiment gets its 5 pairs"
    # single bends where the paper shows them: the continuous nets (Figs. 3, 10) and the deep binary nets
    # (Fig. 7's insets), 3 independent midpoints per binary pair (§4.2); the sweeps' figures have none
    bent = {p.experiment for p in per_type(CONFIG, chosen, "midpoints")}
    sweeps = {e for e, p in EXPERIMENTS.items() if p.arch in ("binary_perceptron", "committee")
              or p.dataset == "mnist_parity"}  # fmt: skip
    assert bent == set(EXPERIMENTS) - sweeps and len(sweeps) == 15
    bends = per_type(CONFIG, chosen, "midpoints")
    assert len(bends) == sum(n for (e, _), n in per.items() if e in bent)  # 5 of every pair type
    assert mid["binary_midpoints"] == 3
