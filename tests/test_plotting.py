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


def test_prepare_local_energy_mean_and_std_over_models():
    le = pd.DataFrame(
        {
            "experiment": ["e"] * 4 + ["other"],
            "model_id": ["a", "a", "b", "b", "c"],
            "sampler": ["sgd"] * 5,
            "sigma": [0.0, 0.1, 0.0, 0.1, 0.1],
            "delta_mean": [0.0, 0.2, 0.0, 0.4, 9.0],
        }
    )
    agg = plotting.prepare_local_energy(le, "e").set_index("sigma")
    assert agg.loc[0.1, "mean"] == pytest.approx(0.3) and agg.loc[0.1, "n"] == 2
    assert agg.loc[0.1, "std"] == pytest.approx(0.141421356, rel=1e-6)
    assert agg.loc[0.0, "std"] == 0.0  # two equal values, not NaN


def _section_rows(pair, ptype, exp="e"):
    grid = [
        {
            "experiment": exp,
            "pair": pair,
            "pair_type": ptype,
            "representation": "raw",
            "kind": "grid",
            "alpha": a,
            "beta": b,
            "train_error": 0.01 * (a + 2 * b),
        }
        for a in (0.0, 1.0)
        for b in (0.0, 1.0, 2.0)
    ]
    return grid


def test_section_pairs_pick_the_papers_types_in_order():
    rows = []
    for pair, ptype in [("p1", "A-A"), ("p2", "R-A"), ("p3", "R-R"), ("p4", "R-A"), ("p5", "S-S")]:
        rows += _section_rows(pair, ptype)
    rows += _section_rows("q", "R-A", exp="other")
    sec = pd.DataFrame(rows)
    assert plotting.section_pairs(sec, "e", ("R-A",)) == ["p2"]  # the first R-A of this experiment
    assert plotting.section_pairs(sec, "e", None) == ["p3", "p5", "p2", "p1"]  # R-R, S-S, R-A, A-A
    assert plotting.section_pairs(sec, "e", ("R-R", "S-S", "A-A"), every=True) == ["p3", "p5", "p1"]
    assert plotting.section_pairs(sec, "e", ("S-A",)) == ["p1"]  # none of them: the first section
    assert plotting.section_pairs(sec, "nothing", ("R-A",)) == []


def test_section_grid_is_beta_by_alpha_in_percent():
    sub = pd.DataFrame(_section_rows("p", "R-R"))
    grid = plotting.section_grid(sub.sample(frac=1.0, random_state=0), "train_error")
    assert list(grid.columns) == [0.0, 1.0] and list(grid.index) == [0.0, 1.0, 2.0]
    assert grid.loc[2.0, 1.0] == pytest.approx(5.0)  # 100 · 0.01 · (1 + 2·2)


def test_triplet_rows_follow_the_requested_experiments_and_samplers():
    trip = pd.DataFrame(
        {
            "triplet": ["x-rsgd", "x-adv", "y-adv", "x-sgd", "x-adv"],
            "experiment": ["x", "x", "y", "x", "x"],
            "sampler": ["rsgd", "adv", "adv", "sgd", "adv"],
        }
    )
    assert plotting.triplet_rows(trip, ["x"], ("adv", "rsgd")) == ["x-adv", "x-rsgd"]
    assert plotting.triplet_rows(trip, ["y", "x"], ("adv",)) == ["y-adv", "x-adv"]
    assert plotting.triplet_rows(trip.iloc[:0], ["x"], ("adv",)) == []


def test_binary_paths_are_scaled_by_the_types_hamming_distance():
    paths = pd.DataFrame(
        _path_rows("p", "S-S", [0.0, 0.5, 0.0], "random_aligned", order=0)
        + _path_rows("q", "S-S", [0.0, 0.3, 0.0], "random_aligned", order=0)
    )
    dist = pd.DataFrame(
        {
            "experiment": ["e"] * 4,
            "pair_type": ["S-S"] * 4,
            "between": ["endpoints"] * 4,
            "representation": ["hamming_aligned", "hamming_aligned", "hamming", "hamming"],
            "distance": [0.2, 0.4, 0.5, 0.5],
        }
    )
    agg = plotting.prepare_binary_paths(paths, dist, "e", "random_aligned")
    assert agg["hamming"].tolist() == pytest.approx([0.0, 0.15, 0.3])  # x · mean aligned distance 0.3
    assert agg["mean"].tolist() == pytest.approx([0.0, 40.0, 0.0])


def test_binary_legend_states_mean_and_std_of_test_error():
    models = pd.DataFrame(
        {"experiment": ["e"] * 3, "sampler": ["rsgd", "rsgd", "adv"], "test_error": [0.100, 0.104, 0.2]}
    )
    assert plotting.binary_legend(models, "e") == {
        "rsgd": "RSGD: test 10.2 ± 0.3%",
        "adv": "ADV: test 20.0 ± 0.0%",
    }
