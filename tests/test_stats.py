"""Rank correlations against hand computations, seeded bootstrap CIs, degenerate inputs, the per-experiment
and pooled flatness-generalization table, and the distance/barrier summary per pair type."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from toroids.stats import (
    correlation,
    distance_barrier_relation,
    flatness_at,
    flatness_generalization,
    pair_type_key,
)

# A fixed small table with ties in both variables.
X = [0.10, 0.40, 0.20, 0.20, 0.90, 0.50, 0.70, 0.30]
Y = [1.0, 3.0, 2.0, 4.0, 8.0, 3.0, 7.0, 2.0]


def _average_ranks(a):
    """1-based ranks, ties get the mean of the ranks they span."""
    order = sorted(range(len(a)), key=lambda i: a[i])
    ranks = [0.0] * len(a)
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and a[order[j + 1]] == a[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((p - ma) * (q - mb) for p, q in zip(a, b))
    return cov / math.sqrt(sum((p - ma) ** 2 for p in a) * sum((q - mb) ** 2 for q in b))


def _spearman_by_hand(x, y):
    return _pearson(_average_ranks(x), _average_ranks(y))


def _kendall_b_by_hand(x, y):
    """τ_b = (C − D) / sqrt((n0 − n_x)(n0 − n_y)): concordant/discordant pairs counted, ties in x / y."""
    c = d = tx = ty = 0
    pairs = list(itertools.combinations(range(len(x)), 2))
    for i, j in pairs:
        dx, dy = x[i] - x[j], y[i] - y[j]
        tx += dx == 0
        ty += dy == 0
        if dx * dy > 0:
            c += 1
        elif dx * dy < 0:
            d += 1
    n0 = len(pairs)
    return (c - d) / math.sqrt((n0 - tx) * (n0 - ty))


@pytest.mark.parametrize(
    ("method", "by_hand"), [("spearman", _spearman_by_hand), ("kendall", _kendall_b_by_hand)]
)
def test_point_estimates_match_hand_computation(method, by_hand):
    r = correlation(X, Y, method, n_resamples=500, seed=0)
    assert r["method"] == method and r["n"] == len(X)
    assert r["rho"] == pytest.approx(by_hand(X, Y), abs=1e-12)
    assert 0 < r["pvalue"] < 1
    assert r["note"] == ""


def test_hand_values_are_what_we_think():
    """Guard the hand formulas themselves on a table small enough to check on paper."""
    assert _spearman_by_hand([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert _kendall_b_by_hand([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert _kendall_b_by_hand([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(2 * 3))


@pytest.mark.parametrize("method", ["spearman", "kendall"])
@pytest.mark.parametrize("ci_method", ["percentile", "BCa"])
def test_ci_contains_estimate_and_is_reproducible(method, ci_method):
    a = correlation(X, Y, method, n_resamples=1000, seed=7, ci_method=ci_method)
    b = correlation(X, Y, method, n_resamples=1000, seed=7, ci_method=ci_method)
    c = correlation(X, Y, method, n_resamples=1000, seed=8, ci_method=ci_method)
    assert a == b
    assert (c["ci_low"], c["ci_high"]) != (a["ci_low"], a["ci_high"])
    assert -1 <= a["ci_low"] <= a["rho"] <= a["ci_high"] <= 1
    dropped = int(a["note"].split(" of ")[0]) if a["note"] else 0
    assert a["n_boot"] + dropped == 1000


def test_ci_shrinks_with_more_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    small = correlation(x[:10], y[:10], "spearman", n_resamples=500, seed=0)
    large = correlation(x, y, "spearman", n_resamples=500, seed=0)
    assert large["ci_high"] - large["ci_low"] < small["ci_high"] - small["ci_low"]


@pytest.mark.parametrize(
    ("x", "y", "note"),
    [
        ([1.0, 2.0], [3.0, 4.0], "n = 2 < 3"),
        ([], [], "n = 0 < 3"),
        ([1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0], "constant y"),
        ([2.0, 2.0, 2.0], [5.0, 5.0, 5.0], "constant x and y"),
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], "1 pair(s) with NaN dropped; n = 2 < 3"),
    ],
)
@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_degenerate_inputs_give_nan_and_a_note(x, y, note, method):
    r = correlation(x, y, method, n_resamples=100, seed=0)
    assert all(math.isnan(r[k]) for k in ("rho", "pvalue", "ci_low", "ci_high"))
    assert r["note"] == note and r["n_boot"] == 0


def test_degenerate_resamples_are_dropped_and_counted():
    r = correlation([1.0, 2.0, 3.0], [1.0, 3.0, 2.0], "kendall", n_resamples=400, seed=0, ci_method="BCa")
    assert r["rho"] == pytest.approx(1 / 3)
    assert 0 < r["n_boot"] < 400
    assert "resamples degenerate" in r["note"] and "BCa undefined" in r["note"]
    assert math.isfinite(r["ci_low"]) and math.isfinite(r["ci_high"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        correlation(X, Y, "pearson")
    with pytest.raises(ValueError, match="ci_method"):
        correlation(X, Y, ci_method="basic")
    with pytest.raises(ValueError, match="equal length"):
        correlation([1, 2, 3], [1, 2])


# ---------------------------------------------------------------------------------------------------------
# Tables


def _tables():
    """Two experiments × 3 samplers × 3 seeds (δE and test error increasing rsgd → sgd → adv, with noise),
    local energy at two σ, a Hessian trace for all but one model."""
    rng = np.random.default_rng(3)
    models, le, sh = [], [], []
    for exp in ("mlp-digits", "lenet-digits"):
        for k, sampler in enumerate(("rsgd", "sgd", "adv")):
            for seed in range(3):
                mid = f"{exp}-{sampler}-s{seed}"
                delta = 0.05 * (k + 1) + 0.02 * rng.random()
                test = 0.1 + 0.02 * k + 0.03 * rng.random() + (0.2 if exp == "lenet-digits" else 0.0)
                models.append({"model_id": mid, "experiment": exp, "sampler": sampler, "test_error": test,
                               "is_solution": seed != 2 or sampler != "adv"})  # fmt: skip
                for sigma in (0.0, 0.5):
                    le.append({"model_id": mid, "sigma": sigma, "delta_mean": delta * (sigma > 0),
                               "delta_std": 0.01})  # fmt: skip
                if mid != "lenet-digits-adv-s2":
                    sh.append({"model_id": mid, "trace": 10 * delta + rng.random()})
    return pd.DataFrame(models), pd.DataFrame(le), pd.DataFrame(sh)


def test_flatness_generalization_per_experiment_and_pooled():
    models, le, sh = _tables()
    out = flatness_generalization(models, le, 0.5, sh, n_resamples=300, seed=1)
    assert len(out) == 3 * 2 * 2  # (2 experiments + all) × 2 measures × 2 methods
    assert set(out["experiment"]) == {"mlp-digits", "lenet-digits", "all"}
    merged = models.merge(flatness_at(le, 0.5), on="model_id").merge(sh, on="model_id", how="left")
    for exp, sub in [("mlp-digits", merged[merged.experiment == "mlp-digits"]), ("all", merged)]:
        row = out[
            (out.experiment == exp) & (out.measure == "local_energy") & (out.method == "spearman")
        ].iloc[0]
        assert row["rho"] == pytest.approx(_spearman_by_hand(list(sub.delta_mean), list(sub.test_error)))
        assert row["n"] == len(sub) and row["samplers"] == "rsgd,sgd,adv"
        assert row["ci_low"] <= row["rho"] <= row["ci_high"]
    pooled = out[(out.experiment == "all") & (out.measure == "local_energy") & (out.method == "kendall")]
    assert pooled["n"].iloc[0] == 18
    assert pooled["rho"].iloc[0] == pytest.approx(
        _kendall_b_by_hand(list(merged.delta_mean), list(merged.test_error))
    )
    lenet_trace = out[(out.experiment == "lenet-digits") & (out.measure == "hessian_trace")]
    assert (lenet_trace["n"] == 8).all() and lenet_trace["note"].str.contains("NaN dropped").all()
    again = flatness_generalization(models, le, 0.5, sh, n_resamples=300, seed=1)
    pd.testing.assert_frame_equal(out, again)


def test_flatness_generalization_options_and_errors():
    models, le, _ = _tables()
    out = flatness_generalization(
        models, le, 0.5, methods=("spearman",), n_resamples=100, solutions_only=True
    )
    assert set(out["measure"]) == {"local_energy"} and set(out["method"]) == {"spearman"}
    assert out.loc[out.experiment == "all", "n"].iloc[0] == 16
    assert out["note"].str.contains("2 non-solution model").all()
    with pytest.raises(ValueError, match="no local energy"):
        flatness_generalization(models, le, 0.3)
    with pytest.raises(ValueError, match="several local-energy rows"):
        flatness_generalization(models, pd.concat([le, le]), 0.5)


def test_single_model_experiment_is_nan_not_an_error():
    models, le, _ = _tables()
    one = models[models.model_id == "mlp-digits-sgd-s0"]
    out = flatness_generalization(one, le, 0.5, n_resamples=50)
    assert out["rho"].isna().all() and (out["note"] == "n = 1 < 3").all()


def test_pair_type_order():
    types = ["A-A", "S-A", "R-R", "M-M", "S-S", "R-A", "R-S"]
    assert sorted(types, key=pair_type_key) == ["R-R", "R-S", "S-S", "R-A", "S-A", "A-A", "M-M"]


def test_distance_barrier_relation():
    le = pd.DataFrame(
        [{"model_id": m, "sigma": 0.5, "delta_mean": v, "delta_std": 0.0}
         for m, v in {"r0": 0.1, "r1": 0.3, "s0": 0.5, "s1": 0.7}.items()]
    )  # fmt: skip
    pairs = [("r0", "r1", "R-R"), ("r0", "s0", "R-S"), ("r1", "s1", "R-S"), ("s0", "s1", "S-S")]
    dist, bar = [], []
    for i, (a, b, t) in enumerate(pairs):
        base = {"experiment": "e", "pair": f"{a}__{b}", "left": a, "right": b, "pair_type": t}
        dist += [{**base, "representation": "normalized_aligned", "distance": 1.0 + i},
                 {**base, "representation": "raw", "distance": 99.0}]  # fmt: skip
        bar += [{**base, "path": "geodesic_aligned", "barrier": 0.1 * (i + 1)},
                {**base, "path": "linear", "barrier": 0.9}]  # fmt: skip
    out = distance_barrier_relation(pd.DataFrame(dist), pd.DataFrame(bar), le, 0.5)
    assert list(out["pair_type"]) == ["R-R", "R-S", "S-S"]
    rs = out[out.pair_type == "R-S"].iloc[0]
    assert rs["n_pairs"] == 2 and rs["distance_mean"] == pytest.approx(2.5)
    assert rs["distance_std"] == pytest.approx(math.sqrt(0.5))
    assert rs["barrier_mean"] == pytest.approx(0.25) and rs["barrier_std"] == pytest.approx(math.sqrt(0.005))
    assert rs["flatness_left"] == pytest.approx(0.2) and rs["flatness_right"] == pytest.approx(0.6)
    assert rs["flatness_mean"] == pytest.approx(0.4)
    rr = out[out.pair_type == "R-R"].iloc[0]
    assert math.isnan(rr["distance_std"]) and rr["flatness_mean"] == pytest.approx(0.2)
    assert set(out["representation"]) == {"normalized_aligned"} and set(out["path"]) == {"geodesic_aligned"}
    # a pair without a barrier still counts, its barrier is NaN
    out2 = distance_barrier_relation(pd.DataFrame(dist), pd.DataFrame(bar[:-2]), le, 0.5)
    ss = out2[out2.pair_type == "S-S"].iloc[0]
    assert ss["n_pairs"] == 1 and ss["n_barrier"] == 0 and math.isnan(ss["barrier_mean"])


def test_distance_barrier_relation_without_pairs():
    le = pd.DataFrame([{"model_id": "s0", "sigma": 0.5, "delta_mean": 0.1, "delta_std": 0.0}])
    out = distance_barrier_relation(pd.DataFrame(), pd.DataFrame(), le, 0.5)
    assert out.empty and "barrier_mean" in out.columns
