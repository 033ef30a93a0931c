"""Statistics of the study: rank correlations with seeded bootstrap confidence intervals, flatness against
generalization, and the distance/barrier/flatness summary per pair type.

Correlations
    Spearman's ρ (Pearson correlation of the average ranks, ties averaged) and Kendall's τ_b
    (Σ_{i<j} sgn(x_i−x_j) sgn(y_i−y_j) / sqrt(n_x n_y), n_x the number of pairs not tied in x), point
    estimates and p-values from ``scipy.stats.spearmanr`` / ``kendalltau``. The confidence interval is a
    paired bootstrap: ``scipy.stats.bootstrap(..., paired=True, rng=np.random.default_rng(seed))`` resamples
    the *observations* (the (x_i, y_i) pairs) with replacement, ``n_resamples`` times, and recomputes the
    statistic with a vectorized implementation of the same formula. A resample in which x or y is constant
    has no correlation (0/0); such resamples are dropped and counted (``n_boot``, ``note``), and the
    percentile interval is taken over the others. BCa (``ci_method="BCa"``) is used as asked when every
    resample is defined and scipy's BCa interval is finite; otherwise the percentile interval is reported and
    the note says so. Degenerate data — fewer than 3 finite pairs, or a constant variable — give NaN for
    every number and say why in ``note``; nothing raises.

Sign convention
    Both flatness measures grow with *sharpness* (local energy δE: the train error added by noise; the Hessian
    trace: curvature), and test error grows with worse generalization, so "flatter minima generalize better"
    is a **positive** correlation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from toroids.study import SAMPLER_LETTER, SAMPLER_ORDER

__all__ = [
    "METHODS",
    "PAIR_LEVELS",
    "correlation",
    "distance_barrier_relation",
    "flatness_at",
    "flatness_generalization",
    "pair_type_key",
    "star_label",
]

METHODS = ("spearman", "kendall")
CI_METHODS = ("percentile", "BCa")

#: Fig. 2 (c): barrier (and distance) levels of the paper's pair types, R-R < R-S ≈ S-S < R-A ≈ S-A < A-A
PAIR_LEVELS = {"R-R": 0, "R-S": 1, "S-S": 1, "R-A": 2, "S-A": 2, "A-A": 3}


def pair_type_key(pair_type: str) -> tuple[int, int, str]:
    """Sort key giving the paper's order R-R, R-S, S-S, R-A, S-A, A-A (then the other samplers' types)."""
    rank = {SAMPLER_LETTER[s]: i for i, s in enumerate(SAMPLER_ORDER)}
    left, _, right = pair_type.partition("-")
    return (rank.get(right, len(rank)), rank.get(left, len(rank)), pair_type)


# ---------------------------------------------------------------------------------------------------------
# Correlations


def _rank(a: np.ndarray) -> np.ndarray:
    return sps.rankdata(a, axis=-1)


def _pearson_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis; NaN where either side is constant."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(-1) / den
    return np.where(den > 0, np.clip(r, -1.0, 1.0), np.nan)


def _spearman_vec(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    return _pearson_last(_rank(x), _rank(y))


def _kendall_vec(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """τ_b along ``axis``: Σ sgn(Δx) sgn(Δy) / sqrt(Σ|sgn Δx| Σ|sgn Δy|) over all ordered pairs i ≠ j."""
    x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
    sx = np.sign(x[..., :, None] - x[..., None, :])
    sy = np.sign(y[..., :, None] - y[..., None, :])
    den = np.sqrt(np.abs(sx).sum((-2, -1)) * np.abs(sy).sum((-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (sx * sy).sum((-2, -1)) / den
    return np.where(den > 0, np.clip(t, -1.0, 1.0), np.nan)


_VEC = {"spearman": _spearman_vec, "kendall": _kendall_vec}


def _nan_result(method: str, n: int, note: str) -> dict[str, Any]:
    nan = float("nan")
    return {"method": method, "rho": nan, "pvalue": nan, "ci_low": nan, "ci_high": nan, "n": n,
            "n_boot": 0, "note": note}  # fmt: skip


def correlation(
    x: Sequence[float] | np.ndarray | pd.Series,
    y: Sequence[float] | np.ndarray | pd.Series,
    method: str = "spearman",
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    ci_method: str = "percentile",
) -> dict[str, Any]:
    """Rank correlation of (x, y) with a paired, seeded bootstrap CI (module doc).

    Returns ``{"method", "rho", "pvalue", "ci_low", "ci_high", "n", "n_boot", "note"}``: ``rho`` is
    Spearman's ρ or Kendall's τ_b, ``n`` the number of pairs with both values finite (pairs with a NaN are
    dropped, and the note says how many), ``n_boot`` the number of bootstrap resamples with a defined
    statistic, ``note`` an empty string when all went as asked.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if ci_method not in CI_METHODS:
        raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {xa.shape} and {ya.shape}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    notes = [f"{int((~keep).sum())} pair(s) with NaN dropped"] if not keep.all() else []
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    if n < 3:
        return _nan_result(method, n, "; ".join([*notes, f"n = {n} < 3"]))
    constant = [name for name, a in (("x", xa), ("y", ya)) if np.all(a == a[0])]
    if constant:
        return _nan_result(method, n, "; ".join([*notes, f"constant {' and '.join(constant)}"]))

    if method == "spearman":
        res = sps.spearmanr(xa, ya)
    else:
        res = sps.kendalltau(xa, ya)
    rho, pvalue = float(res.statistic), float(res.pvalue)

    vec = _VEC[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples: handled below
        boot = sps.bootstrap(
            (xa, ya),
            vec,
            n_resamples=n_resamples,
            batch=max(1, min(n_resamples, 1_000_000 // (n * n))),
            vectorized=True,
            paired=True,
            confidence_level=confidence,
            method=ci_method,
            rng=np.random.default_rng(seed),
        )
    dist = np.asarray(boot.bootstrap_distribution, dtype=float)
    valid = dist[np.isfinite(dist)]
    lo, hi = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    if len(valid) < len(dist):
        notes.append(f"{len(dist) - len(valid)} of {len(dist)} resamples degenerate (constant), dropped")
    if len(valid) < len(dist) or not (math.isfinite(lo) and math.isfinite(hi)):
        if ci_method != "percentile":
            notes.append(f"{ci_method} undefined: percentile interval")
        alpha = (1 - confidence) / 2
        lo, hi = (float(q) for q in np.quantile(valid, [alpha, 1 - alpha])) if len(valid) else (math.nan,) * 2
    return {"method": method, "rho": rho, "pvalue": pvalue, "ci_low": lo, "ci_high": hi, "n": n,
            "n_boot": len(valid), "note": "; ".join(notes)}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Flatness and generalization


def flatness_at(local_energy: pd.DataFrame, sigma_star: float | None = None) -> pd.DataFrame:
    """``model_id, delta_mean, delta_std`` at σ* (``np.isclose``); a model with two rows there is an error.

    A table with an ``is_star`` column (the workflow's: each model's own star, its experiment's σ* or the
    flip fraction ε* of a binary network, :func:`toroids.tables.mark_star`) is read by that column;
    ``sigma_star`` is for a table without one."""
    if "is_star" in local_energy.columns:
        at = local_energy[local_energy["is_star"].astype(bool)]
    elif sigma_star is None:
        raise ValueError("a local-energy table without is_star needs a sigma_star")
    else:
        at = local_energy[np.isclose(local_energy["sigma"].astype(float), sigma_star)]
    at = at[["model_id", "delta_mean", "delta_std"]]
    dup = at["model_id"][at["model_id"].duplicated()].unique().tolist()
    if dup:
        raise ValueError(f"several local-energy rows at σ*={sigma_star} for {dup}")
    return at


def star_label(local_energy: pd.DataFrame, model_ids: Iterable[str], sigma_star: float | None = None) -> str:
    """The star(s) at which ``model_ids`` are compared, as text: ``"0.5"``, or ``"0.25, 0.5"`` when they
    differ (the ``is_star`` rows' σ or ε; ``sigma_star`` for a table without ``is_star``)."""
    if "is_star" not in local_energy.columns:
        return "" if sigma_star is None else f"{sigma_star:g}"
    rows = local_energy[local_energy["is_star"].astype(bool) & local_energy["model_id"].isin(list(model_ids))]
    return ", ".join(f"{v:g}" for v in sorted(set(rows["sigma"].astype(float))))


def flatness_generalization(
    models: pd.DataFrame,
    local_energy: pd.DataFrame,
    sigma_star: float | None = None,
    sharpness: pd.DataFrame | None = None,
    *,
    methods: Sequence[str] = METHODS,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    ci_method: str = "percentile",
    solutions_only: bool = False,
) -> pd.DataFrame:
    """Correlation between flatness and test error, per experiment and pooled (``experiment == "all"``).

    Inputs: ``models`` (model_id, experiment, sampler, test_error; is_solution when ``solutions_only``),
    ``local_energy`` (model_id, sigma, delta_mean, delta_std), and optionally ``sharpness`` (model_id,
    trace: the Hessian trace of :func:`toroids.sharpness.hessian_trace`). Measures: ``local_energy`` = δE
    at σ* and, when given, ``hessian_trace``. Every model must have a local energy at σ* (else ValueError,
    as in the figures); a model without a trace only drops out of the trace rows (noted).

    One row per (experiment, measure, method): experiment, measure, method, rho, pvalue, ci_low, ci_high, n,
    n_boot, note, samplers (those present, paper order), sigma_star (:func:`star_label` of the experiment's
    models: with ``is_star``, each experiment's own), confidence, n_resamples, seed. Every
    call uses the same ``seed``, so Spearman and Kendall see the same resamples. The pooled row mixes the
    between-experiment differences of test error (different data sets) into the correlation; the
    per-experiment rows are the primary result.
    """
    frame = models
    excluded = 0
    if solutions_only:
        mask = frame["is_solution"].astype(bool)
        excluded = int((~mask).sum())
        frame = frame[mask]
    at = flatness_at(local_energy, sigma_star)
    frame = frame.merge(at, on="model_id", how="left", validate="one_to_one")
    missing = frame.loc[frame["delta_mean"].isna(), "model_id"].tolist()
    if missing:
        raise ValueError(f"no local energy at σ* for {missing}")
    measures = {"local_energy": "delta_mean"}
    if sharpness is not None:
        tr = sharpness[["model_id", "trace"]].rename(columns={"trace": "hessian_trace"})
        frame = frame.merge(tr, on="model_id", how="left", validate="one_to_one")
        measures["hessian_trace"] = "hessian_trace"

    rows = []
    groups = [(exp, g) for exp, g in frame.groupby("experiment", sort=True)] + [("all", frame)]
    for exp, g in groups:
        samplers = ",".join(s for s in SAMPLER_ORDER if s in set(g["sampler"])) if len(g) else ""
        for measure, column in measures.items():
            for method in methods:
                r = correlation(g[column], g["test_error"], method, n_resamples, seed, confidence, ci_method)
                note = r["note"]
                if excluded:
                    note = "; ".join(filter(None, [note, f"{excluded} non-solution model(s) excluded"]))
                rows.append({"experiment": exp, "measure": measure, **r, "note": note, "samplers": samplers,
                             "sigma_star": star_label(local_energy, g["model_id"], sigma_star),
                             "confidence": confidence, "n_resamples": n_resamples,
                             "seed": seed})  # fmt: skip
    columns = ["experiment", "measure", "method", "rho", "pvalue", "ci_low", "ci_high", "n", "n_boot", "note",
               "samplers", "sigma_star", "confidence", "n_resamples", "seed"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------------------
# Distances, barriers and flatness per pair type


def _with_columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df``, or an empty frame with ``columns`` when ``df`` has no rows (``concat_csv`` of no files)."""
    if df.empty and not set(columns) <= set(df.columns):
        return pd.DataFrame(columns=columns)
    return df


def distance_barrier_relation(
    distances: pd.DataFrame,
    barriers: pd.DataFrame,
    local_energy: pd.DataFrame,
    sigma_star: float | None = None,
    *,
    representation: str = "normalized_aligned",
    path: str = "geodesic_aligned",
    barrier_column: str = "barrier",
) -> pd.DataFrame:
    """Per (experiment, pair type): distance and barrier statistics and the flatness of the endpoints.

    Inputs: ``distances`` (experiment, pair, left, right, pair_type, representation, distance), ``barriers``
    (experiment, pair, left, right, pair_type, path, ``barrier_column``), ``local_energy`` (model_id, sigma,
    delta_mean). Only the rows of ``representation`` and ``path`` are used; an empty table (no pairs) gives
    an empty result.

    One row per (experiment, pair_type), pair types in the paper's order: n_pairs (pairs seen in either
    table), distance_mean, distance_std, n_distance, barrier_mean, barrier_std, n_barrier (std with ddof 1,
    NaN for one pair), flatness_left, flatness_right (mean δE(σ*) of the left / right endpoints over the
    pairs), flatness_mean (mean over pairs of the mean of the two endpoints' δE(σ*); NaN when an endpoint has
    no local energy at σ*), representation, path, sigma_star (:func:`star_label` of the endpoints).
    """
    keys = ["experiment", "pair", "left", "right", "pair_type"]
    if "between" in distances.columns:  # the workflow's table also holds endpoint–midpoint distances
        distances = distances[distances["between"] == "endpoints"]
    distances = _with_columns(distances, [*keys, "representation", "distance"])
    barriers = _with_columns(barriers, [*keys, "path", barrier_column])
    d = distances[distances["representation"] == representation][[*keys, "distance"]]
    b = barriers[barriers["path"] == path][[*keys, barrier_column]]
    b = b.rename(columns={barrier_column: "barrier"})
    pairs = d.merge(b, on=keys, how="outer", validate="one_to_one")
    flat = flatness_at(local_energy, sigma_star).set_index("model_id")["delta_mean"]
    pairs["flatness_left"] = pairs["left"].map(flat)
    pairs["flatness_right"] = pairs["right"].map(flat)
    pairs["flatness_pair"] = (pairs["flatness_left"] + pairs["flatness_right"]) / 2

    rows = []
    for (exp, ptype), g in pairs.groupby(["experiment", "pair_type"], sort=False):
        rows.append({
            "experiment": exp, "pair_type": ptype, "n_pairs": len(g),
            "distance_mean": g["distance"].mean(), "distance_std": g["distance"].std(ddof=1),
            "n_distance": int(g["distance"].notna().sum()),
            "barrier_mean": g["barrier"].mean(), "barrier_std": g["barrier"].std(ddof=1),
            "n_barrier": int(g["barrier"].notna().sum()),
            "flatness_left": g["flatness_left"].mean(), "flatness_right": g["flatness_right"].mean(),
            "flatness_mean": g["flatness_pair"].mean(skipna=False),
            "representation": representation, "path": path,
            "sigma_star": star_label(local_energy, set(g["left"]) | set(g["right"]), sigma_star),
        })  # fmt: skip
    columns = ["experiment", "pair_type", "n_pairs", "distance_mean", "distance_std", "n_distance",
               "barrier_mean", "barrier_std", "n_barrier", "flatness_left", "flatness_right", "flatness_mean",
               "representation", "path", "sigma_star"]  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    if len(out):
        key = [(e, pair_type_key(t)) for e, t in zip(out["experiment"], out["pair_type"])]
        out = out.iloc[sorted(range(len(out)), key=key.__getitem__)].reset_index(drop=True)
    return out
