"""The study plan: model ids, pairs, pair types and pair blocks."""

import pytest

from toroids.config import ConfigError, validate_config
from toroids.study import experiment_scale, models, pair_blocks, pairs


def _cfg(samplers, seeds, **geometry):
    return validate_config(
        {
            "study": "t",
            "experiments": [{"arch": "mlp", "dataset": "digits", "samplers": samplers, "seeds": seeds}],
            "geometry": geometry,
        }
    )


def test_model_ids_and_options():
    cfg = _cfg(["sgd"], [0, 3])
    ms = models(cfg)
    assert list(ms) == ["mlp-digits-sgd-s0", "mlp-digits-sgd-s3"]
    assert ms["mlp-digits-sgd-s3"].seed == 3
    assert ms["mlp-digits-sgd-s3"].sampler_options == {
        "lr": 0.02, "momentum": 0.9, "nesterov": True, "optimizer": "sgd", "betas": [0.9, 0.999], "eps": 1e-8,
        "schedule": "cosine", "lr_milestones": [], "lr_every": None, "lr_factor": 0.5,
    }  # fmt: skip


def test_a_samplers_own_epochs_replace_the_experiments():
    """The binary ConvNet's recipe (digest §5.3 (iv)): SGD 400 epochs, RSGD 300, ADV's main phase 200.
    The option leaves the sampler's options for the plan's training settings; the single bends train as
    the S solutions (the experiment's sgd, its epochs and batch size) whatever the model's sampler."""
    exp = {
        "arch": "mlp", "dataset": "digits", "samplers": ["rsgd", "sgd", "adv"], "seeds": [0],
        "training": {"epochs": 400, "batch_size": 128},
        "sampler_options": {"rsgd": {"epochs": 300}, "adv": {"epochs": 200}, "sgd": {"optimizer": "adam"}},
    }  # fmt: skip
    ms = models(validate_config({"study": "t", "experiments": [exp], "training": {"epochs": 7}}))
    epochs = {p.sampler: p.training["epochs"] for p in ms.values()}
    assert epochs == {"rsgd": 300, "sgd": 400, "adv": 200}
    assert all("epochs" not in p.sampler_options for p in ms.values())
    bend = ms["mlp-digits-rsgd-s0"].solution_training
    assert (bend["sampler"], bend["epochs"], bend["batch_size"]) == ("sgd", 400, 128)
    assert bend["options"]["optimizer"] == "adam" and "epochs" not in bend["options"]
    (scale,) = experiment_scale(validate_config({"study": "t", "experiments": [exp]}))
    assert scale["epochs"] == "rsgd 300, sgd 400, adv 200"
    exp["sampler_options"] = {}
    assert experiment_scale(validate_config({"study": "t", "experiments": [exp]}))[0]["epochs"] == 400


def test_all_pairs_and_blocks():
    cfg = _cfg(["sgd"], [0, 1, 2, 3], block_size=4)
    ps = pairs(cfg)
    assert len(ps) == 6 and {p.pair_type for p in ps} == {"S-S"}
    assert all(p.left < p.right for p in ps)
    blocks = pair_blocks(cfg)
    assert list(blocks) == ["mlp-digits-b000", "mlp-digits-b001"]
    assert [len(b) for b in blocks.values()] == [4, 2]
    assert sum(blocks.values(), []) == ps


def test_k_pairs_per_type_is_seeded():
    a = pairs(_cfg(["sgd"], list(range(6)), pairs=3, pair_seed=1))
    b = pairs(_cfg(["sgd"], list(range(6)), pairs=3, pair_seed=1))
    c = pairs(_cfg(["sgd"], list(range(6)), pairs=3, pair_seed=2))
    assert a == b and len(a) == 3
    assert a != c


def test_spread_per_type_takes_pairs_that_share_few_models():
    from toroids.study import spread_per_type

    ps = pairs(_cfg(["sgd"], [0, 1, 2, 3, 4]))
    ends = [(p.left[-2:], p.right[-2:]) for p in spread_per_type(ps, 4)]
    # greedy on endpoint use: two disjoint pairs, then s4 with the first of s0..s3, then the next unused
    assert ends == [("s0", "s1"), ("s0", "s4"), ("s1", "s2"), ("s2", "s3")]
    assert spread_per_type(ps, 2) == [ps[0], ps[7]]  # (s0, s1) and (s2, s3): no model shared
    assert spread_per_type(ps, "all") == ps
    assert spread_per_type(ps, 0) == []


def test_per_experiment_pairs_per_type():
    from toroids.study import per_type

    cfg = validate_config(
        {
            "study": "t",
            "experiments": [
                {"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0, 1, 2]},
                {
                    "arch": "committee",
                    "dataset": "teacher",
                    "samplers": ["sgd"],
                    "seeds": [0, 1, 2],
                    "midpoints_pairs_per_type": 0,
                },
            ],
            "midpoints": {"pairs_per_type": 2},
        }
    )
    chosen = per_type(cfg, pairs(cfg), "midpoints")
    assert [p.experiment for p in chosen] == ["mlp-digits", "mlp-digits"]


def test_default_study_is_big_enough_to_mean_something(default_config):
    """The fair test's sizes: ≥ 5 seeds per sampler of the continuous experiment (10 same-type pairs), every
    pair in the path statistics, ≥ 4 single bends per pair type, ≥ 4 seeds per sampler in the binary sweep
    (stats.min_models: fewer decide nothing)."""
    from toroids.study import BINARY_ARCHS, per_type

    cfg = validate_config(default_config)
    ps = pairs(cfg)
    for exp in cfg["experiments"]:
        binary = exp["arch"] in BINARY_ARCHS
        assert len(exp["seeds"]) >= (4 if binary else 5), exp.get("name", exp["arch"])
        if not binary:
            assert set(exp["samplers"]) >= {"rsgd", "sgd", "adv"}
            types = {}
            for p in ps:
                if p.experiment == "mlp-digits":
                    types[p.pair_type] = types.get(p.pair_type, 0) + 1
            assert min(types.values()) >= 10 and len(types) == 6
            bends = [p for p in per_type(cfg, ps, "midpoints") if p.experiment == "mlp-digits"]
            assert {t: sum(p.pair_type == t for p in bends) for t in types} == dict.fromkeys(types, 4)


def test_model_blocks_cut_groups_and_experiments_and_cover_every_model(default_config):
    from toroids.study import measure_blocks, model_groups, train_blocks

    for size in (1, 2, 15):
        cfg = validate_config({**default_config, "resources": {"models_per_job": size}})
        ms, groups = models(cfg), model_groups(cfg)
        train, measure = train_blocks(cfg), measure_blocks(cfg)
        for blocks in (train, measure):
            ids = [m for b in blocks.values() for m in b.models]
            assert sorted(ids) == sorted(ms) and all(len(b.models) <= size for b in blocks.values())
        for b in train.values():  # a training block never spans two groups: one plan file
            assert b.models == tuple(m for m in b.models if m in {p.model_id for p in groups[b.group]})
            assert {ms[m].sampler for m in b.models} == {b.group.rsplit("-", 1)[1]}
        for b in measure.values():
            assert {ms[m].experiment for m in b.models} == {b.experiment}
    cfg = validate_config({**default_config, "resources": {"models_per_job": 15}})
    assert len(train_blocks(cfg)) == 21 and len(measure_blocks(cfg)) == 7
    assert train_blocks(cfg)["mlp-digits-adv-b000"].rule_id == "mlp_digits_adv_b000"


def test_the_star_rows_are_marked_by_each_networks_own_noise():
    import pandas as pd

    from toroids.tables import mark_star

    le = pd.DataFrame(
        {
            "model_id": ["a", "a", "b", "b"],
            "sigma": [0.0, 0.5, 0.0, 0.05],
            "noise": ["multiplicative"] * 2 + ["flips"] * 2,
        }
    )
    assert mark_star(le, {"a": 0.5, "b": 0.05})["is_star"].tolist() == [False, True, False, True]
    assert mark_star(le, {"a": 0.0, "b": 0.0})["is_star"].tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match=r"no σ\* or ε\* for \['b'\]"):
        mark_star(le, {"a": 0.5})


def test_each_experiment_measures_on_its_own_grid_and_compares_at_its_own_star():
    """The paper's σ ranges differ per architecture (digest §3.1): an experiment's local_energy overrides
    the global grid and σ*, and its models' stars follow; a binary model's star is its experiment's ε*."""
    from toroids.study import flatness_stars, local_energy_settings

    exps = [
        {"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0]},
        {"arch": "lenet", "dataset": "digits", "samplers": ["sgd"], "seeds": [0], "model": {"channels": [2],
         "kernel_size": 3, "fc": 4}, "local_energy": {"sigmas": [0.0, 0.125, 0.25], "sigma_star": 0.25}},
        {"arch": "committee", "dataset": "teacher", "samplers": ["sgd"], "seeds": [0], "model": {"hidden": 3},
         "local_energy": {"flip_fractions": [0.0, 0.03], "flip_star": 0.03}},
    ]  # fmt: skip
    cfg = validate_config({"study": "t", "experiments": exps})
    assert local_energy_settings(cfg, "lenet-digits")["sigmas"] == [0.0, 0.125, 0.25]
    assert local_energy_settings(cfg, "mlp-digits")["sigmas"] == cfg["local_energy"]["sigmas"]
    assert flatness_stars(cfg) == {"mlp-digits-sgd-s0": 0.5, "lenet-digits-sgd-s0": 0.25,
                                   "committee-teacher-sgd-s0": 0.03}  # fmt: skip
    exps[1]["local_energy"]["sigma_star"] = 0.5  # not on its own grid, though on the global one
    with pytest.raises(ConfigError, match="'experiments.1.local_energy.sigma_star': 0.5 is not one of"):
        validate_config({"study": "t", "experiments": exps})
