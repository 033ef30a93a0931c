"""Distances and paths on the toroid: known values and exact properties."""

import math

import pytest
import torch

from toroids import geometry, symmetry
from toroids.models import build_model


def test_slerp_matches_hand_computed_values():
    v1 = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    v2 = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    mid = geometry.slerp(v1, v2, 0.5)
    s = math.sqrt(0.5)
    torch.testing.assert_close(mid, torch.tensor([[s, s, 0.0]], dtype=torch.float64))
    third = geometry.slerp(v1, v2, 1 / 3)  # 30 degrees from v1
    torch.testing.assert_close(third, torch.tensor([[math.cos(math.pi / 6), 0.5, 0.0]], dtype=torch.float64))
    # radius 2: stays on the sphere of radius 2
    r = geometry.slerp(2 * v1, 2 * v2, 0.25)
    torch.testing.assert_close(
        r, torch.tensor([[2 * math.cos(math.pi / 8), 2 * math.sin(math.pi / 8), 0.0]], dtype=torch.float64)
    )


def test_slerp_endpoints_and_identical_rows():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(5, 7, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    v = torch.randn(5, 7, generator=g, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    torch.testing.assert_close(geometry.slerp(u, v, 0.0), u)
    torch.testing.assert_close(geometry.slerp(u, v, 1.0), v)
    torch.testing.assert_close(geometry.slerp(u, u, 0.3), u)  # φ = 0: no division by sin 0


def test_paper_formula_equals_slerp():
    """The paper's γ(x) = n·Normalize(v1 + t(x)(v2 − v1)), t = (1 − cos φ + sin φ / tan(φx))⁻¹, is slerp."""
    g = torch.Generator().manual_seed(1)
    v1, v2 = torch.randn(2, 9, generator=g, dtype=torch.float64)
    v1, v2 = v1 / v1.norm(), v2 / v2.norm()
    phi = math.acos(float(v1 @ v2))
    for x in (0.1, 0.5, 0.8):
        t = 1 / (1 - math.cos(phi) + math.sin(phi) / math.tan(phi * x))
        p = v1 + t * (v2 - v1)
        torch.testing.assert_close(geometry.slerp(v1[None], v2[None], x)[0], p / p.norm())


def _normalized_pair(seed=0, widths=(6, 5)):
    a = symmetry.normalize(build_model("mlp", (4,), 3, seed=seed, widths=widths).double())
    b = symmetry.normalize(build_model("mlp", (4,), 3, seed=seed + 100, widths=widths).double())
    b = symmetry.align(a, b)
    return a, b, symmetry.structure(a)


def _state(m):
    return {k: v.detach() for k, v in m.state_dict().items()}


def test_geodesic_distance_is_zero_to_itself_and_symmetric():
    a, b, s = _normalized_pair()
    sa, sb = _state(a), _state(b)
    assert geometry.geodesic_distance(sa, sa, s) == pytest.approx(0.0, abs=1e-7)
    assert geometry.geodesic_distance(sa, sb, s) == pytest.approx(
        geometry.geodesic_distance(sb, sa, s), rel=1e-12
    )
    assert geometry.geodesic_distance(sa, sb, s) > 0.1


def test_geodesic_distance_hand_computed():
    """Two one-hidden-unit networks: D² = Σ φ_k² + H_L φ_L², each angle known by construction."""
    a = build_model("mlp", (2,), 2, widths=[1], bias=False).double()
    b = build_model("mlp", (2,), 2, widths=[1], bias=False).double()
    with torch.no_grad():
        a[1].weight.copy_(torch.tensor([[1.0, 0.0]]))
        b[1].weight.copy_(torch.tensor([[0.0, 1.0]]))  # hidden unit: φ = π/2
        a[3].weight.copy_(torch.tensor([[1.0], [0.0]]))
        b[3].weight.copy_(torch.tensor([[1.0], [1.0]]))  # last layer: φ_L = π/4, H_L = 2
    s = symmetry.structure(a)
    expected = math.sqrt((math.pi / 2) ** 2 + 2 * (math.pi / 4) ** 2)
    assert geometry.geodesic_distance(_state(a), _state(b), s) == pytest.approx(expected, rel=1e-12)
    # per-parameter Euclidean distance over all 2 + 2 weights: ‖(−1, 1, 0, 1)‖ / 2
    assert geometry.euclidean_distance(_state(a), _state(b)) == pytest.approx(math.sqrt(3) / 2)


def test_geodesic_path_stays_on_the_toroid_and_ends_at_the_endpoints():
    a, b, s = _normalized_pair(widths=(8, 6))
    sa, sb = _state(a), _state(b)
    xs = [0.0, 0.25, 0.5, 0.75, 1.0]
    path = geometry.geodesic_path(sa, sb, xs, s)
    for k in sa:
        torch.testing.assert_close(path[0][k], sa[k])
        torch.testing.assert_close(path[-1][k], sb[k])
    h_l = sa[s.output_weight].shape[0]
    for point in path:
        for g in s.hidden:
            norms = point[g.weight].reshape(g.size, -1).norm(dim=1)
            torch.testing.assert_close(norms, torch.ones_like(norms))
        assert float(point[s.output_weight].norm()) == pytest.approx(math.sqrt(h_l), rel=1e-12)
    # the midpoint is equidistant from the two ends, at half the distance
    d = geometry.geodesic_distance(sa, sb, s)
    d0 = geometry.geodesic_distance(sa, path[2], s)
    d1 = geometry.geodesic_distance(path[2], sb, s)
    assert d0 == pytest.approx(d1, rel=1e-9) and d0 == pytest.approx(d / 2, rel=1e-9)


def test_linear_path_endpoints():
    a, b, _ = _normalized_pair()
    sa, sb = _state(a), _state(b)
    p = geometry.linear_path(sa, sb, [0.0, 0.5, 1.0])
    for k in sa:
        torch.testing.assert_close(p[0][k], sa[k])
        torch.testing.assert_close(p[2][k], sb[k])
        torch.testing.assert_close(p[1][k], (sa[k] + sb[k]) / 2)
