"""Binary networks: the straight-through estimator, and their symmetries (sign flips where the path is odd,
permutations, the latent weights' per-unit scale) removed exactly by normalize and align; the binary
measurements (local energy by sign flips, random shortest paths, pair measurements, the equal-distance
midpoint) and the latent-weight clipping."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from toroids import symmetry as S
from toroids.binary import (
    align_binary,
    binarize,
    binary_keys,
    binary_path_summary,
    clip_latent_,
    equal_distance_midpoint,
    flip_weights,
    hamming_count,
    hamming_distance,
    is_binary,
    local_energy_flips,
    measure_binary_pair,
    random_path,
    sign_ste,
)
from toroids.evaluate import evaluate
from toroids.models import build_model

SETTINGS = settings(max_examples=15, deadline=None)


def test_straight_through_gradient_is_identity_inside_the_clipping_range():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5], requires_grad=True)
    y = sign_ste(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    g = torch.arange(1.0, 8.0)
    y.backward(g)
    assert x.grad.tolist() == [0, 2, 3, 4, 5, 6, 0]


def _net(arch, seed, **opts):
    shape = (1, 12, 12) if arch == "binary_convnet" else (9,)
    torch.manual_seed(seed)
    m = build_model(arch, shape, 4, seed=seed, **opts).double().eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2)
                mod.weight.uniform_(0.5, 2)
                mod.bias.normal_()
    return m


def _scramble(model, seed):
    """Random permutation of every hidden layer, random sign flips where they are a symmetry (odd path),
    and a random positive rescaling of every unit's latent weights."""
    s = S.structure(model)
    g = torch.Generator().manual_seed(seed)
    perms = []
    for grp in s.hidden:
        signs = torch.where(torch.rand(grp.size, generator=g) < 0.5, -1.0, 1.0).double() if grp.odd else None
        perms.append(S.Permutation(torch.randperm(grp.size, generator=g), signs))
    state = S.permute_state(model.state_dict(), s, perms)
    for grp in s.hidden:
        a = 0.2 + 3 * torch.rand(grp.size, generator=g, dtype=torch.float64)
        state[grp.weight] = state[grp.weight] * a.reshape(-1, *[1] * (state[grp.weight].dim() - 1))
    out = copy.deepcopy(model)
    out.load_state_dict(state)
    return out


ARCHS = [
    ("binary_mlp", {"widths": [7, 5]}),
    ("binary_convnet", {"channels": [3, 4], "kernel_size": 3, "fc": [6]}),
]


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), which=st.sampled_from([0, 1]))
def test_function_is_invariant_and_align_recovers_the_copy(seed, which):
    arch, opts = ARCHS[which]
    a = _net(arch, seed % 1000, **opts)
    b = _scramble(a, seed)
    x = torch.randn(16, *a.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-9)  # the scramble is a symmetry
        torch.testing.assert_close(S.normalize(a)(x), a(x), rtol=0, atol=1e-9)  # binary: exactly
    an, bn = S.normalize(a), S.normalize(b)
    aligned = S.align(an, bn, signs=True)
    s = S.structure(a)
    for k, v in an.state_dict().items():
        assert torch.allclose(aligned.state_dict()[k], v, atol=1e-9), k
    assert hamming_distance(an.state_dict(), aligned.state_dict(), s.sphere_keys()) == 0.0
    assert hamming_distance(a.state_dict(), b.state_dict(), s.sphere_keys()) > 0.0


def test_convnet_filters_have_no_sign_symmetry_but_fc_units_do():
    s = S.structure(_net(ARCHS[1][0], 0, **ARCHS[1][1]))
    assert [g.odd for g in s.hidden] == [False, False, True]
    assert all(g.degree == 0 for g in s.hidden)


def test_a_sign_flip_of_one_unit_leaves_the_output_unchanged():
    m = _net("binary_mlp", 0, widths=[6])
    s = S.structure(m)
    signs = torch.ones(6, dtype=torch.float64)
    signs[2] = -1
    flipped = S.permute(m, [S.Permutation(torch.arange(6), signs)])
    assert not torch.equal(flipped.state_dict()["1.weight"], m.state_dict()["1.weight"])
    x = torch.randn(8, 9, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(flipped(x), m(x))
    assert len(s.hidden) == 1 and s.hidden[0].odd


def test_perceptron_and_committee():
    p = build_model("binary_perceptron", (11,), 2)
    assert p(torch.zeros(3, 11)).shape == (3, 1) and S.structure(p).hidden == ()
    c = build_model("committee", (11,), 2, hidden=5)
    assert c(torch.zeros(3, 11)).shape == (3, 1)
    assert not c[-1].weight.requires_grad and torch.equal(c[-1].weight, torch.ones(1, 5))


# ---------------------------------------------------------------------------------------------------------
# Which weights are binary; clipping


def test_binary_keys_exclude_the_committee_output_and_continuous_layers():
    assert binary_keys(build_model("committee", (11,), 2, hidden=5)) == ["1.weight"]
    assert binary_keys(build_model("binary_perceptron", (11,), 2)) == ["1.weight"]
    m = build_model("binary_mlp", (11,), 4, widths=[5, 3])
    assert binary_keys(m) == ["1.weight", "4.weight", "7.weight"]
    assert binary_keys(m.requires_grad_(False)) == ["1.weight", "4.weight", "7.weight"]  # structural
    assert is_binary(m) and not is_binary(build_model("mlp", (11,), 4, widths=[5]))
    assert binary_keys(build_model("mlp", (11,), 4, widths=[5])) == []


def test_clip_latent_clamps_only_binary_latent_weights():
    c = build_model("committee", (11,), 2, hidden=5)
    with torch.no_grad():
        c[1].weight.normal_(0, 3)
    clip_latent_(c, bound=0.5)
    assert float(c[1].weight.detach().abs().max()) == 0.5
    assert torch.equal(c[-1].weight, torch.ones(1, 5))  # FixedOnes: never clipped

    m = build_model("binary_mlp", (11,), 4, widths=[5])
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(3.0)
    clip_latent_(m)
    assert torch.equal(m[1].weight, torch.ones_like(m[1].weight))
    assert torch.equal(m[4].weight, torch.ones_like(m[4].weight))
    assert torch.equal(m[2].weight, torch.full((5,), 3.0)) and torch.equal(m[2].bias, torch.full((5,), 3.0))
    with pytest.raises(ValueError):
        clip_latent_(m, bound=0.0)


# ---------------------------------------------------------------------------------------------------------
# Local energy by sign flips


def _fit(data, seed, widths=(24, 24), epochs=15, lr=0.2):
    """A binary MLP trained with plain SGD (BinaryNet: STE, latent weights clipped to [−1, 1])."""
    m = build_model("binary_mlp", data.input_shape, data.n_classes, seed=seed, widths=list(widths))
    opt = torch.optim.SGD(m.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        m.train()
        for idx in torch.randperm(len(data.y_train), generator=g).split(30):
            loss = F.cross_entropy(m(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            clip_latent_(m)
    return m.eval()


@pytest.fixture(scope="module")
def trained():
    from tests.conftest import make_blobs

    data = make_blobs()
    return data, _fit(data, 0), _fit(data, 1)


def test_flip_weights_flips_exactly_the_given_positions_including_zeros():
    state = {
        "a": torch.tensor([[0.5, -0.2], [0.0, 1.0]]),
        "b": torch.tensor([0.0, -0.0, 3.0]),
        "c": torch.ones(2),
    }
    keys = ["a", "b"]
    out = flip_weights(state, keys, torch.tensor([0, 2, 4, 5]))
    assert hamming_count(state, out, keys) == 4
    assert torch.equal(out["a"], torch.tensor([[-0.5, -0.2], [-torch.finfo(torch.float32).tiny, 1.0]]))
    assert float(out["b"][0]) < 0 and float(out["b"][1]) < 0 and float(out["b"][2]) == 3.0
    assert out["c"] is state["c"] and state["a"][0, 0] == 0.5  # input untouched


def test_local_energy_is_zero_at_zero_and_grows_with_the_flip_fraction(trained):
    data, m, _ = trained
    rows = local_energy_flips(m, data.x_train, data.y_train, [0.0, 0.02, 0.1, 0.3], n_samples=10, seed=0)
    assert [r["sigma"] for r in rows] == [0.0, 0.02, 0.1, 0.3]
    assert set(rows[0]) == {"sigma", "train_error", "delta_mean", "delta_std", "n_samples"}
    assert rows[0]["train_error"] < 0.02
    assert rows[0]["delta_mean"] == 0.0 and rows[0]["delta_std"] == 0.0
    d = [r["delta_mean"] for r in rows]
    assert 0 <= d[1] < d[2] < d[3] and d[3] > 0.2
    again = local_energy_flips(m, data.x_train, data.y_train, [0.0, 0.02, 0.1, 0.3], n_samples=10, seed=0)
    assert again == rows  # reproducible from the seed


def test_flipping_every_weight_of_a_perceptron_negates_it():
    # ±1 inputs, N odd: the output Σ sign(w_i) x_i is never 0, so all flips turn every answer around exactly
    g = torch.Generator().manual_seed(0)
    x = torch.where(torch.rand(64, 11, generator=g) < 0.5, -1.0, 1.0)
    y = (torch.rand(64, generator=g) < 0.5).long()
    p = build_model("binary_perceptron", (11,), 2, seed=0)
    base = evaluate(p, x, y).error
    rows = local_energy_flips(p, x, y, [0.0, 1.0], n_samples=3, seed=1)
    assert rows[1]["delta_mean"] == pytest.approx(1 - 2 * base) and rows[1]["delta_std"] == 0.0


# ---------------------------------------------------------------------------------------------------------
# Random shortest paths and the equal-distance midpoint


def _states(seed):
    g = torch.Generator().manual_seed(seed)

    def one():
        w1 = torch.randn(6, 5, generator=g)
        w1[0, :2] = 0.0  # sign(0) = +1
        return {
            "w1": w1,
            "bn": torch.randn(6, generator=g),
            "w2": torch.randn(3, 6, generator=g),
            "n": torch.tensor(7),
        }

    return one(), one()


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_random_path_flips_one_differing_weight_per_step(seed):
    a, b = _states(seed % 1000)
    keys = ["w1", "w2"]
    d = hamming_count(a, b, keys)
    states, xs, hamming = random_path(a, b, keys, d + 1, seed)
    assert hamming == d > 0 and len(states) == d + 1
    assert xs == [i / d for i in range(d + 1)]
    for k in keys:
        assert torch.equal(states[0][k], binarize(a[k])) and torch.equal(states[-1][k], binarize(b[k]))
        assert set(states[3][k].unique().tolist()) <= {-1.0, 1.0}
    for i, (s0, s1) in enumerate(zip(states, states[1:])):
        assert hamming_count(s0, s1, keys) == 1  # one single flip per step
        assert hamming_count(a, s1, keys) == i + 1 and hamming_count(s1, b, keys) == d - i - 1
    for s, x in zip(states, xs):  # other tensors: linear in the fraction of flips done
        torch.testing.assert_close(s["bn"], (1 - x) * a["bn"] + x * b["bn"])
        assert int(s["n"]) == 7
    # fewer points: evenly spaced in the number of flips, and a subset of the same order
    few, xs5, _ = random_path(a, b, keys, 5, seed)
    for s, x in zip(few, xs5):
        f = round(x * d)
        assert hamming_count(a, s, keys) == f and all(torch.equal(s[k], states[f][k]) for k in keys)
    assert [round(x * d) for x in xs5] == [(2 * i * d + 4) // 8 for i in range(5)]


def test_equal_distance_midpoint(trained):
    _, m1, m2 = trained
    a, b = m1.state_dict(), m2.state_dict()
    keys = binary_keys(m1)
    d = hamming_count(a, b, keys)
    mid = equal_distance_midpoint(a, b, keys, seed=3)
    assert hamming_count(a, mid, keys) == d // 2 and hamming_count(mid, b, keys) == d - d // 2
    for k in keys:  # latent values: a's or b's, weight by weight
        assert bool(((mid[k] == a[k]) | (mid[k] == b[k])).all())
    torch.testing.assert_close(
        mid["2.running_mean"],
        a["2.running_mean"] + (d // 2) / d * (b["2.running_mean"] - a["2.running_mean"]),
    )
    # it is the point with ⌊d/2⌋ flips on the random path of the same seed
    path = random_path(a, b, keys, d + 1, seed=3)
    binary_mid = equal_distance_midpoint(a, b, keys, seed=3, binarized=True)
    for k in a:
        assert torch.equal(binary_mid[k], path.states[d // 2][k]), k


# ---------------------------------------------------------------------------------------------------------
# Pair measurements


def test_measure_binary_pair_on_trained_nets(trained):
    data, a, b = trained
    splits = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    rows, dists = measure_binary_pair(a, b, splits, n_points=6, n_orders=3, seed=0)
    assert len(rows) == 2 * 3 * 6
    assert set(rows[0]) == {
        "path",
        "order",
        "x",
        "flips",
        "hamming",
        "n_orders",
        "bn_policy",
        "train_error",
        "train_loss",
        "test_error",
        "test_loss",
    }
    n = sum(a.state_dict()[k].numel() for k in binary_keys(a))
    by_rep = {r["representation"]: r for r in dists}
    assert set(by_rep) == {"hamming", "hamming_aligned"}
    assert by_rep["hamming"]["count"] == hamming_count(a.state_dict(), b.state_dict(), binary_keys(a))
    assert by_rep["hamming"]["distance"] == by_rep["hamming"]["count"] / n
    assert by_rep["hamming"]["n_weights"] == n
    assert 0 < by_rep["hamming_aligned"]["count"] < by_rep["hamming"]["count"]
    for path, rep in (("random", "hamming"), ("random_aligned", "hamming_aligned")):
        for o in range(3):
            pts = [r for r in rows if r["path"] == path and r["order"] == o]
            xs = [r["x"] for r in pts]
            assert xs == sorted(xs) and xs[0] == 0 and xs[-1] == 1
            assert all(r["hamming"] == by_rep[rep]["count"] for r in pts)
            # the ends are the two networks (the aligned one has the same function)
            for split, (x, y) in splits.items():
                assert pts[0][f"{split}_error"] == evaluate(a, x, y).error
                assert pts[-1][f"{split}_error"] == evaluate(b, x, y).error
    # orders differ in the middle of the path
    mids = {r["train_error"] for r in rows if r["path"] == "random" and r["x"] == rows[2]["x"]}
    assert len(mids) > 1
    curves, barriers = binary_path_summary(rows)
    assert len(curves) == 2 * 6 and {c["n_orders"] for c in curves} == {3}
    for bar in barriers:
        per_order = [
            max(r["train_error"] for r in rows if r["path"] == bar["path"] and r["order"] == o)
            for o in range(3)
        ]
        assert bar["barrier"] == pytest.approx(sum(per_order) / 3)


@pytest.mark.parametrize("which", [0, 1])
def test_alignment_recovers_a_scrambled_copy_in_hamming_distance(which):
    arch, opts = ARCHS[which]
    a = _net(arch, 3, **opts)
    b = _scramble(a, 7)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, *a.input_shape, dtype=torch.float64, generator=g)
    y = torch.randint(0, 4, (32,), generator=g)
    rows, dists = measure_binary_pair(a, b, {"train": (x, y)}, n_points=4, n_orders=2, seed=1)
    by_rep = {r["representation"]: r for r in dists}
    assert by_rep["hamming_aligned"]["count"] == 0 and by_rep["hamming"]["count"] > 0
    aligned = [r for r in rows if r["path"] == "random_aligned"]
    assert len({r["train_error"] for r in aligned}) == 1 and all(r["hamming"] == 0 for r in aligned)


def test_alignment_on_signs_recovers_a_scrambled_copy():
    # matching on the signs needs units whose sign patterns are distinct up to a flip (wide enough fan-in)
    a = build_model("binary_mlp", (30,), 4, seed=5, widths=[12, 10]).double().eval()
    b = _scramble(a, 11)
    x, y = torch.randn(8, 30, dtype=torch.float64), torch.zeros(8).long()
    _, dists = measure_binary_pair(a, b, {"train": (x, y)}, 2, 1, 0, match_on="sign")
    counts = {r["representation"]: r["count"] for r in dists}
    assert counts["hamming_aligned"] == 0 and counts["hamming"] > 0


def test_committee_is_aligned_by_permutations_only():
    c = _net("committee", 0, hidden=7)
    s = S.structure(c)
    assert s.hidden[0].odd  # sign is odd, but the fixed output weights make a flip leave the model family
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(7, generator=g)
    b = S.permute(c, [S.Permutation(perm)])
    aligned = align_binary(c, b)
    assert torch.equal(aligned.state_dict()["3.weight"], torch.ones(4, 7))  # never flipped
    assert hamming_count(c.state_dict(), aligned.state_dict(), binary_keys(c)) == 0
    # a unit's incoming weights negated: not a symmetry of the committee (the output weights are fixed), so
    # align_binary does not undo it, while a plain signs=True alignment would, flipping an output weight too
    flipped = copy.deepcopy(b)
    with torch.no_grad():
        flipped[1].weight[2].neg_()
    assert (S.align(c, flipped, signs=True).state_dict()["3.weight"] == -1).any()
    again = align_binary(c, flipped)
    assert torch.equal(again.state_dict()["3.weight"], torch.ones(4, 7))
    x = torch.randn(8, 9, dtype=torch.float64)
    _, dists = measure_binary_pair(c, flipped, {"train": (x, torch.zeros(8).long())}, 2, 1, 0)
    assert {r["representation"]: r["count"] for r in dists}["hamming_aligned"] > 0


def test_perceptron_pair_has_no_alignment():
    g = torch.Generator().manual_seed(0)
    a, b = (build_model("binary_perceptron", (15,), 2, seed=s) for s in (0, 1))
    x, y = torch.randn(20, 15, generator=g), torch.randint(0, 2, (20,), generator=g)
    rows, dists = measure_binary_pair(a, b, {"train": (x, y)}, n_points=3, n_orders=2, seed=0)
    d = hamming_count(a.state_dict(), b.state_dict(), ["1.weight"])
    assert dists[0]["count"] == dists[1]["count"] == d > 0
    assert rows[-1]["train_error"] == evaluate(b, x, y).error


def test_binary_archs_of_the_study_plan_are_the_binary_models():
    from toroids.binary import is_binary
    from toroids.models import MODELS
    from toroids.study import BINARY_ARCHS

    binary = {a for a in MODELS if is_binary(build_model(a, (3, 32, 32), 2))}
    assert binary == set(BINARY_ARCHS)


def test_a_binary_bend_trains_as_the_experiment_trained_its_solutions(monkeypatch):
    """The midpoint of a binary pair is trained with the sampler, options, epochs and batch size given
    (the workflow passes the experiment's "S" solutions': Adam for the deep binary nets), not SGD always."""
    from tests.conftest import make_blobs
    from toroids import midpoint

    data = make_blobs()
    splits = {"train": (data.x_train, data.y_train)}
    left = build_model("binary_mlp", (10,), 4, seed=0, widths=[8])
    right = build_model("binary_mlp", (10,), 4, seed=1, widths=[8])
    calls = []
    real = midpoint.train

    def spy(**kw):
        calls.append({k: kw[k] for k in ("sampler", "sampler_options", "epochs", "batch_size")})
        return real(**kw)

    monkeypatch.setattr(midpoint, "train", spy)
    rows, _ = midpoint.single_bends(
        left, right, data, splits, pair="l__r", sampler="adam", train_options={"lr": 0.01},
        epochs=2, batch_size=50, seed=0, n_points=3, chunk_size=256, bn_policy="interpolate",
        device=torch.device("cpu"), log=lambda m: None, n_orders=1,
    )  # fmt: skip
    assert calls == [{"sampler": "adam", "sampler_options": {"lr": 0.01}, "epochs": 2, "batch_size": 50}] * 2
    assert {r["path"] for r in rows} == {"random_bend", "random_aligned_bend"}
