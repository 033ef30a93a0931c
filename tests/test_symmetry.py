"""Property tests of toroids.symmetry: normalization (Algorithm 1) and alignment (Algorithm 2), in float64.

The scramble helper below applies a random permutation and positive per-unit rescaling through the derived
Structure, written independently of the module's transforms; that the scrambled net computes the same
function checks the structure itself (which tensors move with a unit, BN ε included, flatten blocks).
"""

from __future__ import annotations

import copy
import math
import operator

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import fx, nn

from toroids import symmetry as S
from toroids.models import build_model

SETTINGS = settings(max_examples=20, deadline=None)
ARCHS = ["mlp", "lenet", "vgg16_bn", "functional"]


class FunctionalNet(nn.Module):
    """Functional ops, ``x.view(x.size(0), -1)`` and a BN1d after the flatten (per-feature BN blocks)."""

    def __init__(self, c1: int, c2: int, fc: int, n_out: int) -> None:
        super().__init__()
        self.input_shape = (1, 10, 10)
        self.conv1, self.bn1 = nn.Conv2d(1, c1, 3), nn.BatchNorm2d(c1)
        self.conv2, self.bnf = nn.Conv2d(c1, c2, 3), nn.BatchNorm1d(c2 * 4)
        self.fc, self.out = nn.Linear(c2 * 4, fc), nn.Linear(fc, n_out)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # 10 -> 8 -> 4
        x = torch.relu(self.conv2(x))  # 4 -> 2
        x = self.bnf(x.view(x.size(0), -1))
        return self.out(torch.relu(self.fc(x)))


def make(arch: str, data: st.DataObject, n_nets: int = 1) -> list[nn.Module]:
    """``n_nets`` random float64 eval-mode nets of one random ``arch`` configuration (widths drawn once), each
    with its own seed for the weights and BN statistics."""
    n_out = data.draw(st.integers(2, 6), label="n_out")
    if arch == "mlp":
        widths = data.draw(st.lists(st.integers(2, 12), min_size=1, max_size=3), label="widths")
        args, opts = ((1, 5, 5), n_out), {"widths": widths}
    elif arch == "lenet":
        size = data.draw(st.sampled_from([12, 16]), label="size")
        pool = data.draw(st.sampled_from(["each", "last"]), label="pool")
        chans = data.draw(st.tuples(st.integers(2, 6), st.integers(2, 6)), label="channels")
        fc = data.draw(st.integers(3, 10), label="fc")
        args, opts = ((1, size, size), n_out), {"channels": chans, "kernel_size": 3, "pool": pool, "fc": fc}
    elif arch == "vgg16_bn":
        size = data.draw(st.sampled_from([4, 8]), label="size")
        width = data.draw(st.sampled_from([1 / 32, 1 / 16]), label="width")
        args, opts = ((3, size, size), n_out), {"width": width}
    else:
        sizes = data.draw(st.tuples(st.integers(2, 5), st.integers(2, 5), st.integers(2, 8)), label="sizes")
    seeds = data.draw(st.lists(st.integers(0, 2**31 - 1), min_size=n_nets, max_size=n_nets, unique=True))
    nets = []
    for seed in seeds:
        if arch == "functional":
            torch.manual_seed(seed)
            model = FunctionalNet(*sizes, n_out)
        else:
            model = build_model(arch, *args, seed=seed, **opts)
        nets.append(randomize(model.double().eval(), seed))
    return nets


def randomize(model: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                # Spread the unit norms so that normalization has something to do.
                m.weight.mul_(
                    0.3 + 3 * torch.rand(m.weight.shape[0], *[1] * (m.weight.dim() - 1), generator=g)
                )
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(torch.randn(n, generator=g))
    return model


def batch(model: nn.Module, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, *model.input_shape, generator=g, dtype=torch.float64)


def along(factor: torch.Tensor, t: torch.Tensor, dim: int, block: int) -> torch.Tensor:
    shape = [1] * t.dim()
    shape[dim] = -1
    return factor.repeat_interleave(block).view(shape)


def reindex(t: torch.Tensor, dim: int, perm: torch.Tensor, block: int) -> torch.Tensor:
    idx = (perm[:, None] * block + torch.arange(block)).reshape(-1)
    return t.index_select(dim, idx)


def scramble(model: nn.Module, seed: int, *, flips: bool = False) -> nn.Module:
    """Rescale every hidden unit by a random a_k in [0.5, 2] (or a random sign if ``flips``), compensate the
    next layer, then permute the units at random: a function-preserving copy for positive a_k."""
    s = S.structure(model)
    g = torch.Generator().manual_seed(seed)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    for grp in s.hidden:
        h = grp.size
        if flips:
            a = torch.where(torch.rand(h, generator=g) < 0.5, -1.0, 1.0).double()
        else:
            a = (0.5 + 1.5 * torch.rand(h, generator=g)).double()
        perm = torch.randperm(h, generator=g)
        sd[grp.weight] *= along(a, sd[grp.weight], 0, 1)
        for c in grp.outgoing_scaled:
            if c.key.endswith("running_var"):
                assert not flips
                eps = model.get_submodule(c.key.rsplit(".", 1)[0]).eps
                aa = along(a, sd[c.key], 0, c.block)
                sd[c.key] = aa**2 * (sd[c.key] + eps) - eps
            else:
                sd[c.key] *= along(a, sd[c.key], c.dim, c.block)
        for c in grp.consumers:
            sd[c.key] /= along(a, sd[c.key], c.dim, c.block)
        for c in (S.Coupled(grp.weight, 0), *grp.outgoing_scaled, *grp.consumers):
            sd[c.key] = reindex(sd[c.key], c.dim, perm, c.block)
    out = copy.deepcopy(model)
    out.load_state_dict(sd)
    return out


def angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angles between matching rows, 2·atan2(|â − b̂|, |â + b̂|): unlike arccos, accurate near 0."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return 2 * torch.atan2((a - b).norm(dim=-1), (a + b).norm(dim=-1))


def geodesic(ma: nn.Module, mb: nn.Module) -> float:
    """sqrt(Σ_hidden units φ² + H_L·φ_L²) between two normalized nets (paper §2.2; biases and BN ignored)."""
    s = S.structure(ma)
    sa, sb = ma.state_dict(), mb.state_dict()
    total = sum(float((angle(sa[g.weight].flatten(1), sb[g.weight].flatten(1)) ** 2).sum()) for g in s.hidden)
    phi = angle(sa[s.output_weight].flatten(), sb[s.output_weight].flatten())
    return math.sqrt(total + s.output_size * float(phi) ** 2)


def max_diff(ma: nn.Module, mb: nn.Module) -> float:
    """Largest state-dict difference, relative to each tensor's scale where that exceeds 1."""
    sa, sb = ma.state_dict(), mb.state_dict()
    diffs = [
        float((sa[k].double() - sb[k].double()).abs().max() / max(1.0, float(sb[k].double().abs().max())))
        for k in sa
        if sa[k].numel()
    ]
    return max(diffs)


# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@SETTINGS
@given(data=st.data())
def test_normalize_preserves_function(arch, data):
    (model,) = make(arch, data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    norm = S.normalize(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "input was modified"
    x = batch(model)
    with torch.no_grad():
        y, z = model(x), norm(x)
    ratio = float((y * z).sum() / (y * y).sum())
    assert ratio > 0
    assert torch.allclose(z, ratio * y, rtol=1e-5, atol=1e-5 * float(z.abs().max()))
    assert torch.equal(y.argmax(1), z.argmax(1))
    for n in S.unit_norms(norm):
        assert torch.allclose(n, torch.ones_like(n), atol=1e-12)
    s = S.structure(model)
    assert math.isclose(
        float(norm.state_dict()[s.output_weight].norm()), math.sqrt(s.output_size), rel_tol=1e-12
    )
    assert max_diff(S.normalize(norm), norm) < 1e-12  # idempotent


@pytest.mark.parametrize("arch", ARCHS)
@SETTINGS
@given(data=st.data())
def test_align_undoes_scramble(arch, data):
    (model,) = make(arch, data)
    other = scramble(model, data.draw(st.integers(0, 2**31 - 1), label="scramble"))
    x = batch(model)
    with torch.no_grad():  # the structure moves exactly the tensors that carry a unit
        assert torch.allclose(other(x), model(x), rtol=1e-9, atol=1e-9 * float(model(x).abs().max()))
    na, nb = S.normalize(model), S.normalize(other)
    aligned = S.align(na, nb)
    assert geodesic(na, aligned) < 1e-6
    assert max_diff(na, aligned) < 1e-6
    # Linear-Aligned: the same permutations applied to the raw scrambled net keep its function.
    raw = S.align(model, other)
    with torch.no_grad():
        assert torch.allclose(raw(x), other(x), rtol=1e-12, atol=1e-12 * float(other(x).abs().max()))
    assert max_diff(S.normalize(raw), na) < 1e-6


@pytest.mark.parametrize("arch", ARCHS)
@SETTINGS
@given(data=st.data())
def test_align_idempotent_and_symmetric(arch, data):
    a, b = (S.normalize(m) for m in make(arch, data, 2))
    ab = S.align(a, b)
    again = S.align(a, ab)
    assert all(torch.equal(u, v) for u, v in zip(ab.state_dict().values(), again.state_dict().values()))
    for p, g in zip(S.match(a, ab), S.structure(a).hidden):
        assert torch.equal(p.index, torch.arange(g.size))
    ba = S.align(b, a)
    assert abs(geodesic(a, ab) - geodesic(b, ba)) < 1e-9
    with torch.no_grad():  # permuting a normalized net keeps its function exactly
        x = batch(b)
        assert torch.allclose(ab(x), b(x), rtol=1e-12, atol=1e-12 * float(b(x).abs().max()))


@SETTINGS
@given(data=st.data())
def test_signs_are_not_used_where_flips_are_no_symmetry(data):
    """With ReLU a sign flip changes the function: ``signs=True`` must then match like ``signs=False``."""
    ref = S.normalize(make("mlp", data)[0])
    permuted = scramble(ref, data.draw(st.integers(0, 2**31 - 1), label="scramble"), flips=False)
    with_signs, without = S.match(ref, permuted, signs=True), S.match(ref, permuted)
    assert all(p.signs is None for p in with_signs)
    assert all(torch.equal(p.index, q.index) for p, q in zip(with_signs, without))
    assert max_diff(S.align(ref, S.normalize(permuted), signs=True), ref) < 1e-9


class SignActivation(nn.Module):
    def forward(self, x):
        return torch.sign(x)


@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), widths=st.lists(st.integers(2, 10), min_size=1, max_size=3))
def test_sign_activation_net(seed, widths):
    torch.manual_seed(seed)
    layers, fan_in = [nn.Flatten()], 6
    for w in widths:
        layers += [nn.Linear(fan_in, w), nn.BatchNorm1d(w), SignActivation()]
        fan_in = w
    model = nn.Sequential(*layers, nn.Linear(fan_in, 3)).double().eval()
    model.input_shape = (6,)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    s = S.structure(model)
    assert all(g.degree == 0 and g.odd for g in s.hidden)
    x = batch(model, seed)
    with torch.no_grad():
        y = model(x)
        z = S.normalize(model)(x)  # sign outputs do not change, so the next layer is left alone
        assert torch.allclose(z, float((y * z).sum() / (y * y).sum()) * y, rtol=1e-9, atol=1e-9)
        g = torch.Generator().manual_seed(seed)
        perms = [
            S.Permutation(
                torch.randperm(grp.size, generator=g), torch.randint(0, 2, (grp.size,), generator=g) * 2.0 - 1
            )
            for grp in s.hidden
        ]
        other = S.permute(model, perms)
        assert torch.equal(other(x), y)  # sign flips are a symmetry of sign nets, BN included
    assert max_diff(S.align(model, other, signs=True), model) < 1e-12


# ---------------------------------------------------------------------------------------------------------


def test_structure_lenet_flatten_block():
    for size, pool in [(16, "each"), (12, "last")]:
        model = build_model(
            "lenet", (1, size, size), 10, seed=0, channels=(3, 4), kernel_size=3, fc=7, pool=pool
        )
        flat = next(i for i, m in enumerate(model) if isinstance(m, nn.Flatten))
        _, c, h, w = nn.Sequential(*list(model)[:flat])(torch.zeros(1, 1, size, size)).shape
        s = S.structure(model)
        last_conv = s.hidden[-2]
        assert last_conv.size == c == 4
        assert last_conv.consumers == (S.Coupled(f"{flat + 1}.weight", 1, h * w),)
        assert s.hidden[-1].consumers == (S.Coupled(f"{flat + 3}.weight", 1, 1),)
        assert s.output_weight == f"{flat + 3}.weight" and s.output_size == 10
        assert h * w > 1 or size == 12


def test_structure_vgg_has_bn_keys():
    model = build_model("vgg16_bn", (3, 8, 8), 10, seed=0, width=1 / 16)
    s = S.structure(model)
    assert len(s.hidden) == 13
    first = s.hidden[0]
    keys = {c.key for c in first.outgoing_scaled}
    assert keys == {"0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    assert first.batchnorms == (S.BatchNormRef("1", 1e-5, 1),)
    bn_keys = {k for k in model.state_dict() if "running" in k}
    assert bn_keys <= {c.key for g in s.hidden for c in g.outgoing_scaled}


def test_structure_functional_ops():
    s = S.structure(FunctionalNet(3, 4, 5, 2))
    conv2 = s.hidden[1]
    assert conv2.consumers == (S.Coupled("fc.weight", 1, 4),)
    assert conv2.batchnorms == (S.BatchNormRef("bnf", 1e-5, 4),)


def test_batchnorm_var_clamp_keeps_function():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.ReLU(), nn.Linear(2, 2)).double().eval()
    model.input_shape = (3,)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[6.0, 0, 8], [0, 10, 0]]))  # norms 10: c = 0.1
        model[1].running_var.copy_(torch.tensor([0.0, 1.0]))  # 0.01·(0 + ε) − ε < 0 for unit 0
        model[1].weight.copy_(torch.tensor([1.5, -2.0]))
    norm = S.normalize(model)
    var, gamma = norm[1].running_var, norm[1].weight.detach()
    assert var[0] == 0 and math.isclose(float(var[1]), 0.01 * (1 + 1e-5) - 1e-5, rel_tol=1e-12)
    assert math.isclose(float(gamma[1]), -0.2, rel_tol=1e-12)  # unclamped: γ·c
    x = torch.randn(8, 3, dtype=torch.float64)
    with torch.no_grad():
        y, z = model(x), norm(x)
    assert torch.allclose(z, float((y * z).sum() / (y * y).sum()) * y, rtol=1e-10, atol=1e-12)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.gate, self.out = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.relu(self.fc1(x)) * torch.sigmoid(self.gate(x)))


class ParameterOutsideLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.out = nn.Linear(4, 4), nn.Linear(4, 2)
        self.w = nn.Parameter(torch.randn(4, 4))

    def forward(self, x):
        return self.out(torch.relu(self.fc1(x)) @ self.w)


@pytest.mark.parametrize(
    ("model", "culprit"),
    [
        (Gated(), lambda n: n.target is operator.mul),
        (ParameterOutsideLayer(), lambda n: n.target is operator.matmul),
        (nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.Linear(5, 2)), lambda n: n.target == "1"),
        (
            nn.Sequential(nn.Conv1d(4, 4, 1, groups=2), nn.Flatten(), nn.Linear(4, 2)),
            lambda n: n.target == "0",
        ),
        (
            nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2), nn.BatchNorm1d(2)),
            lambda n: n.target == "3",
        ),
    ],
    ids=["gating-product", "parameter-outside-layer", "layernorm", "grouped-conv", "bn-after-output"],
)
def test_unsupported_graph_names_node(model, culprit):
    name = next(n.name for n in fx.symbolic_trace(model).graph.nodes if culprit(n))
    shape = (4, 1) if isinstance(model[0] if isinstance(model, nn.Sequential) else None, nn.Conv1d) else (4,)
    with pytest.raises(S.UnsupportedGraphError, match=rf"'{name}'"):
        S.structure(model, input_shape=shape)
