"""The config is validated against the schema before anything runs; errors name the key."""

import copy

import pytest

from toroids.config import ConfigError, validate_config


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
    assert plan.sampler_options == {"lr": 0.002, "momentum": 0.5, "nesterov": True}


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
        assert cfg["samplers"][name] == expected, name


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
