"""The study plan: model ids, pairs, pair types and pair blocks."""

from toroids.config import validate_config
from toroids.study import models, pair_blocks, pairs


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
    assert ms["mlp-digits-sgd-s3"].sampler_options == {"lr": 0.02, "momentum": 0.9, "nesterov": True}


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


def test_first_per_type():
    from toroids.study import first_per_type

    ps = pairs(_cfg(["sgd"], [0, 1, 2, 3]))
    assert first_per_type(ps, 2) == ps[:2]
    assert first_per_type(ps, "all") == ps
    assert first_per_type(ps, 0) == []


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
