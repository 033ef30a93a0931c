"""The unit structure on graphs beyond chains (toroids.units) and the library's module-level API.

Residual networks (a CIFAR ResNet-20 with BatchNorm, torchvision's resnet18), concatenations, Tanh,
log-softmax outputs, inputs tied by an addition, BatchNorm's own scale, the structure cache, input-shape
inference and the self-test ``symmetry.check``. The twins are built with the derived groups but checked
against the network's own function and against distances computed here from the definitions.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from toroids import geometry, units
from toroids import symmetry as S
from toroids.models import build_model


def randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm statistics and affine parameters (γ of both signs), so that BN is not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
                m.weight.copy_(torch.randn(n, generator=g))
                m.bias.copy_(0.3 * torch.randn(n, generator=g))
    return model


def twin(model: nn.Module, s: units.Structure, seed: int) -> nn.Module:
    """``model`` with every group permuted and every scale rescaled at random (log-uniform in [1/3, 3])."""
    g = torch.Generator().manual_seed(seed)
    state = S.permute_state(
        model.state_dict(), s, [torch.randperm(grp.size, generator=g) for grp in s.hidden]
    )
    for grp in s.hidden:
        for sc in grp.scales:
            c = torch.exp((2 * torch.rand(grp.size, generator=g, dtype=torch.float64) - 1) * math.log(3))
            state = S.rescale_state(state, sc, c)
    out = copy.deepcopy(model)
    out.load_state_dict(state)
    return out


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def resnet20(seed: int = 0) -> nn.Module:
    return randomize_bn(build_model("resnet", (3, 16, 16), 10, seed=seed).double().eval(), seed)


def resnet18(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomize_bn(torchvision.models.resnet18(num_classes=10).double().eval(), seed)


# ---------------------------------------------------------------------------------------------------------
# Residual networks


def test_resnet20_ties_each_stage_into_one_group_on_the_sphere_of_the_rows_that_open_it():
    s = units.structure(resnet20())
    streams = [g for g in s.hidden if len(g.weights) > 1]
    assert [g.size for g in streams] == [16, 32, 64]
    assert streams[0].weights == ("0.weight", "3.conv2.weight", "4.conv2.weight", "5.conv2.weight")
    assert streams[1].weights == ("6.conv2.weight", "6.shortcut.0.weight", "7.conv2.weight", "8.conv2.weight")
    # A stream's sphere: the rows that open it (the stem; the first block's conv2 and shortcut, which read
    # the previous stage), not those of the blocks that read the stream and write back to it.
    assert [g.scales[0].sphere for g in streams] == [
        ("0.weight",),
        ("6.conv2.weight", "6.shortcut.0.weight"),
        ("9.conv2.weight", "9.shortcut.0.weight"),
    ]
    inner = [g for g in s.hidden if len(g.weights) == 1]
    assert len(inner) == 9 and all(g.scales[0].sphere == g.weights for g in inner)
    assert s.output_weight == "14.weight" and s.output_scaled and not s.fixed


@pytest.mark.parametrize("build", [resnet20, resnet18], ids=["resnet20", "torchvision-resnet18"])
def test_a_permuted_and_rescaled_residual_twin_computes_the_same_function_and_aligns_back(build):
    model = build(0)
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s = units.structure(model, x)
    other = twin(model, s, seed=2)
    y = outputs(model, x)
    assert torch.allclose(outputs(other, x), y, rtol=0, atol=1e-10 * float(y.abs().max()))
    assert geometry.geodesic_distance(model, other, example=x) < 1e-9
    aligned = S.align(S.normalize(model, x), S.normalize(other, x), x)
    a, b = S.normalize(model, x).state_dict(), aligned.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point()) < 1e-10
    # an independently trained-looking network is far away
    assert geometry.geodesic_distance(model, build(5), example=x) > 1.0


def test_resnet18_check_passes_for_every_group():
    report = S.check(resnet18(), (3, 32, 32))
    assert report.ok, str(report)
    groups = {row[0].split(":")[0] for row in report.rows if "permutation" in row[0]}
    assert len(groups) == 12  # 4 stages: one stream and two inner groups each


def test_normalized_resnet_units_are_on_their_spheres_and_the_function_is_kept():
    model = resnet20(3)
    s = units.structure(model)
    n = S.normalize(model).state_dict()
    for sp in s.spheres()[:-1]:
        rows = torch.cat([n[k].reshape(sp.size, -1) for k in sp.keys], dim=1)
        assert torch.allclose(rows.norm(dim=1), torch.ones(sp.size, dtype=torch.float64), atol=1e-12)
    assert math.isclose(float(n[s.output_weight].norm()), math.sqrt(10), rel_tol=1e-12)
    x = torch.randn(5, 3, 16, 16, dtype=torch.float64)
    y, z = outputs(model, x), outputs(S.normalize(model), x)
    a = float((y * z).sum() / (y * y).sum())
    assert a > 0 and torch.allclose(z, a * y, rtol=1e-10, atol=1e-12)


def test_geodesic_distance_of_two_resnets_equals_the_sum_over_unit_spheres():
    """D_geo from the definition: per stream unit the angle between its concatenated sphere rows."""
    a, b = resnet20(0), resnet20(1)
    s = units.structure(a)
    an = S.normalize_state(a.state_dict(), s)
    bn = S.normalize_state(b.state_dict(), s)
    total = 0.0
    for g in s.hidden:
        for sc in g.scales:
            u = torch.cat([an[k].reshape(g.size, -1) for k in sc.sphere], 1)
            v = torch.cat([bn[k].reshape(g.size, -1) for k in sc.sphere], 1)
            cos = (u * v).sum(1) / (u.norm(dim=1) * v.norm(dim=1))
            total += float((torch.arccos(cos.clamp(-1, 1)) ** 2).sum())
    w = s.output_weight
    cos_l = float((an[w] * bn[w]).sum() / (an[w].norm() * bn[w].norm()))
    total += 10 * math.acos(cos_l) ** 2
    assert math.isclose(geometry.geodesic_distance(an, bn, s), math.sqrt(total), rel_tol=1e-9)


def test_the_geodesic_path_of_two_resnets_stays_on_the_toroid():
    a, b = S.normalize(resnet20(0)), S.normalize(resnet20(1))
    s = units.structure(a)
    path = geometry.geodesic_path(a.state_dict(), b.state_dict(), [0.0, 0.3, 1.0], s)
    for p, ref in ((path[0], a), (path[-1], b)):
        assert all(
            torch.allclose(p[k], v, atol=1e-12) for k, v in ref.state_dict().items() if v.is_floating_point()
        )
    for sp in s.spheres()[:-1]:
        rows = torch.cat([path[1][k].reshape(sp.size, -1) for k in sp.keys], 1)
        assert torch.allclose(rows.norm(dim=1), torch.ones(sp.size, dtype=torch.float64), atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Other graphs


class Concat(nn.Module):
    """Two branches concatenated along the units: the reader's columns split by offset."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(6, 4), nn.Linear(6, 3), nn.Linear(7, 2)

    def forward(self, x):
        return self.out(torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], dim=1))


def test_concatenated_branches_keep_their_own_groups_with_offset_columns():
    model = Concat().double()
    s = units.structure(model)
    assert [g.consumers for g in s.hidden] == [
        (units.Coupled("out.weight", 1, 1, 0),),
        (units.Coupled("out.weight", 1, 1, 4),),
    ]
    assert S.check(model).ok
    assert geometry.geodesic_distance(model, twin(model, s, 0)) < 1e-12


class TiedToInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.mid, self.out = nn.Linear(5, 5), nn.Linear(5, 6), nn.Linear(6, 2)

    def forward(self, x):
        h = x + torch.relu(self.fc(x))  # fc's units are the input's coordinates: no symmetry
        return self.out(torch.relu(self.mid(h)))


def test_units_tied_to_the_network_input_are_left_as_they_are_and_noted():
    model = TiedToInput().double()
    s = units.structure(model)
    assert s.fixed == ("fc.weight",) and [g.weights for g in s.hidden] == [("mid.weight",)]
    assert any("fc.weight" in n and "input" in n for n in s.notes)
    n = S.normalize(model).state_dict()
    assert torch.equal(n["fc.weight"], model.fc.weight)
    assert S.check(model).ok


def test_tanh_units_keep_their_permutation_and_flips_but_not_their_scale():
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    s = units.structure(model)
    assert [len(g.scales) for g in s.hidden] == [0, 1] and [g.odd for g in s.hidden] == [True, False]
    assert any("Tanh" in n for n in s.notes)
    report = S.check(model)
    assert report.ok and any("sign flips" in row[0] for row in report.rows)
    n = S.normalize(model).state_dict()
    assert torch.equal(n["0.weight"], model[0].weight)  # not rescaled: tanh(c·x) ≠ c·tanh(x)
    assert torch.allclose(n["2.weight"].norm(dim=1), torch.ones(5, dtype=torch.float64))


def test_an_output_after_log_softmax_is_left_unscaled_so_the_function_is_exact():
    class LogSoftmaxNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 3)

        def forward(self, x):
            return torch.log_softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)

    model = LogSoftmaxNet().double()
    s = units.structure(model)
    assert not s.output_scaled and s.spheres()[-1].keys == ("fc1.weight",)
    x = torch.randn(7, 4, dtype=torch.float64)
    assert torch.allclose(outputs(S.normalize(model), x), outputs(model, x), rtol=1e-12, atol=1e-12)


def test_check_reports_a_symmetry_that_the_network_does_not_have(monkeypatch):
    """A structure that calls Tanh positively homogeneous is wrong, and the self-test says so."""
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    assert S.check(model).ok
    monkeypatch.setitem(units.PASS_THROUGH_MODULES, "Tanh", units.Law(1, True))
    report = S.check(model)
    assert not report.ok and "NO" in str(report)


# ---------------------------------------------------------------------------------------------------------
# BatchNorm's own scale


@pytest.mark.parametrize(
    ("arch", "shape", "opts"),
    [("vgg16_bn", (3, 8, 8), {"width": 1 / 16}), ("resnet", (3, 16, 16), {"depth": 8})],
)
def test_batchnorm_own_scale_maps_functionally_identical_networks_to_one_point(arch, shape, opts):
    model = randomize_bn(build_model(arch, shape, 10, seed=0, **opts).double().eval(), 1)
    own = units.structure(model, batchnorm="own")
    other = twin(model, own, seed=4)  # BN's γ, β rescaled against the next layer, the convs against the BN
    x = torch.randn(3, *shape, dtype=torch.float64)
    y = outputs(model, x)
    assert torch.allclose(outputs(other, x), y, rtol=0, atol=1e-10 * float(y.abs().max()))
    assert geometry.geodesic_distance(model, other) > 0.5  # the paper's reading leaves BN's scale free
    assert geometry.geodesic_distance(model, other, batchnorm="own") < 1e-9
    a = S.normalize(model, batchnorm="own")
    b = S.align(a, S.normalize(other, batchnorm="own"), batchnorm="own").state_dict()
    a = a.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point()) < 1e-10
    # each own scale's γ (the BNs that one residual addition ties, concatenated) has norm 1 per unit
    for grp in own.hidden:
        for sc in grp.scales:
            if sc.gammas and not sc.weights:
                gammas = torch.stack([a[bn.keys[0]] for bn in sc.gammas])
                assert torch.allclose(
                    gammas.norm(dim=0), torch.ones(grp.size, dtype=torch.float64), atol=1e-12
                )
    assert S.check(model, batchnorm="own").ok


# ---------------------------------------------------------------------------------------------------------
# Cache, inputs, API


class Switch(nn.Module):
    """A forward that branches on a plain attribute: the module tree is the same, the graph is not."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)
        self.act = "relu"

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(torch.relu(h) if self.act == "relu" else torch.tanh(h))


def test_the_structure_cache_follows_the_traced_graph_not_the_module_tree():
    model = Switch().double()
    relu = units.structure(model)
    model.act = "tanh"
    tanh = units.structure(model)
    assert relu.hidden[0].scales and not tanh.hidden[0].scales
    x = torch.randn(6, 4, dtype=torch.float64)
    y, z = outputs(model, x), outputs(S.normalize(model), x)
    assert torch.equal(y.argmax(1), z.argmax(1))
    assert torch.allclose(z, float((y * z).sum() / (y * y).sum()) * y, rtol=1e-10, atol=1e-12)


def test_input_shapes_are_inferred_from_the_first_layer_or_taken_from_an_example():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 3))
    assert units.resolve(mlp)[0] == (12,)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    assert units.resolve(cnn)[0] == (1, 28, 28)  # the only square size whose flatten fits the Linear
    shape, s = units.resolve(cnn, torch.zeros(2, 1, 28, 28))
    assert shape == (1, 28, 28) and s == units.structure(cnn, input_shape=(1, 28, 28))
    odd = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 28 * 28, 10))
    with pytest.raises(ValueError, match="pass an example"):
        units.structure(odd)
    assert units.resolve(odd, (1, 30, 30))[0] == (1, 30, 30)
    with pytest.raises(ValueError, match="batch"):
        units.structure(odd, torch.zeros(30))


class TutorialNet(nn.Module):
    """PyTorch's CIFAR-10 tutorial network: x.view(-1, 16 * 5 * 5) fits 32×32 inputs only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.pool, self.conv2 = nn.Conv2d(3, 6, 5), nn.MaxPool2d(2, 2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def test_the_cifar_tutorial_network_is_inferred_at_32x32():
    shape, s = units.resolve(TutorialNet())
    assert shape == (3, 32, 32) and [g.size for g in s.hidden] == [6, 16, 120, 84]
    assert S.check(TutorialNet()).ok


def test_inference_goes_past_sizes_where_a_view_folds_units_into_the_batch():
    """x.view(-1, 144) runs at 32×32 too, as a batch of 25 that mixes units: a size to skip, not an error."""

    class Folding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(144, 10)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).view(-1, 144))

    with pytest.raises(units.UnsupportedGraphError, match="mixes units"):
        units.structure(Folding(), (1, 32, 32))
    assert units.resolve(Folding())[0] == (1, 8, 8)


def test_two_user_networks_are_compared_with_the_module_api():
    torch.manual_seed(0)
    a = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 13 * 13, 10)
    )
    b = copy.deepcopy(a)
    with torch.no_grad():
        b[0].weight.mul_(3)
        b[0].bias.mul_(3)
        b[4].weight.div_(3)
    assert geometry.geodesic_distance(a, b) < 1e-6  # float32: a rescaled copy is the same point
    assert geometry.euclidean_distance(a, b) > 0.01
    path = geometry.geodesic_path(a, b, [0.0, 0.5, 1.0])
    assert len(path) == 3 and set(path[1]) == set(a.state_dict())
    assert len(geometry.linear_path(a, b, [0.0, 1.0])) == 2


def test_the_readme_library_examples_run_as_written(tmp_path, monkeypatch, capsys):
    """Both examples of the README's "The library", the first on checkpoints where the default study puts
    them (two digits MLPs of its shape, saved the way its train jobs save them)."""
    import re
    from pathlib import Path

    from toroids.checkpoint import save_model

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## The library") : readme.index("## Layout")]
    examples = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(examples) == 2
    for seed in (0, 1):
        folder = tmp_path / "results/default/models" / f"mlp-digits-sgd-s{seed}"
        folder.mkdir(parents=True)
        save_model(
            folder / "final.safetensors", build_model("mlp", (1, 8, 8), 10, seed=seed, widths=[128, 128])
        )
    monkeypatch.chdir(tmp_path)
    for code in examples:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "group 0: 128 units of 1.weight" in out and "group 0: 8 units of 0.weight, 2.conv2.weight" in out
    assert "NO" not in out


def test_a_batchnorm_networks_geodesic_midpoint_starts_in_bns_own_form_with_the_same_function():
    from toroids import midpoint

    a, b = resnet20(0), resnet20(1)
    s = units.structure(a)
    an, bn = S.normalize_state(a.state_dict(), s), S.normalize_state(b.state_dict(), s)
    ends = midpoint.aligned_ends(a.state_dict(), b.state_dict(), an, bn, s)
    m0 = midpoint.initial_midpoints(ends, s, units.structure(a, batchnorm="own"))["geodesic_aligned"]
    paper = midpoint.initial_midpoints(ends, s)["geodesic_aligned"]
    for grp in units.structure(a, batchnorm="own").hidden:
        for sc in grp.scales:
            if sc.gammas and not sc.weights:  # BN's own scale: |γ| = 1 (tied BNs: their γ as one vector)
                gammas = torch.stack([m0[bn.keys[0]] for bn in sc.gammas])
                assert torch.allclose(gammas.norm(dim=0), torch.ones(grp.size, dtype=torch.float64))
    assert any(float(paper[k].abs().max()) > 2 for k in paper if k.endswith("bn1.weight"))
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    net = copy.deepcopy(a)
    net.load_state_dict(m0)
    y = outputs(net, x)
    net.load_state_dict(paper)
    z = outputs(net, x)
    assert torch.allclose(y, float((y * z).sum() / (z * z).sum()) * z, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Found by an outside review


def test_relu6_keeps_its_permutation_but_not_a_scale_that_fails_above_six():
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU6(), nn.Linear(16, 5)).double()
    s = units.structure(model)
    assert not s.hidden[0].scales and any("ReLU6" in n for n in s.notes)
    x = 10 * torch.randn(64, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert S.check(model, x).ok


def test_check_applies_each_symmetry_to_the_original_network():
    """A failing row must not leak into the next ones (load_state_dict writes into the state's tensors)."""
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    units.PASS_THROUGH_MODULES["Tanh"], law = units.Law(1, True), units.PASS_THROUGH_MODULES["Tanh"]
    try:
        rows = {what: d for what, _, d in S.check(model).rows}
    finally:
        units.PASS_THROUGH_MODULES["Tanh"] = law
    assert rows["group 0 scale 0 (0.weight)"] > 1e-3
    assert rows["output layer: global scale"] < 1e-12 and rows["group 0 (0.weight): permutation"] < 1e-12


def test_a_batchnorm_called_twice_is_refused_with_its_node():
    class SharedBN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.c2, self.bn = nn.Conv2d(1, 6, 3), nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6)
            self.out = nn.Linear(12, 2)

        def forward(self, x):
            a, b = torch.relu(self.bn(self.c1(x))), torch.relu(self.bn(self.c2(x)))
            return self.out(torch.cat([a, b], 1).mean((2, 3)))

    with pytest.raises(units.UnsupportedGraphError, match="'bn_1'.*more than once"):
        units.structure(SharedBN(), (1, 8, 8))


def test_a_dead_unit_gives_finite_distances_and_paths():
    a = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    b = copy.deepcopy(a)
    with torch.no_grad():
        a[0].weight[3] = 0
        a[0].bias[3] = 0
        b[0].weight.add_(0.1)
    assert geometry.geodesic_distance(a, a) == 0.0
    d = geometry.geodesic_distance(a, b)
    assert math.isfinite(d) and d > 0
    assert all(torch.isfinite(t).all() for p in geometry.geodesic_path(a, b, [0.5]) for t in p.values())


class ShortcutFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.c1, self.c2, self.sc = (
            nn.Conv2d(4, 6, 3, padding=1),
            nn.Conv2d(6, 6, 3, padding=1),
            nn.Conv2d(4, 6, 1),
        )
        self.out = nn.Linear(6, 2)

    def block(self, x):
        s = self.sc(x)
        return torch.relu(self.c2(torch.relu(self.c1(x))) + s)

    def forward(self, x):
        return self.out(self.block(torch.relu(self.stem(x))).mean((2, 3)))


class ShortcutLast(ShortcutFirst):
    def block(self, x):
        return torch.relu(self.c2(torch.relu(self.c1(x))) + self.sc(x))


def test_a_streams_sphere_does_not_depend_on_the_order_of_statements_in_forward():
    torch.manual_seed(0)
    first, second = ShortcutFirst().double(), ShortcutFirst().double()
    last, last2 = ShortcutLast().double(), ShortcutLast().double()
    last.load_state_dict(first.state_dict())
    last2.load_state_dict(second.state_dict())
    spheres = {frozenset(sp.keys) for sp in units.structure(first, (1, 6, 6)).spheres()}
    assert spheres == {frozenset(sp.keys) for sp in units.structure(last, (1, 6, 6)).spheres()}
    assert any(set(k) == {"c2.weight", "sc.weight"} for k in spheres)  # c2 reads c1, which reads the stem
    d = geometry.geodesic_distance(first, second, example=(1, 6, 6))
    assert math.isclose(d, geometry.geodesic_distance(last, last2, example=(1, 6, 6)), rel_tol=1e-12)


def test_sign_flips_of_tanh_units_are_removed_by_the_module_distance():
    model = nn.Sequential(nn.Linear(4, 7), nn.Tanh(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    s = units.structure(model)
    g = torch.Generator().manual_seed(0)
    flips = S.Permutation(
        torch.randperm(7, generator=g), torch.where(torch.rand(7, generator=g) < 0.5, -1.0, 1.0)
    )
    other = S.permute(model, [flips, torch.randperm(5, generator=g)])
    x = torch.randn(6, 4, dtype=torch.float64)
    assert torch.allclose(outputs(other, x), outputs(model, x), atol=1e-12)
    assert geometry.geodesic_distance(model, other) < 1e-9
    assert geometry.geodesic_distance(model, other, signs=False) > 0.1
    assert s.hidden[0].odd
