"""The claims table: one row per headline claim of the paper (digest §6), with a decision rule each.

Every row has ``claim_id``, ``claim`` (the paper's statement), ``statistic`` (what was computed),
``value`` (a compact summary), ``status`` ∈ {"holds", "does not hold", "not measurable at this scale"} and
``detail`` (the numbers behind the decision, per experiment).

Scope
    Claims 1-3 and Fig. 2 (c) are about the continuous networks: they use the experiments whose
    architecture is *not* binary. Claim 4 uses the binary ones: an architecture whose name starts with
    ``binary``, ``perceptron`` or ``committee`` (:data:`BINARY_PREFIXES`). Only the paper's samplers (rsgd,
    sgd, adv) and pair types (R-R, R-S, S-S, R-A, S-A, A-A) enter; sam/esgd/adam models and their pairs are
    ignored here (they are in the correlation tables of :mod:`toroids.stats`).

Orders
    :func:`order_check` tests a partial order given as levels: every item of a lower level must be ≤ every
    item of a higher level, over the items present (an exact tie does not contradict an order, an inversion
    does; the "≈" inside a level is reported, not tested). It is measurable when items of at least two
    levels are present. Samplers: rsgd (0) ≤ sgd (1) ≤ adv (2). Pair types (:data:`PAIR_LEVELS`):
    R-R (0) ≤ {R-S, S-S} (1) ≤ {R-A, S-A} (2) ≤ A-A (3).

Combining
    A claim made of several parts (e.g. distances *and* barriers) "does not hold" as soon as one measured
    part fails, "holds" when every part was measured and holds, and is otherwise "not measurable at this
    scale". A part measured over several experiments holds when it holds in every experiment where it is
    measurable (the paper: "in all models"), except where a rule below says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from toroids.stats import PAIR_LEVELS, correlation, flatness_at, pair_type_key

__all__ = [
    "BEND_PATHS",
    "BINARY_PREFIXES",
    "FAILS",
    "HOLDS",
    "NOT_MEASURABLE",
    "PAIR_LEVELS",
    "SAMPLER_LEVELS",
    "STATUSES",
    "OrderCheck",
    "claims_table",
    "is_binary",
    "order_check",
]

HOLDS, FAILS, NOT_MEASURABLE = "holds", "does not hold", "not measurable at this scale"
STATUSES = (HOLDS, FAILS, NOT_MEASURABLE)

#: Claim 1: the paper's flatness ranking, flattest first
SAMPLER_LEVELS = {"rsgd": 0, "sgd": 1, "adv": 2}
BINARY_PREFIXES = ("binary", "perceptron", "committee")
#: single-bend paths after symmetry removal, preferred first ("linear_bend" is unaligned: not used)
BEND_PATHS = ("geodesic_aligned_bend", "linear_aligned_bend")
#: suffixes of the midpoint distance representations, preferred first (``midpoint_left{suffix}``)
MIDPOINT_SUFFIXES = ("_normalized_aligned", "")
COLUMNS = ["claim_id", "claim", "statistic", "value", "status", "detail"]


def is_binary(arch: str) -> bool:
    """True for the binary networks of the paper's Sec. 5 (perceptron, committee machine, binary nets)."""
    return str(arch).lower().startswith(BINARY_PREFIXES)


# ---------------------------------------------------------------------------------------------------------
# Partial orders


class OrderCheck(NamedTuple):
    """Result of :func:`order_check`: ``holds`` is None when not measurable."""

    measurable: bool
    holds: bool | None
    violations: list[tuple[str, str]]
    text: str


def order_check(values: Mapping[str, float], levels: Mapping[str, int]) -> OrderCheck:
    """Check the partial order ``levels`` on ``values``: value(a) ≤ value(b) whenever level(a) < level(b).

    Items not in ``levels`` or with a non-finite value are ignored. Measurable when the remaining items span
    at least two levels. ``violations`` lists the pairs (a, b) with level(a) < level(b) but value(a) >
    value(b). ``text`` reads e.g. ``R-R 0.1 ≤ R-S 0.2, S-S 0.3 ≤ A-A 0.5``.
    """
    items = {k: float(v) for k, v in values.items() if k in levels and v is not None and math.isfinite(v)}
    ordered = sorted(items, key=lambda k: (levels[k], list(levels).index(k)))
    by_level: dict[int, list[str]] = {}
    for k in ordered:
        by_level.setdefault(levels[k], []).append(k)
    text = " ≤ ".join(", ".join(f"{k} {items[k]:.4g}" for k in ks) for _, ks in sorted(by_level.items()))
    if len(by_level) < 2:
        return OrderCheck(False, None, [], text)
    violations = [(a, b) for a in ordered for b in ordered if levels[a] < levels[b] and items[a] > items[b]]
    if violations:
        text += "; violated: " + ", ".join(f"{a} > {b}" for a, b in violations)
    return OrderCheck(True, not violations, violations, text)


# ---------------------------------------------------------------------------------------------------------
# Helpers


class Part(NamedTuple):
    """One measured part of a claim: status (one of STATUSES), a compact value and a detail text."""

    status: str
    value: str
    detail: str


def _combine(parts: Sequence[Part]) -> str:
    statuses = [p.status for p in parts]
    if FAILS in statuses:
        return FAILS
    if statuses and all(s == HOLDS for s in statuses):
        return HOLDS
    return NOT_MEASURABLE


def _over_experiments(results: Mapping[str, OrderCheck | None]) -> tuple[str, int, int]:
    """(status, n measurable, n holding): holds iff it holds in every experiment where it is measurable."""
    measured = [r for r in results.values() if r is not None and r.measurable]
    held = sum(bool(r.holds) for r in measured)
    if not measured:
        return NOT_MEASURABLE, 0, 0
    return (HOLDS if held == len(measured) else FAILS), len(measured), held


def _usable(df: pd.DataFrame | None, columns: Iterable[str]) -> pd.DataFrame:
    """``df`` if it has ``columns`` (an empty table from ``concat_csv`` has none), else an empty frame."""
    columns = list(columns)
    if df is None or not set(columns) <= set(df.columns):
        return pd.DataFrame(columns=columns)
    return df


def _binary_experiments(models: pd.DataFrame) -> set[str]:
    if "arch" in models.columns:
        return set(models.loc[models["arch"].map(is_binary), "experiment"])
    return {e for e in models["experiment"] if is_binary(e)}


def _restrict(df: pd.DataFrame, binary: set[str], want_binary: bool) -> pd.DataFrame:
    mask = np.array([(e in binary) or is_binary(e) for e in df["experiment"]], dtype=bool)
    return df[mask if want_binary else ~mask]


def _fmt(x: float) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _type_means(df: pd.DataFrame, column: str) -> dict[str, dict[str, float]]:
    """experiment → {pair_type: mean of ``column``} over the paper's pair types."""
    df = df[df["pair_type"].isin(list(PAIR_LEVELS))]
    out: dict[str, dict[str, float]] = {}
    for (exp, ptype), g in df.groupby(["experiment", "pair_type"], sort=True):
        out.setdefault(exp, {})[ptype] = float(g[column].mean())
    return out


def _order_part(means: Mapping[str, Mapping[str, float]], what: str) -> Part:
    checks = {exp: order_check(m, PAIR_LEVELS) for exp, m in means.items()}
    status, n_meas, n_held = _over_experiments(checks)
    detail = "; ".join(f"{exp}: {c.text or 'no pairs'}" for exp, c in sorted(checks.items()))
    if not checks:
        detail = "no pairs"
    value = f"{what} {n_held}/{n_meas} experiments" if n_meas else f"{what}: <2 pair-type levels"
    return Part(status, value, f"{what}: {detail}")


# ---------------------------------------------------------------------------------------------------------
# The claims


def _flatness_ranking(
    models: pd.DataFrame,
    local_energy: pd.DataFrame,
    sigma: float,
    n_resamples: int,
    seed: int,
) -> Part:
    """Claim 1's rule on ``models`` (one family: continuous or binary).

    Per experiment, over the rsgd/sgd/adv models: the mean δE(σ*) and the mean test error per sampler, and
    Spearman's ρ between δE(σ*) and test error over the models (bootstrap CI in the detail). Measurable in an
    experiment when ≥ 2 of the three samplers are present and ρ is defined (≥ 3 models, neither variable
    constant). Holds there when both sampler orders hold (rsgd ≤ sgd ≤ adv over the samplers present, on the
    means) and ρ > 0. The part holds when it holds in every measurable experiment.
    """
    m = models[models["sampler"].isin(list(SAMPLER_LEVELS))]
    le = _usable(local_energy, ["model_id", "sigma", "delta_mean", "delta_std"])
    m = m.merge(flatness_at(le, sigma), on="model_id", how="left")
    n_missing = int(m["delta_mean"].isna().sum())
    m = m[m["delta_mean"].notna()]
    results: dict[str, OrderCheck | None] = {}
    details, rhos = [], []
    for exp, g in m.groupby("experiment", sort=True):
        flat = g.groupby("sampler")["delta_mean"].mean().to_dict()
        test = g.groupby("sampler")["test_error"].mean().to_dict()
        f_ok, t_ok = order_check(flat, SAMPLER_LEVELS), order_check(test, SAMPLER_LEVELS)
        r = correlation(g["delta_mean"], g["test_error"], "spearman", n_resamples, seed)
        rho_ok = math.isfinite(r["rho"])
        measurable = f_ok.measurable and rho_ok
        holds = measurable and bool(f_ok.holds) and bool(t_ok.holds) and r["rho"] > 0
        results[exp] = OrderCheck(measurable, holds if measurable else None, [], "")
        rho_txt = (
            f"ρ_s = {r['rho']:.2f} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}], n = {r['n']}"
            if rho_ok
            else f"ρ_s undefined ({r['note']})"
        )
        if rho_ok:
            rhos.append(r["rho"])
        verdict = "holds" if holds else ("fails" if measurable else "not measurable")
        details.append(f"{exp} [{verdict}]: δE(σ*) {f_ok.text}; test error {t_ok.text}; {rho_txt}")
    status, n_meas, n_held = _over_experiments(results)
    value = (
        f"{n_held}/{n_meas} experiments; median ρ_s = {np.median(rhos):.2f}"
        if n_meas
        else "<2 of rsgd/sgd/adv in every experiment"
    )
    detail = " | ".join(details) if details else "no rsgd/sgd/adv models with a local energy at σ*"
    if n_missing:
        detail += f" | {n_missing} model(s) without δE at σ* = {sigma} left out"
    return Part(status, value, detail)


def _claim_1(models: pd.DataFrame, local_energy: pd.DataFrame, sigma: float, n_res: int, seed: int) -> Part:
    return _flatness_ranking(models, local_energy, sigma, n_res, seed)


def _claim_2(distances: pd.DataFrame, barriers: pd.DataFrame, representation: str, path: str) -> list[Part]:
    """Distances (``representation``) and barriers (``path``) ordered by pair type, in every experiment."""
    d = distances[distances["representation"] == representation]
    b = barriers[barriers["path"] == path]
    return [
        _order_part(_type_means(d, "distance"), f"{representation} distance"),
        _order_part(_type_means(b, "barrier"), f"{path} barrier"),
    ]


def _bend_part(barriers: pd.DataFrame, threshold: float, min_fraction: float) -> Part:
    """Claim 3 (a). Per experiment the first single-bend path of :data:`BEND_PATHS` present (aligned: after
    symmetry removal); per (experiment, pair type) the mean barrier. Holds when at least ``min_fraction`` of
    these groups have a mean barrier < ``threshold`` (the paper: "(near-)zero … with few exceptions")."""
    groups: list[tuple[str, str, str, float]] = []
    for exp, g in barriers[barriers["pair_type"].isin(list(PAIR_LEVELS))].groupby("experiment", sort=True):
        present = [p for p in BEND_PATHS if p in set(g["path"])]
        if not present:
            continue
        sub = g[g["path"] == present[0]]
        for ptype, gg in sub.groupby("pair_type"):
            groups.append((exp, present[0], ptype, float(gg["barrier"].mean())))
    if not groups:
        return Part(
            NOT_MEASURABLE, "no aligned single-bend paths", f"no path named {' or '.join(BEND_PATHS)}"
        )
    below = [g for g in groups if g[3] < threshold]
    frac = len(below) / len(groups)
    status = HOLDS if frac >= min_fraction else FAILS
    groups.sort(key=lambda g: (g[0], pair_type_key(g[2])))
    detail = "; ".join(f"{e} {p} {t} {_fmt(v)}" for e, p, t, v in groups)
    value = f"{len(below)}/{len(groups)} groups < {threshold:g}"
    return Part(
        status, value, f"bend barriers (need ≥ {min_fraction:.0%} of groups < {threshold:g}): {detail}"
    )


def _midpoint_part(distances: pd.DataFrame) -> Part:
    """Claim 3 (b). Representations ``midpoint_left{s}`` / ``midpoint_right{s}``: the distance from the
    optimized midpoint to the left (flatter sampler) / right endpoint, with the first suffix ``s`` of
    :data:`MIDPOINT_SUFFIXES` present on both sides (else any common suffix). Over the mixed pair types
    R-S, R-A, S-A, per experiment: holds when mean(midpoint_left) < mean(midpoint_right) in every group."""
    reps = set(distances["representation"])
    suffixes = {r[len("midpoint_left") :] for r in reps if r.startswith("midpoint_left")}
    suffixes &= {r[len("midpoint_right") :] for r in reps if r.startswith("midpoint_right")}
    if not suffixes:
        return Part(NOT_MEASURABLE, "no midpoint distances", "no midpoint_left/midpoint_right distances")
    suffix = next((s for s in MIDPOINT_SUFFIXES if s in suffixes), sorted(suffixes)[0])
    mixed = [t for t in PAIR_LEVELS if t.split("-")[0] != t.split("-")[1]]
    d = distances[distances["pair_type"].isin(mixed)]
    left = _type_means(d[d["representation"] == f"midpoint_left{suffix}"], "distance")
    right = _type_means(d[d["representation"] == f"midpoint_right{suffix}"], "distance")
    groups = [
        (exp, t, left[exp][t], right[exp][t])
        for exp in sorted(left)
        for t in left[exp]
        if t in right.get(exp, {})
    ]
    if not groups:
        return Part(NOT_MEASURABLE, "no mixed pair types", "midpoint distances only for same-sampler pairs")
    groups.sort(key=lambda g: (g[0], pair_type_key(g[1])))
    closer = [g for g in groups if g[2] < g[3]]
    status = HOLDS if len(closer) == len(groups) else FAILS
    detail = "; ".join(f"{e} {t} left {_fmt(a)} vs right {_fmt(b)}" for e, t, a, b in groups)
    return Part(status, f"{len(closer)}/{len(groups)} closer to flatter", f"midpoint{suffix}: {detail}")


def _claim_4(
    models: pd.DataFrame,
    local_energy: pd.DataFrame,
    barriers: pd.DataFrame,
    sigma: float,
    n_res: int,
    seed: int,
) -> list[Part]:
    """Binary nets: claim 1's rule (at ``sigma``: the flip fraction ε of the binary local energy), and the
    pair-type order of the barriers along every non-bend path present (the paper's binary paths pair
    solutions of one type: R-R ≤ S-S ≤ A-A)."""
    if models.empty:
        return [Part(NOT_MEASURABLE, "no binary networks", "no binary experiments in this study")]
    parts = [_flatness_ranking(models, local_energy, sigma, n_res, seed)]
    b = barriers[~barriers["path"].astype(str).str.endswith("_bend")]
    paths = sorted(set(b["path"]))
    if not paths:
        parts.append(Part(NOT_MEASURABLE, "no binary paths", "no barriers for binary experiments"))
    for p in paths:
        parts.append(_order_part(_type_means(b[b["path"] == p], "barrier"), f"{p} barrier"))
    return parts


def _row(claim_id: str, claim: str, statistic: str, parts: Sequence[Part]) -> dict[str, str]:
    return {
        "claim_id": claim_id,
        "claim": claim,
        "statistic": statistic,
        "value": "; ".join(p.value for p in parts),
        "status": _combine(parts),
        "detail": " || ".join(f"[{p.status}] {p.detail}" for p in parts),
    }


#: the workflow's midpoint distances (``between`` = left_midpoint / right_midpoint, one ``variant`` per
#: path family) read as the representations of :func:`_midpoint_part`: (variant, representation) → suffix
MIDPOINT_VIEW = {("geodesic_aligned", "normalized_aligned"): "_normalized_aligned", ("linear", "raw"): ""}


def midpoint_view(distances: pd.DataFrame) -> pd.DataFrame:
    """Distances as :func:`claims_table` reads them. A table with a ``between`` column (the workflow's
    ``tables/distances.csv``) keeps its endpoint rows as they are and renames the midpoint rows of
    :data:`MIDPOINT_VIEW` to ``midpoint_left{suffix}`` / ``midpoint_right{suffix}``; others pass through."""
    if "between" not in distances.columns:
        return distances
    ends = distances[distances["between"] == "endpoints"]
    mids = distances[distances["between"].isin(["left_midpoint", "right_midpoint"])].copy()
    suffix = [MIDPOINT_VIEW.get((v, r)) for v, r in zip(mids.get("variant", []), mids["representation"])]
    mids["suffix"] = suffix
    mids = mids[mids["suffix"].notna()]
    side = mids["between"].str.split("_").str[0]
    mids["representation"] = "midpoint_" + side + mids["suffix"]
    return pd.concat([ends, mids.drop(columns="suffix")], ignore_index=True)


def claims_table(
    models: pd.DataFrame,
    local_energy: pd.DataFrame,
    barriers: pd.DataFrame,
    distances: pd.DataFrame,
    sigma_star: float,
    *,
    binary_sigma_star: float | None = None,
    distance_representation: str = "normalized_aligned",
    barrier_path: str = "geodesic_aligned",
    bend_threshold: float = 0.01,
    bend_min_fraction: float = 0.8,
    n_resamples: int = 2000,
    seed: int = 0,
    solutions_only: bool = False,
) -> pd.DataFrame:
    """One row per headline claim (ids ``claim_1``..``claim_4``, ``fig2_c``); decision rules:

    * **claim_1** — flatter minima generalize better, RSGD ≻ SGD ≻ ADV. Continuous experiments; per
      experiment the mean δE(σ*) and mean test error per sampler must both follow rsgd ≤ sgd ≤ adv (samplers
      present, ≥ 2 of them) and Spearman ρ(δE(σ*), test error) over the models must be > 0 (≥ 3 models).
    * **claim_2** — in normalized-aligned space flatter minima are closer and geodesic barriers lower:
      per experiment, the mean ``distance_representation`` distance and the mean ``barrier_path`` barrier
      per pair type must both follow R-R ≤ {R-S, S-S} ≤ {R-A, S-A} ≤ A-A (:func:`order_check`).
    * **claim_3** — (a) aligned single-bend paths have (near-)zero barriers: ≥ ``bend_min_fraction`` of the
      (experiment, pair type) mean barriers of ``geodesic_aligned_bend`` (else ``linear_aligned_bend``) are
      < ``bend_threshold``; (b) optimized midpoints are closer to the flatter (left) endpoint: mean
      ``midpoint_left`` < mean ``midpoint_right`` distance in every mixed pair type of every experiment.
    * **claim_4** — binary networks show the same picture: claim 1's rule at ``binary_sigma_star``
      (default ``sigma_star``) on the binary experiments, and the barrier order by pair type along each
      of their (non-bend) paths.
    * **fig2_c** — after symmetry removal barriers rank R-R < R-S ≈ S-S < R-A ≈ S-A < A-A: the
      ``barrier_path`` barrier means per pair type follow the partial order in every experiment.

    Parts combine as in the module doc; a missing table, path or representation makes its part "not
    measurable at this scale". Inputs: ``models`` (model_id, experiment, arch, sampler, test_error;
    is_solution if ``solutions_only``), ``local_energy`` (model_id, sigma, delta_mean, delta_std),
    ``barriers`` (experiment, pair_type, path, barrier), ``distances`` (experiment, pair_type,
    representation, distance); the last two may be empty frames without columns.
    """
    models = _usable(models, ["model_id", "experiment", "sampler", "test_error"])
    if solutions_only and "is_solution" in models.columns:
        models = models[models["is_solution"].astype(bool)]
    barriers = _usable(barriers, ["experiment", "pair_type", "path", "barrier"])
    distances = _usable(midpoint_view(distances), ["experiment", "pair_type", "representation", "distance"])
    binary = _binary_experiments(models)

    def cont(df: pd.DataFrame) -> pd.DataFrame:
        return _restrict(df, binary, False)

    def bina(df: pd.DataFrame) -> pd.DataFrame:
        return _restrict(df, binary, True)

    eps = sigma_star if binary_sigma_star is None else binary_sigma_star

    rows = [
        _row(
            "claim_1",
            "Flatter minima (by local energy) generalize better; the ranking RSGD ≻ SGD ≻ ADV holds in "
            "flatness and in test error, in all models.",
            f"per continuous experiment: mean local energy δE(σ* = {sigma_star:g}) and mean test error per "
            "sampler (rsgd, sgd, adv), and Spearman ρ between δE(σ*) and test error over the models",
            [_claim_1(cont(models), local_energy, sigma_star, n_resamples, seed)],
        ),
        _row(
            "claim_2",
            "In normalized-aligned space flatter minima are closer to each other and the geodesic barriers "
            "between them are lower; the six pair types are consistently ordered.",
            f"per continuous experiment: mean {distance_representation} distance and mean {barrier_path} "
            "barrier per pair type, checked against R-R ≤ {R-S, S-S} ≤ {R-A, S-A} ≤ A-A",
            _claim_2(cont(distances), cont(barriers), distance_representation, barrier_path),
        ),
        _row(
            "claim_3",
            "Single-bend optimized paths have (near-)zero error after symmetry removal, with few exceptions; "
            "optimized midpoints land closer to the flatter endpoint.",
            f"(a) share of (experiment, pair type) mean barriers of the aligned single-bend path below "
            f"{bend_threshold:g}; (b) mean distance of the optimized midpoint to the left (flatter) vs right "
            "endpoint per mixed pair type",
            [_bend_part(cont(barriers), bend_threshold, bend_min_fraction), _midpoint_part(cont(distances))],
        ),
        _row(
            "claim_4",
            "Binary networks show qualitatively the same picture (flatness ranking and generalization, "
            "barriers ordered by flatness and lowered by symmetry removal).",
            f"claim 1's rule on the binary experiments at ε = {eps:g}, and the barrier order by pair type "
            "along each binary path",
            _claim_4(bina(models), local_energy, bina(barriers), eps, n_resamples, seed),
        ),
        _row(
            "fig2_c",
            "After symmetry removal, barrier height ranks RSGD-RSGD < RSGD-SGD ≈ SGD-SGD < RSGD-ADV ≈ "
            "SGD-ADV < ADV-ADV (Fig. 2 (c)).",
            f"per continuous experiment: mean {barrier_path} barrier per pair type, checked against "
            "R-R ≤ {R-S, S-S} ≤ {R-A, S-A} ≤ A-A",
            [_claim_2(cont(distances), cont(barriers), distance_representation, barrier_path)[1]],
        ),
    ]
    return pd.DataFrame(rows, columns=COLUMNS)
