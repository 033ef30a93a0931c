"""The figures' data preparation and the tables' aggregation, on known rows (the data, not the pixels)."""

import pandas as pd
import pytest

from toroids import plotting, tables


def _path_rows(pair, ptype, errors, path="linear", order=None, exp="e"):
    n = len(errors)
    return [
        {
            "experiment": exp,
            "pair": pair,
            "left": "l",
            "right": "r",
            "pair_type": ptype,
            "path": path,
            "x": i / (n - 1),
            "train_error": e,
            "test_error": e,
            **({"order": order} if order is not None else {}),
        }
        for i, e in enumerate(errors)
    ]


def test_prepare_paths_mean_and_std_over_pairs():
    rows = _path_rows("p1", "S-S", [0.0, 0.2, 0.0]) + _path_rows("p2", "S-S", [0.0, 0.4, 0.0])
    agg = plotting.prepare_paths(pd.DataFrame(rows), "linear")
    mid = agg[agg["x"] == 0.5].iloc[0]
    assert mid["mean"] == pytest.approx(30.0) and mid["std"] == pytest.approx(14.142135, rel=1e-6)
    assert mid["n"] == 2 and list(agg["x"]) == [0.0, 0.5, 1.0]


def test_prepare_paths_interpolates_bends_and_averages_orders():
    # two orders of one pair: the curve is their mean before pairs are combined
    rows = _path_rows("p", "A-A", [0.0, 1.0, 0.0], "random", order=0) + _path_rows(
        "p", "A-A", [0.0, 0.5, 0.0], "random", order=1
    )
    agg = plotting.prepare_paths(pd.DataFrame(rows), "random")
    assert agg[agg["x"] == 0.5]["mean"].iloc[0] == pytest.approx(75.0)
    # bends at pair-dependent x: interpolated onto a common grid
    pts = {"p": [(0.0, 0.0), (0.25, 0.1), (1.0, 0.0)], "q": [(0.0, 0.0), (0.5, 0.1), (1.0, 0.0)]}
    bend = pd.DataFrame(
        [
            {"experiment": "e", "pair": pair, "pair_type": "S-S", "path": "b", "x": x, "train_error": e}
            for pair, xy in pts.items()
            for x, e in xy
        ]
    )
    agg = plotting.prepare_paths(bend, "b", n_grid=5)
    assert list(agg["x"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    p_curve = [0.0, 10.0, 20 / 3, 10 / 3, 0.0]
    q_curve = [0.0, 5.0, 10.0, 5.0, 0.0]
    assert agg["mean"].tolist() == pytest.approx([(a + b) / 2 for a, b in zip(p_curve, q_curve)])


def test_barriers_max_per_order_then_mean():
    rows = _path_rows("p", "A-A", [0.1, 0.5, 0.1], "random", order=0) + _path_rows(
        "p", "A-A", [0.1, 0.3, 0.2, 0.1], "random", order=1
    )
    b = tables.barriers(pd.DataFrame(rows)).iloc[0]
    assert b["barrier"] == pytest.approx(0.4) and b["n_orders"] == 2
    assert b["barrier_std"] == pytest.approx(0.141421356, rel=1e-6)
    assert b["barrier_excess"] == pytest.approx(0.3)
    straight = tables.barriers(pd.DataFrame(_path_rows("q", "S-S", [0.02, 0.3, 0.04]))).iloc[0]
    assert straight["barrier"] == 0.3 and straight["barrier_excess"] == pytest.approx(0.27)
    assert straight["n_orders"] == 1 and straight["x_at_barrier"] == 0.5


def test_prepare_distances_picks_each_representations_midpoint_family():
    base = {"experiment": "e", "pair": "p", "pair_type": "R-S"}
    rows = [
        {**base, "between": "endpoints", "variant": None, "representation": "raw", "distance": 1.0},
        {**base, "between": "left_midpoint", "variant": "linear", "representation": "raw", "distance": 0.4},
        {
            **base,
            "between": "left_midpoint",
            "variant": "geodesic_aligned",
            "representation": "raw",
            "distance": 9,
        },
        {
            **base,
            "between": "left_midpoint",
            "variant": "geodesic_aligned",
            "representation": "normalized_aligned",
            "distance": 0.2,
        },
        {**base, "between": "endpoints", "variant": None, "representation": "geodesic", "distance": 5.0},
    ]
    agg = plotting.prepare_distances(pd.DataFrame(rows)).set_index(["between", "representation"])["mean"]
    assert agg.to_dict() == {
        ("endpoints", "raw"): 1.0,
        ("left_midpoint", "normalized_aligned"): 0.2,
        ("left_midpoint", "raw"): 0.4,
    }


def test_prepare_generalization_uses_each_models_own_star():
    models = pd.DataFrame({"model_id": ["a", "b"], "test_error": [0.1, 0.2]})
    le = pd.DataFrame(
        {
            "model_id": ["a", "a", "b", "b"],
            "sigma": [0.0, 0.5, 0.0, 0.05],
            "delta_mean": [0.0, 0.3, 0.0, 0.07],
            "delta_std": [0, 0.01, 0, 0.02],
            "is_star": [False, True, False, True],
        }
    )
    out = plotting.prepare_generalization(models, le, 0.5).set_index("model_id")["delta_mean"]
    assert out.to_dict() == {"a": 0.3, "b": 0.07}
    with pytest.raises(ValueError, match="b"):
        plotting.prepare_generalization(models, le[le["model_id"] == "a"], 0.5)


def test_prepare_overparameterization_joins_sizes_distances_and_barriers():
    models = pd.DataFrame(
        {
            "model_id": ["c-s0", "c-s1"],
            "experiment": ["c", "c"],
            "arch": ["committee"] * 2,
            "dataset": ["teacher"] * 2,
            "sampler": ["sgd"] * 2,
            "n_params": [500, 500],
            "test_error": [0.2, 0.3],
        }
    )
    le = pd.DataFrame(
        {
            "model_id": ["c-s0", "c-s1"],
            "sigma": [0.05] * 2,
            "delta_mean": [0.1, 0.3],
            "delta_std": [0, 0],
            "is_star": [True, True],
        }
    )
    dist = pd.DataFrame(
        {
            "experiment": ["c", "c"],
            "pair_type": ["S-S"] * 2,
            "between": ["endpoints"] * 2,
            "representation": ["hamming", "hamming_aligned"],
            "distance": [0.5, 0.3],
        }
    )
    bar = pd.DataFrame(
        {
            "experiment": ["c", "c"],
            "pair_type": ["S-S"] * 2,
            "path": ["random", "random_aligned"],
            "barrier": [0.2, 0.1],
        }
    )
    row = plotting.prepare_overparameterization(models, le, dist, bar).iloc[0]
    assert row["n_params"] == 500 and row["test_error"] == pytest.approx(0.25)
    assert row["flatness"] == pytest.approx(0.2)
    assert (row["hamming"], row["hamming_aligned"]) == (0.5, 0.3)
    assert (row["barrier_random"], row["barrier_random_aligned"]) == (0.2, 0.1)
