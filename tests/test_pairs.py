"""Pair measurements, single-bend paths and 2-D sections on real (small) trained networks."""

import pytest
import torch

from toroids import midpoint, sections, symmetry
from toroids.evaluate import evaluate
from toroids.pairs import measure_pair, representation_distances
from toroids.train import train


@pytest.fixture(scope="module")
def pair():
    from tests.conftest import make_blobs

    data = make_blobs()
    kw = dict(
        arch="mlp",
        model_options={"widths": [16, 12]},
        data=data,
        sampler="sgd",
        sampler_options={"lr": 0.05},
        epochs=12,
        batch_size=32,
        device=torch.device("cpu"),
        log=lambda m: None,
    )
    a, b = train(seed=0, **kw).model, train(seed=1, **kw).model
    return data, a, b, symmetry.normalize(a), symmetry.normalize(b)


def test_linear_path_endpoints_reproduce_the_endpoint_errors(pair):
    data, a, b, an, bn = pair
    splits = {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}
    rows, _ = measure_pair(a, b, an, bn, splits, [0.0, 0.5, 1.0])
    lin = [r for r in rows if r["path"] == "linear"]
    assert lin[0]["train_error"] == evaluate(a, *splits["train"]).error
    assert lin[-1]["train_error"] == evaluate(b, *splits["train"]).error
    assert lin[-1]["test_error"] == evaluate(b, *splits["test"]).error
    geo = [r for r in rows if r["path"] == "geodesic_aligned"]
    # normalization and alignment do not change the function: same errors at the ends
    assert geo[0]["train_error"] == lin[0]["train_error"] and geo[-1]["train_error"] == lin[-1]["train_error"]


def test_barrier_of_a_network_with_itself_is_its_train_error(pair):
    data, a, _, an, _ = pair
    splits = {"train": (data.x_train, data.y_train)}
    rows, dists = measure_pair(a, a, an, an, splits, [0.0, 0.25, 0.5, 0.75, 1.0])
    own = evaluate(a, *splits["train"]).error
    for path in ("linear", "linear_aligned", "geodesic_aligned"):
        assert max(r["train_error"] for r in rows if r["path"] == path) == own
    for d in dists:
        assert d["distance"] == pytest.approx(0.0, abs=1e-6), d


def test_alignment_shrinks_the_distance(pair):
    _, a, b, an, bn = pair
    d = representation_distances(
        a.state_dict(), b.state_dict(), an.state_dict(), bn.state_dict(), symmetry.structure(a)
    )
    assert d["aligned"] < d["raw"] and d["normalized_aligned"] < d["normalized"]
    assert d["geodesic_aligned"] < d["geodesic"]


def test_bend_paths_pass_through_the_endpoints_and_the_bend(pair):
    _, a, b, an, bn = pair
    s = symmetry.structure(a)
    sa, sb, san, sbn = (m.state_dict() for m in (a, b, an, bn))
    inits = midpoint.initial_midpoints(midpoint.aligned_ends(sa, sb, san, sbn, s), s)
    xs = [0.0, 0.5, 1.0]
    for variant in midpoint.VARIANTS:
        m = inits[variant]
        end_a = san if variant == "geodesic_aligned" else sa
        perms = symmetry.match_state(san, sbn, s)
        end_b = {
            "linear": sb,
            "linear_aligned": symmetry.permute_state(sb, s, perms),
            "geodesic_aligned": symmetry.permute_state(sbn, s, perms),
        }[variant]
        points, positions, segments = midpoint.bend_path(variant, end_a, m, end_b, xs, s)
        assert len(points) == 5 and segments == [1, 1, 1, 2, 2]
        assert positions[0] == 0.0 and positions[-1] == pytest.approx(1.0) and positions == sorted(positions)
        for k in sa:
            torch.testing.assert_close(points[0][k], end_a[k])
            torch.testing.assert_close(points[-1][k], end_b[k])
    # the geodesic variant's initial midpoint is on the toroid
    g = inits["geodesic_aligned"]
    for grp in s.hidden:
        torch.testing.assert_close(g[grp.weight].norm(dim=1), torch.ones(grp.size))


def test_section_plane_contains_its_three_points(pair):
    _, a, b, an, bn = pair
    s = symmetry.structure(a)
    p0, p1 = a.state_dict(), b.state_dict()
    p2 = symmetry.permute_state(p1, s, symmetry.match(an, bn))
    pl = sections.plane(p0, p1, p2)
    assert float(pl.u @ pl.v) == pytest.approx(0.0, abs=1e-12)
    assert float(pl.u.norm()) == pytest.approx(1.0) and float(pl.v.norm()) == pytest.approx(1.0)
    for p in (p0, p1, p2):
        back = pl.point(*pl.coordinates(p))
        for k in p:
            torch.testing.assert_close(back[k], p[k], atol=1e-5, rtol=1e-5)
    assert pl.coordinates(p0) == (0.0, 0.0)
    alphas, betas = sections.grid_axes([pl.coordinates(p) for p in (p0, p1, p2)], 5, 0.1)
    assert alphas[0] < 0 < alphas[-1] and len(list(pl.grid(alphas, betas))) == 25
