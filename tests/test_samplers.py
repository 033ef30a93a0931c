"""The solution samplers: reductions to SGD, the RSGD coupling and γ0, ADV's confusion set, BatchNorm policy,
convergence on a separable problem, divergence, and bitwise resume."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from toroids.checkpoint import load_state
from toroids.data import Dataset
from toroids.models import Network, build_model
from toroids.samplers import SAMPLERS, TrainingDiverged, get_sampler
from toroids.samplers.base import batch_indices
from toroids.schedules import cosine_lr
from toroids.train import train

CPU = torch.device("cpu")
QUIET = dict(log=lambda m: None)
TRAIN_KW = dict(arch="mlp", model_options={"widths": [16]}, batch_size=32, seed=4, device=CPU)


def mlp_factory(widths=(16,), d=10, classes=4):
    return lambda replica: build_model("mlp", (d,), classes, seed=100 + replica, widths=list(widths))


def bn_factory(replica):
    """A small MLP with BatchNorm (the registry's only BN net, VGG16, needs images)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(200 + replica)
        return Network(
            nn.Flatten(),
            nn.Linear(10, 16),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.Linear(16, 4),
            input_shape=(10,),
            spec={},
        )


def make(name, factory, data, options=None, epochs=3, batch_size=32, seed=0):
    cls = get_sampler(name)
    return cls(factory, data, options or {}, epochs=epochs, batch_size=batch_size, seed=seed, device=CPU)


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_same(a, b, atol=0.0):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if atol == 0.0:
            assert torch.equal(x, y), (x - y).abs().max()
        else:
            torch.testing.assert_close(x, y, atol=atol, rtol=0)


# ------------------------------------------------------------------------------------------- registry


def test_registry_and_options():
    assert set(SAMPLERS) == {"sgd", "rsgd", "adv", "sam", "esgd", "adam"}
    for name, cls in SAMPLERS.items():
        assert cls.defaults, name
        assert cls.total_epochs(7, {}) >= 7
    assert SAMPLERS["adv"].total_epochs(7, {"pretrain_epochs": 3}) == 10
    assert SAMPLERS["adv"].total_epochs(7, {}) == 357  # at most Liu et al.'s 350 pre-training epochs
    with pytest.raises(ValueError, match="unknown options"):
        SAMPLERS["rsgd"](mlp_factory(), None, {"nope": 1}, epochs=1, batch_size=1, seed=0, device=CPU)


# ------------------------------------------------------------------------------------- SAM, Adam, SGD


@pytest.mark.parametrize("factory", [mlp_factory(), bn_factory], ids=["mlp", "bn"])
def test_sam_with_rho_zero_is_sgd_step_by_step(blobs, factory):
    # batch 180 = the whole set: one step per epoch, so "after epoch k" is "after k steps"
    for batch_size in (180, 32):
        sgd = make("sgd", factory, blobs, {"lr": 0.05}, epochs=4, batch_size=batch_size)
        sam = make("sam", factory, blobs, {"lr": 0.05, "rho": 0.0}, epochs=4, batch_size=batch_size)
        for e in range(4):
            sgd.train_epoch(e)
            sam.train_epoch(e)
            assert_same(params(sgd.model), params(sam.model))
            assert_same(list(sgd.model.buffers()), list(sam.model.buffers()))


def test_sam_step_by_hand(blobs):
    """One full-batch step without momentum: w ← w − η ∇L(w + ρ g/‖g‖), g = ∇L(w); w itself restored."""
    rho, lr = 0.1, 0.5
    net = mlp_factory()(0)
    x, y = blobs.x_train, blobs.y_train
    w = params(net)
    g = torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters()))
    norm = torch.sqrt(sum((t**2).sum() for t in g))
    with torch.no_grad():
        for p, t in zip(net.parameters(), g):
            p.add_(rho * t / norm)
    g2 = torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters()))
    expected = [a - lr * b for a, b in zip(w, g2)]
    sam = make("sam", mlp_factory(), blobs, {"lr": lr, "momentum": 0.0, "rho": rho}, batch_size=180)
    sam.train_epoch(0)
    assert_same(params(sam.model), expected, atol=1e-6)


def test_sam_updates_batchnorm_statistics_once_per_step(blobs):
    sam = make("sam", bn_factory, blobs, {"rho": 0.5}, batch_size=180)
    ref = bn_factory(0).train()
    ref(blobs.x_train)  # one forward at the initial weights: what the running stats must be after one step
    sam.train_epoch(0)
    bn, bn_ref = sam.model[2], ref[2]
    assert int(bn.num_batches_tracked) == 1
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var, atol=1e-6, rtol=0)
    assert bn.track_running_stats  # restored after the perturbed pass


def test_adam_is_torch_adam_with_cosine_lr(blobs):
    adam = make("adam", mlp_factory(), blobs, {"lr": 0.01}, epochs=2, batch_size=180)
    net = mlp_factory()(0)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for e in range(2):
        adam.train_epoch(e)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(0.01, e, 2)
        idx = next(iter(batch_indices(180, 180, 0, e)))
        opt.zero_grad()
        F.cross_entropy(net(blobs.x_train[idx]), blobs.y_train[idx]).backward()
        opt.step()
        assert_same(params(adam.model), params(net))


def test_sgd_with_adam_is_the_adam_sampler(blobs):
    """The paper's Adam-trained "SGD" (sgd, optimizer adam) is the adam sampler step by step, schedule too."""
    opts = {"lr": 0.01, "schedule": "step", "lr_every": 1}
    sgd = make("sgd", mlp_factory(), blobs, {**opts, "optimizer": "adam"}, epochs=3)
    adam = make("adam", mlp_factory(), blobs, opts, epochs=3)
    assert isinstance(sgd.opt, torch.optim.Adam)
    for e in range(3):
        sgd.train_epoch(e)
        adam.train_epoch(e)
        assert sgd.opt.param_groups[0]["lr"] == adam.opt.param_groups[0]["lr"] == 0.01 * 0.5**e
        assert_same(params(sgd.model), params(adam.model))


def test_the_record_names_only_the_chosen_optimizers_settings(blobs):
    adam = make("sgd", mlp_factory(), blobs, {"optimizer": "adam"}).resolved_options()
    assert {"betas", "eps"} <= set(adam) and not {"momentum", "nesterov"} & set(adam)
    sgd = make("rsgd", mlp_factory(), blobs, {"replicas": 2}).resolved_options()
    assert {"momentum", "nesterov", "gamma0"} <= set(sgd) and not {"betas", "eps"} & set(sgd)


def test_schedule_options_are_checked_where_the_sampler_is_built(blobs):
    with pytest.raises(ValueError, match="schedule: step needs lr_milestones or lr_every"):
        make("sgd", mlp_factory(), blobs, {"schedule": "step"})
    with pytest.raises(ValueError, match="read only by schedule: step"):
        make("rsgd", mlp_factory(), blobs, {"lr_milestones": [3]})


# ---------------------------------------------------------------------------------------------- RSGD


def test_rsgd_one_replica_without_coupling_is_sgd(blobs):
    opts = {"lr": 0.05, "momentum": 0.9, "nesterov": True}
    sgd = make("sgd", mlp_factory(), blobs, opts, epochs=4)
    rsgd = make("rsgd", mlp_factory(), blobs, {**opts, "replicas": 1, "gamma0": 0.0}, epochs=4)
    for e in range(4):
        sgd.train_epoch(e)
        rsgd.train_epoch(e)
        assert_same(params(sgd.model), params(rsgd.replicas[0]))
        assert_same(params(sgd.model), params(rsgd.solution()))


def test_rsgd_step_is_data_gradient_plus_elastic_term(blobs):
    """w_a ← w_a − η (∇L(w_a; B_a) + 2γ (w_a − w̄)), w̄ the replica mean, momentum 0, one full-batch step."""
    gamma, lr, y = 0.3, 0.2, 3
    opts = {"replicas": y, "gamma0": gamma, "gamma1": 0.0, "lr": lr, "momentum": 0.0}
    rsgd = make("rsgd", mlp_factory(), blobs, opts, batch_size=180)
    nets = [mlp_factory()(a) for a in range(y)]
    ws = [torch.cat([p.detach().flatten() for p in n.parameters()]) for n in nets]
    center = torch.stack(ws).mean(0)
    expected = []
    for n, w in zip(nets, ws):
        g = torch.autograd.grad(F.cross_entropy(n(blobs.x_train), blobs.y_train), list(n.parameters()))
        expected.append(w - lr * (torch.cat([t.flatten() for t in g]) + 2 * gamma * (w - center)))
    rsgd.train_epoch(0)
    torch.testing.assert_close(rsgd.flat, torch.stack(expected), atol=1e-6, rtol=0)


def test_rsgd_with_adam_one_replica_without_coupling_is_adam(blobs):
    opts = {"lr": 0.01}
    adam = make("adam", mlp_factory(), blobs, opts, epochs=3)
    one = {**opts, "optimizer": "adam", "coupling_cap": None, "replicas": 1, "gamma0": 0.0}
    rsgd = make("rsgd", mlp_factory(), blobs, one, epochs=3)
    for e in range(3):
        adam.train_epoch(e)
        rsgd.train_epoch(e)
        assert_same(params(adam.model), params(rsgd.replicas[0]), atol=1e-6)


def test_rsgd_with_adam_steps_each_replica_on_its_gradient_plus_the_coupling(blobs):
    """Two full-batch steps: every replica is torch's Adam on ∇L(w_a) + 2γ (w_a − w̄), its own moments."""
    gamma, lr, y = 0.3, 0.01, 3
    opts = {"replicas": y, "gamma0": gamma, "gamma1": 0.0, "lr": lr, "optimizer": "adam"}
    opts["coupling_cap"] = None
    rsgd = make("rsgd", mlp_factory(), blobs, opts, batch_size=180, epochs=2)
    nets = [mlp_factory()(a) for a in range(y)]
    rows = [torch.nn.Parameter(torch.cat([p.detach().flatten() for p in n.parameters()])) for n in nets]
    opt = torch.optim.Adam(rows, lr=lr)  # one parameter per replica: its own moments
    names = [(k, v.shape) for k, v in nets[0].named_parameters()]

    def unflat(w):
        out, i = {}, 0
        for k, shape in names:
            n = shape.numel()
            out[k] = w[i : i + n].view(shape)
            i += n
        return out

    for e in range(2):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(lr, e, 2)
        center = torch.stack([r.detach() for r in rows]).mean(0)
        for a, r in enumerate(rows):
            loss = F.cross_entropy(functional_call(nets[a], unflat(r), (blobs.x_train,)), blobs.y_train)
            (g,) = torch.autograd.grad(loss, [r])
            r.grad = g + 2 * gamma * (r.detach() - center)
        opt.step()
        rsgd.train_epoch(e)
        torch.testing.assert_close(rsgd.flat, torch.stack([r.detach() for r in rows]), atol=1e-6, rtol=0)


def test_rsgd_with_adam_refuses_a_coupling_cap(blobs):
    with pytest.raises(ValueError, match="coupling_cap: null with optimizer: adam"):
        make("rsgd", mlp_factory(), blobs, {"optimizer": "adam", "coupling_cap": 1.0})


def test_rsgd_with_adam_resumes_its_moments(blobs):
    opts = {"replicas": 2, "optimizer": "adam", "coupling_cap": None, "lr": 0.01}
    s1 = make("rsgd", mlp_factory(), blobs, opts, epochs=3)
    s1.train_epoch(0)
    state = {k: v.clone() for k, v in s1.state().items()}
    s2 = make("rsgd", mlp_factory(), blobs, opts, epochs=3)
    s2.load_state(state)
    for e in (1, 2):
        s1.train_epoch(e)
        s2.train_epoch(e)
    assert torch.equal(s1.flat, s2.flat)


def test_rsgd_automatic_gamma0_by_hand():
    """Replicas w_a = (a, −a) of a 1→2 linear net, one sample x = 1 of class 0: logits (a, −a), so
    L_a = log(1 + e^(−2a)); centre (1, −1), squared distances 2, 0, 2 → mean 4/3."""

    def factory(replica):
        net = Network(nn.Flatten(), nn.Linear(1, 2, bias=False), input_shape=(1,), spec={})
        with torch.no_grad():
            net[1].weight.copy_(torch.tensor([[float(replica)], [-float(replica)]]))
        return net

    x, y = torch.ones(1, 1), torch.zeros(1, dtype=torch.int64)
    data = Dataset("tiny", x, y, x, y, 2)
    rsgd = make("rsgd", factory, data, {"replicas": 3}, epochs=10, batch_size=1)
    mean_loss = (math.log(2) + math.log1p(math.exp(-2)) + math.log1p(math.exp(-4))) / 3
    assert rsgd.gamma0 == pytest.approx(mean_loss / (4 / 3), rel=1e-6)
    assert rsgd.gamma1 == pytest.approx(1e4 ** (1 / 10) - 1, rel=1e-12)
    assert rsgd.resolved_options()["gamma0"] == rsgd.gamma0


def test_rsgd_automatic_gamma0_matches_an_independent_computation(blobs):
    rsgd = make("rsgd", mlp_factory(), blobs, {"replicas": 4})
    nets = [mlp_factory()(a).eval() for a in range(4)]
    with torch.no_grad():
        loss = sum(float(F.cross_entropy(n(blobs.x_train), blobs.y_train)) for n in nets) / 4
        ws = torch.stack([torch.cat([p.flatten() for p in n.parameters()]) for n in nets])
        dist = float(((ws - ws.mean(0)) ** 2).sum(1).mean())
    assert rsgd.gamma0 == pytest.approx(loss / dist, rel=1e-5)


def test_rsgd_centre_averages_parameters_and_float_buffers(blobs):
    rsgd = make("rsgd", bn_factory, blobs, {"replicas": 3})
    rsgd.train_epoch(0)
    centre = rsgd.solution()
    for name, p in centre.named_parameters():
        mean = torch.stack([dict(r.named_parameters())[name] for r in rsgd.replicas]).mean(0)
        torch.testing.assert_close(p, mean, atol=1e-7, rtol=0)
    for name in ("2.running_mean", "2.running_var"):
        mean = torch.stack([r.get_buffer(name) for r in rsgd.replicas]).mean(0)
        torch.testing.assert_close(centre.get_buffer(name), mean, atol=1e-7, rtol=0)
    assert torch.equal(centre.get_buffer("2.num_batches_tracked"), rsgd.replicas[0][2].num_batches_tracked)
    one = make("rsgd", bn_factory, blobs, {"replicas": 3, "returns": "replica"})
    one.train_epoch(0)
    assert_same(params(one.solution()), params(one.replicas[0]))
    assert_same(list(one.solution().buffers()), list(one.replicas[0].buffers()))


def test_binary_rsgd_returns_the_majority_of_the_replicas_signs(blobs):
    """Binary layers: the centre of the binarized replicas (Baldassi et al.), not sign(mean latent weight);
    BatchNorm parameters are averaged, its running statistics recomputed. The summary gives each replica's
    error and its distance to the returned network."""
    from toroids.binary import binarize, binary_keys

    def factory(replica):
        return build_model("binary_mlp", (10,), 4, seed=300 + replica, widths=[9])

    rsgd = make("rsgd", factory, blobs, {"replicas": 3, "lr": 0.5, "gamma0": 0.0, "gamma1": 0.0})
    rsgd.train_epoch(0)
    centre = rsgd.solution()
    keys = binary_keys(centre)
    differs = 0
    for name, p in centre.named_parameters():
        reps = torch.stack([dict(r.named_parameters())[name] for r in rsgd.replicas])
        if name in keys:
            votes = binarize(reps).sum(0)
            assert torch.equal(binarize(p), torch.where(votes >= 0, 1.0, -1.0))
            differs += int((binarize(reps.mean(0)) != binarize(p)).sum())
        else:
            torch.testing.assert_close(p, reps.mean(0), atol=1e-7, rtol=0)
    assert differs > 0  # the rule matters here: sign(mean latent weight) would give another network
    s = rsgd.summary()
    assert len(s["replica_train_errors"]) == 3 and len(s["replica_hamming_to_returned"]) == 3

    def signs(net):
        return torch.cat([binarize(dict(net.named_parameters())[k]).flatten() for k in keys])

    ref = signs(centre)
    expected = [float((signs(r) != ref).double().mean()) for r in rsgd.replicas]
    assert s["replica_hamming_to_returned"] == expected
    # its BatchNorm statistics are its own, from one pass over the train data, not the replicas' mean
    from toroids.evaluate import recompute_bn_stats

    own = recompute_bn_stats(centre, centre.state_dict(), blobs.x_train)
    mean = torch.stack([r.get_buffer("2.running_mean") for r in rsgd.replicas]).mean(0)
    assert torch.allclose(centre.get_buffer("2.running_mean"), own["2.running_mean"])
    assert not torch.allclose(centre.get_buffer("2.running_mean"), mean)
    assert s["bn_statistics"] == "recomputed on the train data"


@pytest.mark.parametrize("factory", [mlp_factory(), bn_factory], ids=["mlp", "bn"])
def test_rsgd_stacked_matches_sequential(blobs, factory):
    seq = make("rsgd", factory, blobs, {"replicas": 3}, epochs=3)
    stk = make("rsgd", factory, blobs, {"replicas": 3, "stacked": True}, epochs=3)
    assert seq.gamma0 == stk.gamma0
    for e in range(3):
        a, b = seq.train_epoch(e), stk.train_epoch(e)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    torch.testing.assert_close(seq.flat, stk.flat.detach(), atol=1e-5, rtol=0)
    for r1, r2 in zip(seq.replicas, stk.replicas):
        for b1, b2 in zip(r1.buffers(), r2.buffers()):
            torch.testing.assert_close(b1, b2, atol=1e-5, rtol=0)


class _Sign(torch.autograd.Function):  # old-style Function: no vmap rule
    @staticmethod
    def forward(ctx, x):
        return torch.sign(x)

    @staticmethod
    def backward(ctx, g):
        return g


class _SignNet(nn.Module):
    def forward(self, x):
        return _Sign.apply(x)


def test_rsgd_stacked_refuses_an_architecture_vmap_cannot_batch(blobs):
    def factory(replica):
        torch.manual_seed(replica)
        return Network(nn.Linear(10, 8), _SignNet(), nn.Linear(8, 4), input_shape=(10,), spec={})

    make("rsgd", factory, blobs, {"replicas": 2}).train_epoch(0)  # sequential: fine
    with pytest.raises(ValueError, match="stacked: false"):
        make("rsgd", factory, blobs, {"replicas": 2, "stacked": True})


def test_rsgd_coupling_cap_and_stats(blobs):
    rsgd = make("rsgd", mlp_factory(), blobs, {"gamma0": 100.0, "gamma1": 0.0, "coupling_cap": 0.5})
    stats = rsgd.train_epoch(0)
    assert stats["coupling_capped"] == 1.0 and stats["coupling_step"] == pytest.approx(0.5)
    assert stats["gamma"] == pytest.approx(0.5 / (2 * 0.05))
    free = make("rsgd", mlp_factory(), blobs, {"gamma0": 0.1, "gamma1": 0.5, "coupling_cap": None})
    s0, s1 = free.train_epoch(0), free.train_epoch(1)
    assert s1["gamma"] == pytest.approx(0.15) and s0["max_coupling_step"] <= s1["max_coupling_step"]
    assert s1["sq_distance"] < s0["sq_distance"] and s1["coupling_capped"] == 0.0


# ---------------------------------------------------------------------------------------- Entropy-SGD


def test_esgd_with_one_inner_step_and_no_noise_is_sgd(blobs):
    """L = 1, ε = 0: w − μ = (1 − α) η′ ∇L(w; B), so eSGD(lr, μ) = SGD(lr (1 − α) η′, μ), same batches."""
    esgd_opts = {"L": 1, "noise": 0.0, "alpha": 0.5, "inner_lr": 0.5, "lr": 0.08, "momentum": 0.9}
    esgd = make("esgd", mlp_factory(), blobs, esgd_opts, epochs=3)
    sgd = make("sgd", mlp_factory(), blobs, {"lr": 0.08 * 0.5 * 0.5, "momentum": 0.9}, epochs=3)
    for e in range(3):
        esgd.train_epoch(e)
        sgd.train_epoch(e)
        assert_same(params(esgd.model), params(sgd.model), atol=1e-6)


def test_esgd_updates_batchnorm_statistics_once_per_outer_step(blobs):
    esgd = make("esgd", bn_factory, blobs, {"L": 4}, batch_size=16)  # 12 minibatches → 3 outer steps
    stats = esgd.train_epoch(0)
    assert stats["outer_steps"] == 3 and int(esgd.model[2].num_batches_tracked) == 3


# ---------------------------------------------------------------------------------------------- ADV


def _image_data(seed=1, n=50):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 3, 3, generator=g)
    y = torch.randint(3, (n,), generator=g)
    raw_zero = torch.tensor([-0.7, -1.3])
    return Dataset("img", x, y, x[:5], y[:5], 3, raw_zero)


def _image_factory(a):
    return build_model("mlp", (2, 3, 3), 3, seed=a, widths=[8])


def test_adv_confusion_set_holds_only_the_noisy_copies_by_default():
    data, n, k = _image_data(), 50, 4  # k = ⌊0.25 · 18⌋
    x = data.x_train
    adv = make("adv", _image_factory, data, {"R": 2, "zero_fraction": 0.25}, seed=3)
    assert adv.pretrain_size == 2 * n  # no clean sample (Liu et al.)
    xb, yb = adv.pretrain_batch(torch.arange(2 * n))
    raw_zero = data.raw_zero.view(2, 1, 1).expand(2, 3, 3).flatten()
    zeroed = adv.zero_idx.long()
    for j in range(2 * n):  # exactly k entries per copy hold the standardized raw 0, −μ/σ; the rest is clean
        mask = torch.zeros(18, dtype=torch.bool)
        mask[zeroed[j]] = True
        assert mask.sum() == k
        row, ref = xb[j].flatten(), x[j % n].flatten()
        assert torch.equal(row[mask], raw_zero[mask]) and torch.equal(row[~mask], ref[~mask])
    assert torch.equal(yb, adv.rand_labels) and set(adv.rand_labels.tolist()) == {0, 1, 2}
    again = make("adv", _image_factory, data, {"R": 2, "zero_fraction": 0.25}, seed=3)
    other = make("adv", _image_factory, data, {"R": 2, "zero_fraction": 0.25}, seed=4)
    assert torch.equal(again.rand_labels, adv.rand_labels) and torch.equal(again.zero_idx, adv.zero_idx)
    assert not torch.equal(other.rand_labels, adv.rand_labels)


def test_adv_clean_data_only_through_its_option():
    data, n = _image_data(), 50
    adv = make("adv", _image_factory, data, {"R": 2, "include_clean": True})
    assert adv.pretrain_size == 3 * n
    xb, yb = adv.pretrain_batch(torch.arange(3 * n))
    assert torch.equal(xb[:n], data.x_train) and torch.equal(yb[:n], data.y_train)  # clean first, untouched


def test_adv_zeroes_a_tenth_of_continuous_inputs_and_nothing_of_binary_ones():
    data = _image_data(n=20)
    cont = make("adv", _image_factory, data)
    assert cont.options["zero_fraction"] == 0.1 and cont.zero_idx.shape == (20, 1)  # ⌊0.1 · 18⌋
    binary = make("adv", lambda a: build_model("binary_mlp", (2, 3, 3), 3, seed=a, widths=[5]), data)
    assert binary.options["zero_fraction"] == 0.0 and binary.zero_idx.shape == (20, 0)
    xb, _ = binary.pretrain_batch(torch.arange(20))
    assert torch.equal(xb, data.x_train)  # labels randomized only (the paper's binary ADV)
    raw = Dataset("teacher-like", data.x_train, data.y_train, data.x_test, data.y_test, 3)  # not standardized
    assert make("adv", _image_factory, raw).options["zero_fraction"] == 0.0


def test_adv_labels_are_uniform():
    n = 6000
    x = torch.zeros(n, 4)
    data = Dataset("flat", x, torch.zeros(n, dtype=torch.int64), x[:2], torch.zeros(2, dtype=torch.int64), 4)
    adv = make("adv", lambda a: build_model("mlp", (4,), 4, seed=a, widths=[4]), data)
    counts = torch.bincount(adv.rand_labels, minlength=4).double()
    chi2 = float(((counts - n / 4) ** 2 / (n / 4)).sum())
    assert chi2 < 16.3  # χ²(3) p = 0.001
    assert adv.zero_idx.shape == (n, 0)  # ⌊0.1 · 4⌋ = 0 entries zeroed


def test_adv_pretraining_reaches_its_target_then_trains_the_clean_data(blobs):
    """Liu et al.'s recipe on a small problem: plain SGD on the random labels until 99% of them are fitted,
    then vanilla SGD on the clean labels from those weights."""
    opts = {"pretrain_epochs": 300, "pretrain_lr": 0.1, "pretrain_milestones": [], "pretrain_target": 0.99}
    res = train(data=blobs, epochs=3, sampler="adv", sampler_options=opts, arch="mlp",
                model_options={"widths": [256, 256]}, batch_size=16, seed=4, device=CPU, **QUIET)  # fmt: skip
    s = res.summary
    assert s["pretrain_target_reached"] is True and s["random_label_accuracy"] >= 0.99
    assert 10 < s["pretrain_epochs_run"] < 300  # stopped at the target, not at the cap
    pre = [h for h in res.history if h["phase"] == 0]
    assert len(pre) == s["pretrain_epochs_run"] and pre[0]["random_label_accuracy"] < 0.5  # chance 1/4
    assert [h["phase"] for h in res.history[len(pre) :]] == [1, 1, 1]  # skipped epochs are not recorded
    assert "warnings" not in s


def test_adv_missed_target_is_flagged_and_warned(blobs):
    lines = []
    opts = {"pretrain_epochs": 2, "pretrain_target": 0.99}
    res = train(data=blobs, epochs=1, sampler="adv", sampler_options=opts, log=lines.append, **TRAIN_KW)
    assert res.summary["pretrain_target_reached"] is False and res.summary["pretrain_epochs_run"] == 2
    assert any(line.startswith("WARNING: adv pre-training missed its target") for line in lines)
    free = train(data=blobs, epochs=1, sampler="adv", sampler_options={**opts, "pretrain_target": None},
                 **QUIET, **TRAIN_KW)  # fmt: skip
    assert free.summary["pretrain_target_reached"] is None and "warnings" not in free.summary


def test_adv_pretraining_lr_drops_at_its_milestones(blobs):
    adv = make("adv", mlp_factory(), blobs, {"pretrain_milestones": [2, 4], "pretrain_lr_factor": 0.5})
    assert [adv.pretrain_lr(e) for e in range(6)] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


def test_adv_main_phase_is_vanilla_sgd_from_the_pretrained_weights(blobs):
    adv = make("adv", mlp_factory(), blobs, {"pretrain_epochs": 3, "pretrain_target": None}, epochs=2)
    for e in range(3):
        assert adv.train_epoch(e)["phase"] == 0.0
    w = params(adv.model)
    stats = adv.train_epoch(3)
    assert stats["phase"] == 1.0 and adv.opt is adv.main_opt and adv.main_opt.param_groups[0]["momentum"] == 0
    assert not adv.main_opt.state or all("momentum_buffer" not in s for s in adv.main_opt.state.values())
    assert max((a - b).abs().max() for a, b in zip(w, params(adv.model))) < 0.5


def test_adv_main_phase_with_adam_and_the_papers_halvings(blobs):
    """The binary ConvNet's ADV (digest §5.3 (iv)): pre-training with SGD, then Adam at lr 0.01 halved at
    epochs 10, 20, 50 and then every 50 of the main phase."""
    opts = {
        "pretrain_epochs": 1, "pretrain_target": None, "optimizer": "adam", "lr": 0.01,
        "schedule": "step", "lr_milestones": [10, 20, 50], "lr_every": 50,
    }  # fmt: skip
    adv = make("adv", mlp_factory(), blobs, opts, epochs=200)
    assert isinstance(adv.pre_opt, torch.optim.SGD) and isinstance(adv.main_opt, torch.optim.Adam)
    lrs = {e: adv.lr_at(e) for e in (0, 9, 10, 19, 20, 49, 50, 99, 100, 149, 150, 199)}
    halvings = {0: 0, 9: 0, 10: 1, 19: 1, 20: 2, 49: 2, 50: 3, 99: 3, 100: 4, 149: 4, 150: 5, 199: 5}
    assert lrs == {e: 0.01 * 0.5**k for e, k in halvings.items()}
    adv.train_epoch(0)
    adv.train_epoch(1)  # the first main epoch: Adam's moments exist, at the main phase's first lr
    assert adv.opt is adv.main_opt and adv.opt.param_groups[0]["lr"] == 0.01
    assert all("exp_avg" in st for st in adv.main_opt.state.values()) and adv.main_opt.state


def test_train_loop_runs_adv_pretraining_plus_main_epochs(blobs):
    opts = {"pretrain_epochs": 2, "pretrain_target": None}
    res = train(data=blobs, epochs=4, sampler="adv", sampler_options=opts, **QUIET, **TRAIN_KW)
    assert [h["phase"] for h in res.history] == [0, 0, 1, 1, 1, 1]


# ----------------------------------------------------------------------------- all samplers, via train()

FIT = {
    "sgd": {"lr": 0.05},
    "rsgd": {},
    "adv": {"pretrain_epochs": 5, "pretrain_target": None},
    "sam": {"lr": 0.05},
    "esgd": {"L": 5},
    "adam": {"lr": 0.01},
}


@pytest.mark.parametrize("name", sorted(FIT))
def test_every_sampler_fits_a_separable_problem(blobs, name):
    res = train(data=blobs, epochs=15, sampler=name, sampler_options=FIT[name], **QUIET, **TRAIN_KW)
    assert res.train_error < 0.01
    assert all(math.isfinite(v) for h in res.history for v in h.values())


DIVERGE = {
    "sgd": {"lr": 1e6},
    "rsgd": {"lr": 1e6},
    "adv": {"pretrain_lr": 1e6},
    "sam": {"lr": 1e6},
    "esgd": {"lr": 1e6, "inner_lr": 1e6},
    "adam": {"lr": 1e30},
}


@pytest.mark.parametrize("name", sorted(DIVERGE))
def test_divergence_raises(blobs, name):
    with pytest.raises(TrainingDiverged, match="diverged at epoch"):
        train(data=blobs, epochs=4, sampler=name, sampler_options=DIVERGE[name], **QUIET, **TRAIN_KW)


class Stop(Exception):
    pass


RESUME = {
    **FIT,
    "rsgd": {"replicas": 3},
    "adv": {"pretrain_epochs": 2, "pretrain_target": None},
    # the paper's deep binary nets: "SGD" with Adam, halved every 2 epochs; ADV's main phase with Adam
    "sgd-adam": {"optimizer": "adam", "lr": 0.01, "schedule": "step", "lr_every": 2},
    "adv-adam": {"pretrain_epochs": 2, "pretrain_target": None, "optimizer": "adam", "lr": 0.01},
}


@pytest.mark.parametrize("name", sorted(RESUME))
def test_resume_is_bitwise_identical(blobs, tmp_path, name):
    """Interrupted after epoch 3 of 6 and resumed from the checkpoint: the same final weights and buffers."""
    kw = dict(data=blobs, epochs=6, sampler=name.split("-")[0], sampler_options=RESUME[name], **TRAIN_KW)
    ref = train(**kw, **QUIET)

    def crash_at_epoch_4(msg):
        if msg.startswith("epoch    4/"):
            raise Stop

    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(Stop):
        train(**kw, checkpoint=ckpt, checkpoint_every_s=0, log=crash_at_epoch_4)
    assert load_state(ckpt)[1]["epoch"] == 2
    res = train(**kw, checkpoint=ckpt, checkpoint_every_s=0, **QUIET)
    assert res.resumed_from_epoch == 2
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, res.model.state_dict()[k]), k
    assert [h["loss"] for h in res.history] == [h["loss"] for h in ref.history]


def test_adv_resumes_bitwise_after_stopping_its_pretraining_early(blobs, tmp_path):
    """Killed in the main phase after the pre-training stopped at its target: the skipped epochs stay
    skipped, and the run ends as an uninterrupted one."""
    opts = {"pretrain_epochs": 8, "pretrain_target": 0.3}
    kw = dict(data=blobs, epochs=4, sampler="adv", sampler_options=opts, **TRAIN_KW)
    ref = train(**kw, **QUIET)
    assert ref.summary["pretrain_epochs_run"] < 8  # the target was reached early

    seen = []

    def crash_in_main_phase(msg):
        if "[main phase]" in msg:
            seen.append(msg)
            if len(seen) == 2:
                raise Stop

    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(Stop):
        train(**kw, checkpoint=ckpt, checkpoint_every_s=0, log=crash_in_main_phase)
    res = train(**kw, checkpoint=ckpt, checkpoint_every_s=0, **QUIET)
    assert res.resumed_from_epoch == 8  # 0-based: the first main epoch (index 8) was saved
    assert res.summary == ref.summary
    assert [h["epoch"] for h in res.history] == [h["epoch"] for h in ref.history]
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, res.model.state_dict()[k]), k


def test_rsgd_resume_restores_every_replica_and_gamma(blobs, tmp_path):
    """The most stateful sampler: replicas, momentum buffers and the automatic γ0 all come back."""
    s1 = make("rsgd", mlp_factory(), blobs, {"replicas": 3}, epochs=4)
    s1.train_epoch(0)
    s1.train_epoch(1)
    state = {k: v.clone() for k, v in s1.state().items()}
    s2 = make("rsgd", mlp_factory(), blobs, {"replicas": 3}, epochs=4)
    s2.gamma0 = -1.0
    s2.load_state(state)
    assert s2.gamma0 == s1.gamma0
    for e in (2, 3):
        s1.train_epoch(e)
        s2.train_epoch(e)
    assert torch.equal(s1.flat, s2.flat)


@pytest.mark.parametrize("sampler", ["sgd", "rsgd", "sam", "esgd", "adam"])
def test_binary_latent_weights_stay_clipped(blobs, sampler):
    """BinaryNet: every sampler clamps the latent weights of binary layers to [−1, 1] after its updates."""
    from toroids.binary import binary_keys
    from toroids.train import train

    options = {"lr": 5.0} if sampler != "adam" else {"lr": 0.5}
    if sampler == "rsgd":
        options |= {"replicas": 2, "gamma0": 0.001, "gamma1": 0.0}
    if sampler == "esgd":  # the outer step moves w towards the chain's average: the chain must move far
        options |= {"inner_lr": 5.0, "L": 2}
    res = train(
        arch="binary_mlp",
        model_options={"widths": [8]},
        data=blobs,
        sampler=sampler,
        sampler_options=options,
        epochs=2,
        batch_size=32,
        seed=0,
        device=torch.device("cpu"),
        log=lambda m: None,
    )
    state = res.model.state_dict()
    keys = binary_keys(res.model)
    assert keys and all(float(state[k].abs().max()) <= 1.0 for k in keys)
    assert any(float(state[k].abs().max()) == 1.0 for k in keys)  # the clip was active
