"""Binary networks: the straight-through estimator, and their symmetries (sign flips where the path is odd,
permutations, the latent weights' per-unit scale) removed exactly by normalize and align."""

import copy

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toroids import symmetry as S
from toroids.binary import hamming_distance, sign_ste
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
