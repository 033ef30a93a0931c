"""Independent randomness per model: seeds derived from (experiment, sampler, seed) through sha256, so no
two models of a study (nor two replicas of one RSGD model) share an initialization or a minibatch order,
and the same model trained twice is the same."""

import subprocess
import sys

import torch

from toroids.config import validate_config
from toroids.samplers.base import batch_indices
from toroids.seeds import derive, model_seed
from toroids.study import models
from toroids.train import init_seed, model_factory, n_replicas, train

CPU = torch.device("cpu")


def test_derive_is_sha256_of_the_parts_and_stable_across_processes():
    import hashlib

    digest = hashlib.sha256(b"model\x1fmlp-digits\x1fsgd\x1f0").digest()
    assert model_seed("mlp-digits", "sgd", 0) == int.from_bytes(digest[:8], "big") >> 1
    assert 0 <= derive("x") < 2**63
    # Python's hash() is salted per process; derive must not be
    code = "from toroids.seeds import derive; print(derive('a', 1, 'b'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == derive("a", 1, "b")
    assert derive("a-b") != derive("a", "b") and derive(1, 23) != derive(12, 3)


def test_no_two_models_or_replicas_of_the_default_study_share_an_initialization(default_config):
    plans = models(validate_config(default_config))
    seeds = [p.rng_seed for p in plans.values()]
    assert len(set(seeds)) == len(seeds)
    inits = [init_seed(p.rng_seed, r) for p in plans.values() for r in range(n_replicas(vars(p)))]
    assert len(set(inits)) == len(inits) > len(plans)  # RSGD's replicas too
    orders = {next(iter(batch_indices(100, 100, p.rng_seed, 0))).tolist().__str__() for p in plans.values()}
    assert len(orders) == len(plans)  # first minibatch orders all differ


def test_two_samplers_at_the_same_seed_start_from_different_weights(blobs):
    """One step of lr 1e-12 from train()'s own initialization: the weights are the starting ones."""
    kw = dict(arch="mlp", model_options={"widths": [16]}, data=blobs, epochs=1, batch_size=180, device=CPU,
              log=lambda m: None)  # fmt: skip
    options = {"sgd": {"lr": 1e-12}, "adv": {"lr": 1e-12, "pretrain_epochs": 0}}
    start = {
        s: torch.cat([p.flatten() for p in train(**kw, sampler=s, sampler_options=o,
                                                 seed=model_seed("mlp-blobs", s, 0)).model.parameters()])
        for s, o in options.items()
    }  # fmt: skip
    assert not torch.allclose(start["sgd"], start["adv"], atol=1e-3)
    again = train(**kw, sampler="sgd", sampler_options=options["sgd"], seed=model_seed("mlp-blobs", "sgd", 0))
    assert torch.equal(torch.cat([p.flatten() for p in again.model.parameters()]), start["sgd"])


def test_the_same_model_trained_twice_is_the_same(blobs):
    kw = dict(arch="mlp", model_options={"widths": [16]}, data=blobs, epochs=3, batch_size=32, device=CPU,
              sampler="rsgd", sampler_options={"replicas": 3}, seed=model_seed("e", "rsgd", 1),
              log=lambda m: None)  # fmt: skip
    one, two = train(**kw).model.state_dict(), train(**kw).model.state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_rsgd_replicas_start_apart_and_see_their_own_orders(blobs, monkeypatch):
    """train()'s own factory gives every replica its own initialization, and RSGD draws each replica's
    minibatches from its own stream."""
    from toroids.samplers import get_sampler, rsgd

    seed = model_seed("e", "rsgd", 0)
    factory = model_factory("mlp", {"widths": [8]}, blobs, seed)
    calls = []
    real = rsgd.batch_indices

    def spy(n, batch_size, s, epoch, stream=0, device="cpu"):
        calls.append((s, epoch, stream))
        return real(n, batch_size, s, epoch, stream, device)

    monkeypatch.setattr(rsgd, "batch_indices", spy)
    cls = get_sampler("rsgd")
    sampler = cls(factory, blobs, {"replicas": 3}, epochs=1, batch_size=32, seed=seed, device=CPU)
    rows = sampler.flat
    assert all(not torch.allclose(rows[i], rows[j]) for i in range(3) for j in range(i + 1, 3))
    sampler.train_epoch(0)
    assert calls == [(seed, 0, 0), (seed, 0, 1), (seed, 0, 2)]
    firsts = [next(iter(real(180, 32, seed, 0, stream=a))).tolist() for a in range(3)]
    assert all(firsts[i] != firsts[j] for i in range(3) for j in range(i + 1, 3))
