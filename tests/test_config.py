"""The config is validated against the schema before anything runs; errors name the key."""

import copy

import pytest

from toroids.config import ConfigError, validate_config
from toroids.samplers import get_sampler


def test_default_config_is_valid_and_gets_defaults(default_config):
    before = copy.deepcopy(default_config)
    cfg = validate_config(default_config)
    assert cfg["evaluate"]["bn_policy"] == "interpolate"
    assert cfg["data"]["download"] is False
    assert cfg["samplers"]["sgd"]["nesterov"] is True
    assert default_config == before  # validation works on a copy


def test_minimal_config_is_completed():
    cfg = validate_config(
        {
            "study": "x",
            "experiments": [{"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0]}],
        }
    )
    assert cfg["training"] == {"epochs": 60, "batch_size": 128, "test_every": 1}
    assert cfg["geometry"]["n_points"] == 21
    assert cfg["local_energy"]["n_samples"] == 100


def _set(cfg, dotted, value):
    node = cfg
    *parents, last = dotted.split(".")
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    node[last] = value
    return cfg


@pytest.mark.parametrize(
    "key, value, expect",
    [
        ("training.epochs", -3, "training.epochs"),
        ("training.epochs", "ten", "training.epochs"),
        ("training.bogus", 1, "training.bogus"),
        ("bogus_top", 1, "bogus_top"),
        ("samplers.sgd.lr", -0.1, "samplers.sgd.lr"),
        ("experiments.0.samplers", ["nope"], "experiments.0.samplers.0"),
        ("experiments.0.dataset", "imagenet", "experiments.0.dataset"),
        ("experiments.0.model.widths", 128, "experiments.0.model.widths"),
        ("local_energy.sigmas", [0.1, -0.2], "local_energy.sigmas.1"),
        ("local_energy.sigma_star", 0.33, "local_energy.sigma_star"),
        ("evaluate.bn_policy", "freeze", "evaluate.bn_policy"),
        ("geometry.pairs", "some", "geometry.pairs"),
        ("device", "tpu", "device"),
    ],
)
def test_bad_value_is_rejected_with_its_key(default_config, key, value, expect):
    with pytest.raises(ConfigError) as err:
        validate_config(_set(default_config, key, value))
    assert f"'{expect}'" in str(err.value)


def test_duplicate_experiment_is_rejected(default_config):
    default_config["experiments"].append(copy.deepcopy(default_config["experiments"][0]))
    n = len(default_config["experiments"]) - 1
    with pytest.raises(ConfigError, match=f"experiments.{n}.*experiments.0"):
        validate_config(default_config)


def test_experiment_override_changes_only_what_it_names(default_config):
    default_config["samplers"] = {"sgd": {"momentum": 0.5}}
    default_config["experiments"][0]["samplers"] = ["sgd"]
    default_config["experiments"][0]["sampler_options"] = {"sgd": {"lr": 0.002}}
    cfg = validate_config(default_config)
    from toroids.study import models

    plan = next(iter(models(cfg).values()))
    named = {k: plan.sampler_options[k] for k in ("lr", "momentum", "nesterov")}
    assert named == {"lr": 0.002, "momentum": 0.5, "nesterov": True}
    assert plan.sampler_options == {**get_sampler("sgd").defaults, **named}


def test_schema_defaults_agree_with_the_samplers():
    """The schema and the sampler classes state each option's default once each: they must agree."""
    from toroids.samplers import SAMPLERS

    minimal = {
        "study": "x",
        "experiments": [{"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0]}],
    }
    cfg = validate_config(minimal)
    assert set(cfg["samplers"]) == set(SAMPLERS)
    for name, cls in SAMPLERS.items():
        expected = {k: list(v) if isinstance(v, tuple) else v for k, v in cls.defaults.items()}
        # every sampler's own epochs: the run's length, which study.sampler_recipe takes out of its options
        assert cfg["samplers"][name] == {**expected, "epochs": None}, name


def test_an_experiments_training_overrides_only_what_it_names():
    """The schema's training defaults fill the global section only: an experiment that sets its epochs
    keeps the global batch size (it got the schema's 128 before)."""
    from toroids.study import models

    cfg = validate_config(
        {
            "study": "x",
            "experiments": [
                {
                    "arch": "mlp",
                    "dataset": "digits",
                    "samplers": ["sgd"],
                    "seeds": [0],
                    "training": {"epochs": 5},
                }
            ],
            "training": {"batch_size": 64, "test_every": 3},
        }
    )
    assert cfg["experiments"][0]["training"] == {"epochs": 5}
    assert models(cfg)["mlp-digits-sgd-s0"].training == {"epochs": 5, "batch_size": 64, "test_every": 3}


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"training": {"epochs": 2.0}}, "'training.epochs': 2.0 is not an integer (write 2)"),
        ({"geometry": {"n_points": 5.5}}, "'geometry.n_points': 5.5 is not an integer"),
        ({"samplers": {"sgd": {"lr": float("nan")}}}, "'samplers.sgd.lr': nan is not a finite number"),
        ({"samplers": {"rsgd": {"gmax": float("inf")}}}, "'samplers.rsgd.gmax': inf is not a finite number"),
        ({"study": ".."}, "'study': '..' does not match"),
        ({"study": "../x"}, "'study': '../x' does not match"),
        ({"local_energy": {"sigmas": [0.0, 0.5, 0.5], "sigma_star": 0.5}}, "'local_energy.sigmas'"),
        ({"local_energy": {"flip_fractions": [0.0, 0.0]}}, "'local_energy.flip_fractions'"),
    ],
    ids=[
        "float epochs",
        "fractional n_points",
        "nan lr",
        "inf gmax",
        "dots",
        "slash",
        "sigma twice",
        "eps twice",
    ],
)
def test_values_the_schema_alone_let_through_are_refused(patch, message):
    cfg = {
        "study": "x",
        "experiments": [{"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0]}],
    }
    with pytest.raises(ConfigError) as err:
        validate_config({**cfg, **patch})
    assert message in str(err.value)


@pytest.mark.parametrize(
    "arch, dataset, model, message",
    [
        ("lenet", "digits", {}, "lenet: 8×8 images are too small for convolution 2 (5×5) (digits)"),
        ("binary_convnet", "teacher", {}, "binary_convnet needs images (C, H, W)"),
        ("vgg16_bn", "teacher", {}, "vgg16_bn needs images"),
        ("resnet", "teacher", {}, "resnet needs images"),
        ("binary_convnet", "digits", {}, "binary_convnet: 8×8 images are too small for convolution 2"),
    ],
)
def test_an_architecture_its_data_cannot_feed_is_refused_before_any_job(arch, dataset, model, message):
    exp = {"arch": arch, "dataset": dataset, "model": model, "samplers": ["sgd"], "seeds": [0]}
    with pytest.raises(ConfigError) as err:
        validate_config({"study": "x", "experiments": [exp]})
    assert f"'experiments.0.arch': {message}" in str(err.value)


@pytest.mark.parametrize(
    "arch, dataset, model",
    [
        ("lenet", "digits", {}),
        ("lenet", "digits", {"padding": 2, "pool": "last"}),
        ("lenet", "mnist", {}),
        ("lenet", "cifar10", {}),
        ("vgg16_bn", "digits", {"width": 0.125}),
        ("binary_convnet", "cifar10", {"fc": [7]}),
        ("binary_convnet", "digits", {"kernel_size": 3, "channels": [4]}),
        ("mlp", "teacher", {}),
    ],
)
def test_the_architecture_check_agrees_with_building_the_network(arch, dataset, model):
    """config.architecture_problem, torch-free, against the real network on a zero input of the shape
    config.input_shape gives (itself checked against the loaders for the offline data sets)."""
    import torch

    from toroids.config import architecture_problem, input_shape
    from toroids.models import build_model

    shape = input_shape(dataset, {"N": 50})
    try:
        build_model(arch, shape, 10, seed=0, **model).eval()(torch.zeros(1, *shape))
        builds = True
    except RuntimeError:
        builds = False
    assert (architecture_problem(arch, model, shape) is None) == builds


def test_the_data_shapes_the_check_assumes_are_the_loaders():
    from toroids.config import input_shape
    from toroids.data import load_dataset

    for name, options in (("digits", {}), ("digits_parity", {}), ("teacher", {"N": 37, "D": 5, "P": 9})):
        assert load_dataset(name, options).input_shape == input_shape(name, options), name


def test_degenerate_settings_are_warned_about():
    from toroids.config import config_warnings

    exp = {"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0]}
    cfg = validate_config({"study": "x", "experiments": [exp], "geometry": {"n_points": 2}})
    assert any("every barrier is the worse endpoint" in w for w in config_warnings(cfg))
    assert config_warnings(validate_config({"study": "x", "experiments": [exp]})) == []


def test_a_yaml_error_names_the_file_and_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "study.yaml"
    bad.write_text("study: x\nexperiments:\n  - arch: mlp\n   dataset: digits\n")
    out = subprocess.run([sys.executable, "-m", "toroids.config", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and f"{bad}:4:4: not valid YAML" in out.stdout
    good = tmp_path / "good.yaml"
    good.write_text("study: x\nexperiments:\n  - {arch: mlp, dataset: digits, samplers: [sgd], seeds: [0]}\n")
    out = subprocess.run([sys.executable, "-m", "toroids.config", str(good)], capture_output=True, text=True)
    assert out.returncode == 0 and "valid (1 experiments" in out.stdout


def _one(**exp):
    return {"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0], **exp}


@pytest.mark.parametrize(
    "experiments, message",
    [
        (
            [_one(name="a-b"), _one(name="a_b")],
            "'a_b' and 'a-b' (experiments.0) differ only in '.', '-' or '_'",
        ),
        ([_one(arch="lenet", dataset="fashion_mnist", model={"fc": [10]})], "lenet takes one width"),
        (
            [_one(arch="binary_convnet", dataset="fashion_mnist", model={"fc": 10})],
            "binary_convnet takes a list of widths",
        ),
        (
            [
                _one(
                    arch="committee",
                    dataset="teacher",
                    samplers=["rsgd"],
                    sampler_options={"rsgd": {"stacked": True}},
                )
            ],
            "rsgd stacked: true cannot run committee",
        ),
        ([_one(seeds=[2**63])], "'experiments.0.seeds.0'"),
    ],
    ids=["rule ids collide", "lenet fc list", "binary_convnet fc int", "stacked binary rsgd", "seed too big"],
)
def test_experiments_the_workflow_cannot_run_are_refused(experiments, message):
    with pytest.raises(ConfigError) as err:
        validate_config({"study": "x", "experiments": experiments})
    assert message in str(err.value)


def test_the_largest_seed_is_accepted():
    validate_config({"study": "x", "experiments": [_one(seeds=[2**63 - 1])]})


def test_a_key_given_twice_or_a_missing_file_is_refused_by_name(tmp_path):
    from toroids.config import read_config_file

    twice = tmp_path / "twice.yaml"
    twice.write_text("study: x\ntraining:\n  epochs: 3\n  epochs: 30\n")
    with pytest.raises(ConfigError, match=r"twice.yaml:4:3: not valid YAML: the key 'epochs' appears twice"):
        read_config_file(twice)
    with pytest.raises(ConfigError, match="nowhere.yaml: cannot be read"):
        read_config_file(tmp_path / "nowhere.yaml")


def test_a_schedule_that_cannot_mean_what_it_says_is_refused_by_name():
    exp = {"arch": "mlp", "dataset": "digits", "samplers": ["sgd", "adv"], "seeds": [0]}
    with pytest.raises(ConfigError, match=r"'samplers.sgd': schedule: step needs lr_milestones or lr_every"):
        validate_config({"study": "s", "experiments": [exp], "samplers": {"sgd": {"schedule": "step"}}})
    odd = {**exp, "sampler_options": {"adv": {"lr_milestones": [10]}}}
    with pytest.raises(ConfigError, match=r"'experiments.0.sampler_options.adv': lr_milestones and lr_every"):
        validate_config({"study": "s", "experiments": [odd]})
    with pytest.raises(ConfigError, match="experiments.0.sampler_options.sgd.epochs"):
        validate_config({"study": "s", "experiments": [{**exp, "sampler_options": {"sgd": {"epochs": 0}}}]})


def test_rsgd_with_adam_needs_its_coupling_cap_off():
    """The cap bounds SGD's step 2ηγ: with Adam the default 1.0 would mean nothing, and is refused by name."""
    exp = {"arch": "mlp", "dataset": "digits", "samplers": ["rsgd"], "seeds": [0]}
    with pytest.raises(ConfigError, match="experiments.0.sampler_options.rsgd.coupling_cap"):
        validate_config({"study": "s", "experiments": [exp], "samplers": {"rsgd": {"optimizer": "adam"}}})
    ok = {**exp, "sampler_options": {"rsgd": {"optimizer": "adam", "coupling_cap": None, "lr": 0.001}}}
    cfg = validate_config({"study": "s", "experiments": [ok]})
    assert cfg["samplers"]["rsgd"]["optimizer"] == "sgd"  # the global default is untouched
