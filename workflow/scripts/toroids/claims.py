"""The claims table: the paper's headline claims (digest §6), each decided by comparisons with intervals.

What enters
    Only the paper's samplers (rsgd, sgd, adv) and pair types (R-R, R-S, S-S, R-A, S-A, A-A), and by default
    only *solutions* (train error < 1 %, the paper's App. A.1; ``solutions_only``): a model above the
    threshold, an ADV model whose pre-training missed its random-label target (it is not adversarially
    initialized), or a model without a local energy at σ* is left out, and so is every pair it is an
    endpoint of. Each claim row counts the models and pairs that entered and names those left out, with
    the reason.

Comparisons
    Every statement is cut into *comparisons*, each a difference oriented so that a positive value is the
    paper's side: e.g. "δE(σ*): sgd − rsgd" (SGD sharper than RSGD), "barrier: R-S − R-R", "1% − bend
    barrier" (the bend barrier near zero), "Spearman ρ(δE(σ*), test error)". Its estimate is the observed
    value; its interval a percentile interval of the bootstrap over models (:mod:`toroids.bootstrap`:
    models resampled within each (experiment, sampler), pairs weighted by their endpoints' multiplicities),
    at a confidence that is *simultaneous* over the comparisons of its part (Bonferroni: each interval at
    1 − (1 − confidence)/k for the k comparisons of the part). Outcome of a comparison:

    * *holds*: the interval lies wholly above 0 (on the paper's side of no effect);
    * *does not hold*: it lies wholly below 0;
    * *inconclusive*: it contains 0, or a sampler it compares has fewer than ``min_models`` solutions (a
      bootstrap of one or two models says nothing; the interval is still shown).

Parts and claims
    A part (e.g. "test-error ranking") holds when all its comparisons hold (across every experiment it
    covers: the paper's "in all models"), does not hold when one does not hold, and is inconclusive
    otherwise; the bend-barrier part of claim 3 ("with few exceptions") holds when at least
    ``bend_min_fraction`` of its comparisons hold and does not hold when more than 1 − that fraction do
    not. A part with no comparison is *not measurable at this scale* (the study lacks what it needs). A
    claim does not hold when a part does not hold; else is inconclusive when a part is; else holds when
    every part holds; else (some part not measurable) is not measurable.

Orders
    Samplers: consecutive ones in rsgd ≻ sgd ≻ adv among those present. Pair types: the paper's partial
    order R-R < {R-S, S-S} < {R-A, S-A} < A-A (:data:`toroids.stats.PAIR_LEVELS`); each type is compared
    with each type of the next level present ("≈" within a level is not tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from toroids.bootstrap import ModelBootstrap, percentile_interval
from toroids.stats import PAIR_LEVELS, flatness_at, pair_type_key, star_label
from toroids.study import BINARY_ARCHS

__all__ = [
    "CLAIM_COLUMNS",
    "FAILS",
    "HOLDS",
    "INCONCLUSIVE",
    "NOT_MEASURABLE",
    "SAMPLERS",
    "STATUSES",
    "TEST_COLUMNS",
    "claims_table",
    "exclusion_reasons",
]

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
NOT_MEASURABLE = "not measurable at this scale"
STATUSES = (HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURABLE)

#: the paper's samplers, flattest first (claim 1's ranking)
SAMPLERS = ("rsgd", "sgd", "adv")
#: the shallow teacher–student binary nets (barriers vanish) and the deep ones (barriers stay large)
SHALLOW_BINARY = ("binary_perceptron", "committee")
DEEP_BINARY = ("binary_mlp", "binary_convnet")
SAME_TYPE = ("R-R", "S-S", "A-A")
MIXED_TYPES = ("R-S", "R-A", "S-A")
#: preferred first: the aligned single bends (after symmetry removal), the binary aligned random paths
BEND_PATHS = ("geodesic_aligned_bend", "linear_aligned_bend")
BINARY_PATHS = ("random_aligned", "random")
#: the midpoint distance used by claim 3 (b): (variant of the single bend, representation), preferred first
MIDPOINT_VIEWS = (("geodesic_aligned", "normalized_aligned"), ("linear", "raw"))

CLAIM_COLUMNS = [
    "claim_id", "claim", "rule", "status", "summary", "deciding", "estimate", "ci_low", "ci_high",
    "confidence", "n_models", "n_models_excluded", "n_pairs", "n_pairs_excluded", "excluded", "detail",
]  # fmt: skip
TEST_COLUMNS = [
    "claim_id", "part", "rule", "experiment", "comparison", "estimate", "ci_low", "ci_high", "confidence",
    "n_eff", "n_boot", "n_models", "n_pairs", "outcome", "note",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Comparisons and parts


@dataclass
class Comparison:
    """One oriented difference (positive: the paper's side) with its bootstrap draws."""

    experiment: str
    label: str
    estimate: float
    draws: np.ndarray
    #: its sample size: the independent models behind it (the smallest sampler group a difference compares;
    #: every model entered for a correlation)
    n_eff: int
    n_models: int = 0
    pairs: frozenset[str] = frozenset()  # the pairs it used
    pairs_out: frozenset[str] = frozenset()  # the pairs it would have used, left out with an endpoint
    note: str = ""
    #: False when a sampler it compares has fewer than ``min_models`` solutions: no verdict
    decidable: bool = True


def _missing(experiment: str, label: str, note: str, **kw: Any) -> Comparison:
    """A comparison that the study planned but cannot make (e.g. a sampler without solutions): no value,
    no verdict, shown with its reason."""
    return Comparison(experiment, label, math.nan, np.full(1, math.nan), 0, note=note, decidable=False, **kw)


@dataclass
class Part:
    name: str
    comparisons: list[Comparison]
    #: None: every comparison must hold; a fraction f: "with few exceptions"
    share: float | None = None
    #: why there is no comparison (a part with none is not measurable)
    missing: str = ""
    rows: list[dict] = field(default_factory=list)
    status: str = NOT_MEASURABLE

    def decide(self, confidence: float) -> None:
        """Intervals at the simultaneous level, each comparison's outcome, and the part's status."""
        k = len(self.comparisons)
        if k == 0:
            self.status = NOT_MEASURABLE
            return
        level = 1.0 - (1.0 - confidence) / k
        outcomes = []
        for c in self.comparisons:
            lo, hi, n_boot = percentile_interval(c.draws, level, c.n_eff)
            if not c.decidable or not (math.isfinite(lo) and math.isfinite(hi)):
                outcome = INCONCLUSIVE
            elif lo > 0:
                outcome = HOLDS
            elif hi < 0:
                outcome = FAILS
            else:
                outcome = INCONCLUSIVE
            outcomes.append(outcome)
            note = c.note
            if c.decidable and n_boot < len(c.draws):
                note = _join(note, f"{len(c.draws) - n_boot} resample(s) without a value dropped")
            self.rows.append({
                "part": self.name, "rule": "all" if self.share is None else f"≥ {self.share:.0%} hold",
                "experiment": c.experiment, "comparison": c.label, "estimate": c.estimate, "ci_low": lo,
                "ci_high": hi, "confidence": level, "n_eff": c.n_eff, "n_boot": n_boot,
                "n_models": c.n_models, "n_pairs": len(c.pairs), "outcome": outcome, "note": note,
                "_pairs": c.pairs, "_pairs_out": c.pairs_out,
            })  # fmt: skip
        n_hold, n_fail = outcomes.count(HOLDS), outcomes.count(FAILS)
        if self.share is None:
            self.status = FAILS if n_fail else (HOLDS if n_hold == k else INCONCLUSIVE)
        elif n_hold >= self.share * k:
            self.status = HOLDS
        elif n_fail > (1.0 - self.share) * k:
            self.status = FAILS
        else:
            self.status = INCONCLUSIVE


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _combine(parts: Sequence[Part]) -> str:
    statuses = [p.status for p in parts]
    if FAILS in statuses:
        return FAILS
    if INCONCLUSIVE in statuses:
        return INCONCLUSIVE
    if statuses and all(s == HOLDS for s in statuses):
        return HOLDS
    return NOT_MEASURABLE


# ---------------------------------------------------------------------------------------------------------
# The study as the claims see it


@dataclass
class Study:
    """Every model of the paper's samplers and every pair (``entered`` says which enter), the bootstrap over
    the models that enter."""

    all_models: pd.DataFrame  # model_id, experiment, arch, sampler, test_error, delta, n_params (if known)
    models: pd.DataFrame  # the models that enter
    excluded: pd.DataFrame  # model_id, experiment, reason
    barriers: pd.DataFrame  # every pair's barriers, with ``entered``
    distances: pd.DataFrame  # every pair's distances, with ``entered``
    boot: ModelBootstrap
    min_models: int

    def members(self, experiment: str, sampler: str) -> pd.DataFrame:
        m = self.models
        return m[(m["experiment"] == experiment) & (m["sampler"] == sampler)]

    def trained(self, experiment: str) -> list[str]:
        """The paper's samplers that trained models in ``experiment`` (solutions or not), in rank order."""
        have = set(self.all_models.loc[self.all_models["experiment"] == experiment, "sampler"])
        return [s for s in SAMPLERS if s in have]

    def n_eff(self, experiment: str, samplers: Sequence[str]) -> int:
        return min((len(self.members(experiment, s)) for s in samplers), default=0)

    def enough(self, experiment: str, samplers: Sequence[str]) -> tuple[bool, str]:
        """Whether every sampler has ≥ ``min_models`` entered models in ``experiment`` (else a note)."""
        few = {s: len(self.members(experiment, s)) for s in samplers}
        few = {s: n for s, n in few.items() if n < self.min_models}
        if not few:
            return True, ""
        text = ", ".join(f"{s} {n}" for s, n in few.items())
        return False, f"fewer than {self.min_models} solutions ({text}): no verdict"


def exclusion_reasons(models: pd.DataFrame, solutions_only: bool) -> pd.Series:
    """Why each model stays out of the comparisons with the paper ('' when it enters): a train error ≥ 1 %
    (with ``solutions_only``: not a solution), or an ADV pre-training that missed its random-label target
    (such a model is not adversarially initialized). The claims and the scorecard both use it."""
    m = models
    reasons = pd.Series("", index=m.index)
    if solutions_only and "is_solution" in m.columns:
        bad = ~m["is_solution"].astype(bool)
        err = m.get("train_error", pd.Series(np.nan, index=m.index))
        reasons[bad] = [f"train error {100 * e:.2f}% ≥ 1%" for e in err[bad]]
    if "pretrain_target_reached" in m.columns:  # ADV that missed its random-label target is not ADV
        flag = m["pretrain_target_reached"]
        missed = flag.notna() & (flag.astype(str) == "False") & (reasons == "")
        acc = m.get("random_label_accuracy", pd.Series(np.nan, index=m.index))
        reasons[missed] = [f"adversarial pre-training missed its target ({a:.4f})" for a in acc[missed]]
    return reasons


def _prepare(
    models: pd.DataFrame,
    local_energy: pd.DataFrame,
    barriers: pd.DataFrame,
    distances: pd.DataFrame,
    sigma_star: float | None,
    solutions_only: bool,
    n_resamples: int,
    seed: int,
    min_models: int,
) -> Study:
    m = models[models["sampler"].isin(SAMPLERS)].copy()
    if "arch" not in m.columns:
        m["arch"] = m["experiment"]
    flat = flatness_at(_frame(local_energy, ["model_id", "sigma", "delta_mean", "delta_std"]), sigma_star)
    m = m.merge(flat[["model_id", "delta_mean"]], on="model_id", how="left").rename(
        columns={"delta_mean": "delta"}
    )
    reasons = exclusion_reasons(m, solutions_only)
    no_delta = m["delta"].isna() & (reasons == "")
    reasons[no_delta] = "no local energy at σ*"
    excluded = m.loc[reasons != "", ["model_id", "experiment"]].assign(reason=reasons[reasons != ""])
    kept = m[reasons == ""].reset_index(drop=True)
    ids = set(kept["model_id"])

    def mark(df: pd.DataFrame) -> pd.DataFrame:
        df = df[df["pair_type"].isin(list(PAIR_LEVELS))]
        return df.assign(entered=df["left"].isin(ids) & df["right"].isin(ids))

    pair_cols = ["experiment", "pair", "left", "right", "pair_type"]
    b = mark(_frame(barriers, [*pair_cols, "path", "barrier"]))
    d = mark(_frame(distances, [*pair_cols, "between", "variant", "representation", "distance"]))
    strata = {r.model_id: (r.experiment, r.sampler) for r in kept.itertuples()}
    return Study(m, kept, excluded, b, d, ModelBootstrap(strata, n_resamples, seed), min_models)


def _frame(df: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` if it has ``columns`` (a table written without rows has none), else an empty frame."""
    if df is None or not set(columns) <= set(df.columns):
        return pd.DataFrame(columns=list(columns))
    return df


# ---------------------------------------------------------------------------------------------------------
# Building comparisons


def _difference(
    st: Study,
    experiment: str,
    label: str,
    samplers: Sequence[str],
    high: tuple[float, np.ndarray],
    low: tuple[float, np.ndarray],
    **kw: Any,
) -> Comparison:
    """``high − low`` of two bootstrapped statistics, decidable when every sampler behind it has enough."""
    ok, note = st.enough(experiment, samplers)
    return Comparison(
        experiment, label, high[0] - low[0], high[1] - low[1], st.n_eff(experiment, samplers),
        note=_join(kw.pop("note", ""), note), decidable=ok, **kw,
    )  # fmt: skip


def _sampler_ranking(st: Study, experiments: Sequence[str], column: str, what: str) -> Part:
    """Consecutive samplers of rsgd ≻ sgd ≻ adv trained: mean ``column`` of the sharper minus the flatter
    (a sampler none of whose models entered gives a comparison without value, not a gap)."""
    comps = []
    for exp in experiments:
        present = st.trained(exp)
        for flatter, sharper in zip(present, present[1:]):
            label = f"{what}: {sharper} − {flatter}"
            a, b = (
                dict(zip(st.members(exp, s)["model_id"], st.members(exp, s)[column]))
                for s in (sharper, flatter)
            )
            if not a or not b:
                none = sharper if not a else flatter
                comps.append(_missing(exp, label, f"no {none} model entered: no verdict"))
                continue
            high, low = st.boot.mean(a), st.boot.mean(b)
            comps.append(_difference(st, exp, label, (flatter, sharper), high, low, n_models=len(a) + len(b)))
    return Part(f"{what} ranking rsgd ≻ sgd ≻ adv", comps, missing="fewer than 2 of rsgd, sgd, adv")


def _flatness_parts(st: Study, experiments: Sequence[str], what: str) -> list[Part]:
    """Claim 1's statement: the flatness ranking, the test-error ranking, and flatter ⇒ better."""
    return [
        _sampler_ranking(st, experiments, "delta", what),
        _sampler_ranking(st, experiments, "test_error", "test error"),
        _correlation(st, experiments, what),
    ]


def _correlation(st: Study, experiments: Sequence[str], what: str) -> Part:
    comps = []
    for exp in experiments:
        samplers = st.trained(exp)
        if len(samplers) < 2:
            continue
        label = f"Spearman ρ({what}, test error)"
        g = st.models[st.models["experiment"] == exp]
        if len(g) < 3:
            comps.append(_missing(exp, label, f"{len(g)} model(s) entered: no correlation"))
            continue
        x, y = (dict(zip(g["model_id"], g[c])) for c in ("delta", "test_error"))
        est, draws = st.boot.spearman(x, y)
        ok, note = st.enough(exp, samplers)
        comps.append(Comparison(exp, label, est, draws, len(g), len(g), note=note, decidable=ok))
    return Part(f"flatter generalizes better: ρ({what}, test error) > 0", comps)


def _pair_values(df: pd.DataFrame, exp: str, ptype: str, column: str) -> tuple[list, frozenset, frozenset]:
    """(left, right, value) of the entered pairs of ``ptype`` in ``exp``, their ids, the ids left out."""
    g = df[(df["experiment"] == exp) & (df["pair_type"] == ptype)]
    inside = g[g["entered"].astype(bool)]
    values = list(zip(inside["left"], inside["right"], inside[column].astype(float)))
    return values, frozenset(inside["pair"]), frozenset(g.loc[~g["entered"].astype(bool), "pair"])


def _types_of(pair_type: str) -> tuple[str, ...]:
    letter = {"R": "rsgd", "S": "sgd", "A": "adv"}
    return tuple(dict.fromkeys(letter[c] for c in pair_type.split("-")))


#: one side of a pair-level comparison: (table, experiment, pair type)
Side = tuple[pd.DataFrame, str, str]


def _contrast(st: Study, label: str, high: Side, low: Side | float) -> Comparison:
    """The mean ``barrier``/``distance`` (the table's value column) over the entered pairs of side ``high``
    minus that of side ``low`` (or minus the number ``low``). Sides in two experiments are resampled
    independently (different strata); a side without an entered pair gives a comparison without value."""
    sides = [high] if isinstance(low, float) else [high, low]
    values, used, out = [], frozenset(), frozenset()
    for df, exp, ptype in sides:
        column = "barrier" if "barrier" in df.columns else "distance"
        v, u, o = _pair_values(df, exp, ptype, column)
        values.append(v)
        used, out = used | u, out | o
    exps = list(dict.fromkeys(e for _, e, _ in sides))
    where = " → ".join(exps)
    if not all(values):
        return _missing(where, label, "no pair of it entered (an endpoint left out): no verdict", pairs=used,
                        pairs_out=out)  # fmt: skip
    est = [st.boot.pair_mean(v) for v in values]
    lower = (low, np.full(st.boot.n_resamples, low)) if isinstance(low, float) else est[1]
    checks = [st.enough(e, _types_of(t)) for _, e, t in sides]
    n_eff = min(st.n_eff(e, _types_of(t)) for _, e, t in sides)
    return Comparison(
        where, label, est[0][0] - lower[0], est[0][1] - lower[1], n_eff, pairs=used, pairs_out=out,
        note=_join(*(n for _, n in checks)), decidable=all(ok for ok, _ in checks),
    )  # fmt: skip


def _pair_order(st: Study, df: pd.DataFrame, experiments: Sequence[str], column: str, what: str) -> Part:
    """Each pair type against each type of the next level the study has (entered or not): mean of the
    higher minus the lower."""
    comps = []
    for exp in experiments:
        present = sorted(
            {t for t in df.loc[df["experiment"] == exp, "pair_type"] if t in PAIR_LEVELS}, key=pair_type_key
        )
        levels = sorted({PAIR_LEVELS[t] for t in present})
        for lo_level, hi_level in zip(levels, levels[1:]):
            for low in (t for t in present if PAIR_LEVELS[t] == lo_level):
                for high in (t for t in present if PAIR_LEVELS[t] == hi_level):
                    label = f"{what}: {high} − {low}"
                    comps.append(_contrast(st, label, (df, exp, high), (df, exp, low)))
    return Part(f"{what} ordered by pair type", comps, missing="fewer than 2 pair-type levels")


def _first_path(df: pd.DataFrame, exp: str, candidates: Sequence[str]) -> str | None:
    have = set(df.loc[df["experiment"] == exp, "path"])
    return next((p for p in candidates if p in have), None)


def _below(st: Study, df: pd.DataFrame, exp: str, ptype: str, threshold: float, label: str) -> Comparison:
    """``threshold`` − the mean barrier of ``ptype``: positive when the barrier is below it."""
    c = _contrast(st, label, (df, exp, ptype), threshold)
    c.estimate, c.draws = -c.estimate, -c.draws
    return c


def _near_zero_bends(st: Study, experiments: Sequence[str], threshold: float, share: float) -> Part:
    comps = []
    for exp in experiments:
        path = _first_path(st.barriers, exp, BEND_PATHS)
        if path is None:
            continue
        b = st.barriers[(st.barriers["experiment"] == exp) & (st.barriers["path"] == path)]
        for ptype in sorted(set(b["pair_type"]), key=pair_type_key):
            c = _below(st, b, exp, ptype, threshold, f"{threshold:g} − {path} barrier, {ptype}")
            g = b[(b["pair_type"] == ptype) & b["entered"].astype(bool)]
            if "barrier_excess" in g.columns and len(g):
                c.note = _join(f"excess over the endpoints {g['barrier_excess'].mean():.4g}", c.note)
            comps.append(c)
    name = f"aligned single-bend barriers < {threshold:g}"
    return Part(name, comps, share=share, missing="no aligned single-bend paths")


def _midpoint_closer(st: Study, experiments: Sequence[str]) -> Part:
    """Per experiment, over mixed pairs: mean of d(M, sharper endpoint) − d(M, flatter endpoint), the
    flatter endpoint being the one with the lower measured δE(σ*)."""
    delta = dict(zip(st.models["model_id"], st.models["delta"]))
    d = st.distances
    comps = []
    label = "d(M, sharper) − d(M, flatter), mixed pairs"
    for exp in experiments:
        g = d[(d["experiment"] == exp) & d["pair_type"].isin(MIXED_TYPES)]
        for variant, rep in MIDPOINT_VIEWS:
            v = g[(g["variant"] == variant) & (g["representation"] == rep)]
            if len(v):
                break
        else:
            continue
        out = frozenset(v.loc[~v["entered"].astype(bool), "pair"])
        v = v[v["entered"].astype(bool)]
        side = v.pivot_table(index=["pair", "left", "right"], columns="between", values="distance")
        if len(v) == 0 or not {"left_midpoint", "right_midpoint"} <= set(side.columns):
            comps.append(_missing(exp, label, "no mixed pair entered: no verdict", pairs_out=out))
            continue
        values, ties = [], 0
        for (_, left, right), row in side.iterrows():
            if delta[left] == delta[right]:
                ties += 1
                continue
            near_left = row["right_midpoint"] - row["left_midpoint"]  # > 0: M closer to the left endpoint
            values.append((left, right, near_left if delta[left] < delta[right] else -near_left))
        samplers = sorted({s for t in set(v["pair_type"]) for s in _types_of(t)}, key=SAMPLERS.index)
        note = _join(
            f"{variant} midpoints, {rep} distances", f"{ties} pair(s) of equal δE skipped" if ties else ""
        )
        kw = {"pairs": frozenset(side.index.get_level_values("pair")), "pairs_out": out, "note": note}
        if not values:
            comps.append(_missing(exp, label, _join(note, "no pair left: no verdict"), **kw))
            continue
        est = st.boot.pair_mean(values)
        zero = (0.0, np.zeros(st.boot.n_resamples))
        comps.append(_difference(st, exp, label, samplers, est, zero, **kw))
    return Part(
        "optimized midpoints closer to the flatter endpoint", comps, missing="no mixed-pair midpoints"
    )


def _binary_path_part(st: Study, experiments: Sequence[str]) -> Part:
    parts = []
    for exp in experiments:
        path = _first_path(st.barriers, exp, BINARY_PATHS)
        if path is not None:
            b = st.barriers[(st.barriers["experiment"] == exp) & (st.barriers["path"] == path)]
            parts += _pair_order(st, b, [exp], "barrier", f"{path} barrier").comparisons
    return Part("random-path barriers ordered by pair type", parts, missing="no binary random paths")


def _sizes(models: pd.DataFrame, experiments: Sequence[str]) -> list[str]:
    """``experiments`` from the smallest network to the largest (mean #params of their models, solutions
    or not: a size whose models all failed is still the size it is)."""
    size = models.groupby("experiment")["n_params"].mean() if "n_params" in models else pd.Series(dtype=float)
    return sorted(experiments, key=lambda e: (size.get(e, math.nan), e))


def _shallow_parts(st: Study, experiments: Sequence[str], threshold: float) -> list[Part]:
    decrease, vanish = [], []
    arch = dict(zip(st.all_models["experiment"], st.all_models["arch"]))
    for family in SHALLOW_BINARY:
        exps = _sizes(st.all_models, [e for e in experiments if arch.get(e) == family])
        if len(exps) < 2:
            continue
        small, large = exps[0], exps[-1]
        for ptype in SAME_TYPE:
            path = {e: _first_path(st.barriers, e, BINARY_PATHS) for e in (small, large)}
            if path[large] is None or ptype not in set(
                st.barriers.loc[st.barriers["experiment"] == large, "pair_type"]
            ):
                continue
            big = st.barriers[st.barriers["path"] == path[large]]
            label = f"{threshold:g} − {path[large]} barrier, {ptype} (largest)"
            vanish.append(_below(st, big, large, ptype, threshold, label))
            if path[small] is None:
                continue
            sml = st.barriers[st.barriers["path"] == path[small]]
            label = f"{path[large]} barrier, {ptype}: smallest − largest"
            decrease.append(_contrast(st, label, (sml, small, ptype), (big, large, ptype)))
    return [
        Part(
            "barriers decrease from the smallest to the largest net",
            decrease,
            missing="no sweep of ≥ 2 sizes",
        ),
        Part(f"barriers < {threshold:g} at the largest size", vanish, missing="no sweep of ≥ 2 sizes"),
    ]


def _deep_parts(st: Study, experiments: Sequence[str], large_barrier: float) -> list[Part]:
    reduced, large = [], []
    for exp in experiments:
        b = st.barriers[st.barriers["experiment"] == exp]
        raw, aligned = (b[b["path"] == p] for p in ("random", "random_aligned"))
        for ptype in SAME_TYPE:
            if ptype not in set(aligned["pair_type"]):
                continue
            label = f"random_aligned barrier, {ptype} − {large_barrier:g}"
            large.append(_contrast(st, label, (aligned, exp, ptype), large_barrier))
            if ptype in set(raw["pair_type"]):
                label = f"barrier, {ptype}: random − random_aligned"
                reduced.append(_contrast(st, label, (raw, exp, ptype), (aligned, exp, ptype)))
    return [
        Part("alignment lowers the barriers", reduced, missing="no deep binary networks"),
        Part(f"aligned barriers stay above {large_barrier:g}", large, missing="no deep binary networks"),
    ]


# ---------------------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Claim:
    claim_id: str
    claim: str
    rule: str
    family: str  # which experiments: continuous, binary, shallow, deep
    parts: Callable[[Study, list[str]], list[Part]]


def claims_table(
    models: pd.DataFrame,
    local_energy: pd.DataFrame,
    barriers: pd.DataFrame,
    distances: pd.DataFrame,
    sigma_star: float | None = None,
    *,
    binary_sigma_star: float | None = None,
    near_zero: float = 0.01,
    large_barrier: float = 0.05,
    bend_min_fraction: float = 0.8,
    n_resamples: int = 4000,
    seed: int = 0,
    confidence: float = 0.95,
    min_models: int = 4,
    solutions_only: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The claims (:data:`CLAIM_COLUMNS`, one row per claim) and their comparisons (:data:`TEST_COLUMNS`).

    Inputs are the workflow's tables: ``models`` (model_id, experiment, arch, sampler, train_error,
    test_error, is_solution, n_params), ``local_energy`` (model_id, sigma, delta_mean, delta_std, and
    ``is_star``: each model's own star, its experiment's σ* or, for binary nets, ε*; without it
    ``sigma_star`` and ``binary_sigma_star``),
    ``barriers`` (experiment, pair, left, right, pair_type, path, barrier, barrier_excess) and
    ``distances`` (… between, variant, representation, distance); empty frames are fine. ``near_zero`` is
    the barrier below which a path stays among solutions (the solution threshold, 1 %); ``large_barrier``
    the one above which a deep binary net's aligned barrier "stays large" (5 %: the paper's are 9–70 %).
    """
    st = _prepare(
        models, local_energy, barriers, distances, sigma_star, solutions_only, n_resamples, seed, min_models
    )
    all_models = models[models["sampler"].isin(SAMPLERS)]
    arch_of = dict(zip(all_models["experiment"], all_models.get("arch", all_models["experiment"])))
    families = {
        "continuous": [e for e, a in arch_of.items() if a not in BINARY_ARCHS],
        "binary": [e for e, a in arch_of.items() if a in BINARY_ARCHS],
        "shallow": [e for e, a in arch_of.items() if a in SHALLOW_BINARY],
        "deep": [e for e, a in arch_of.items() if a in DEEP_BINARY],
    }
    eps = sigma_star if binary_sigma_star is None else binary_sigma_star
    stars = {  # as the rules' text states them: each family's star(s), read off the marked rows
        family: star_label(
            local_energy, all_models.loc[all_models["experiment"].isin(exps), "model_id"],
            sigma_star if family == "continuous" else eps,
        )
        for family, exps in families.items()
    }  # fmt: skip
    d_end = st.distances[(st.distances["between"] == "endpoints")]
    d_norm = d_end[d_end["representation"] == "normalized_aligned"]

    def path(name: str) -> pd.DataFrame:
        return st.barriers[st.barriers["path"] == name]

    claims = [
        Claim(
            "claim_1",
            "Flatter minima (by local energy) generalize better; the ranking RSGD ≻ SGD ≻ ADV holds in "
            "flatness and in test error, in all models.",
            f"per continuous experiment: δE(σ* = {stars['continuous']}) and test error of consecutive "
            "samplers (sharper − flatter > 0), and Spearman ρ(δE(σ*), test error) > 0 over the solutions",
            "continuous",
            lambda s, e: _flatness_parts(s, e, "δE(σ*)"),
        ),
        Claim(
            "claim_2",
            "In normalized-aligned space flatter minima are closer to each other and the geodesic barriers "
            "between them are lower; the six pair types are consistently ordered.",
            "per continuous experiment: normalized-aligned distance and geodesic-aligned barrier of each "
            "pair type minus those of the level below, R-R < {R-S, S-S} < {R-A, S-A} < A-A",
            "continuous",
            lambda s, e: [
                _pair_order(s, d_norm, e, "distance", "normalized-aligned distance"),
                _pair_order(s, path("geodesic_aligned"), e, "barrier", "geodesic_aligned barrier"),
            ],
        ),
        Claim(
            "claim_3",
            "Single-bend optimized paths have (near-)zero error after symmetry removal, with few exceptions; "
            "optimized midpoints land closer to the flatter endpoint.",
            f"(a) {near_zero:g} − the aligned single-bend barrier per (experiment, pair type), ≥ "
            f"{bend_min_fraction:.0%} of them holding; (b) distance of the optimized midpoint to the sharper "
            "endpoint minus to the flatter one (by measured δE(σ*)), over mixed pairs",
            "continuous",
            lambda s, e: [_near_zero_bends(s, e, near_zero, bend_min_fraction), _midpoint_closer(s, e)],
        ),
        Claim(
            "fig2_c",
            "After symmetry removal, barrier height ranks RSGD-RSGD < RSGD-SGD ≈ SGD-SGD < RSGD-ADV ≈ "
            "SGD-ADV < ADV-ADV (Fig. 2 (c)).",
            "per continuous experiment: geodesic-aligned and linear-aligned barrier of each pair type minus "
            "those of the level below",
            "continuous",
            lambda s, e: [
                _pair_order(s, path("geodesic_aligned"), e, "barrier", "geodesic_aligned barrier"),
                _pair_order(s, path("linear_aligned"), e, "barrier", "linear_aligned barrier"),
            ],
        ),
        Claim(
            "claim_4",
            "Binary networks show qualitatively the same picture: the flatness ranking and its link to "
            "generalization, and barriers ordered by flatness.",
            f"claim 1's comparisons on the binary experiments at ε* = {stars['binary']}, and the aligned "
            "random-path barrier of each pair type minus those of the level below",
            "binary",
            lambda s, e: [*_flatness_parts(s, e, "δE(ε*)"), _binary_path_part(s, e)],
        ),
        Claim(
            "claim_4_shallow",
            "In the shallow teacher–student binary nets (perceptron, committee machine), barriers vanish "
            "with over-parameterization (Figs. 6, 18).",
            f"per sweep and same-type pair type: the random-path barrier (aligned where alignment exists) of "
            f"the smallest net minus the largest's, and {near_zero:g} − the largest's",
            "shallow",
            lambda s, e: _shallow_parts(s, e, near_zero),
        ),
        Claim(
            "claim_4_deep",
            "In deep binary nets (binary MLP, binary ConvNet), symmetry removal lowers the barriers but they "
            "stay large (Figs. 7, 19).",
            f"per deep binary experiment and same-type pair type: raw minus aligned random-path barrier, and "
            f"the aligned barrier minus {large_barrier:g}",
            "deep",
            lambda s, e: _deep_parts(s, e, large_barrier),
        ),
    ]

    rows, tests = [], []
    for c in claims:
        exps = families[c.family]
        parts = (
            c.parts(st, exps)
            if exps
            else [Part("this family of networks", [], missing="no such experiments")]
        )
        for p in parts:
            p.decide(confidence)
            tests += [{"claim_id": c.claim_id, **{k: v for k, v in r.items() if k[0] != "_"}} for r in p.rows]
        rows.append(_claim_row(c, parts, st, exps, confidence))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS), pd.DataFrame(tests, columns=TEST_COLUMNS)


def _part_text(p: Part) -> str:
    rows = [
        f"{r['experiment']} {r['comparison']} = {r['estimate']:.4g} "
        f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}] {r['outcome']}"
        for r in p.rows
    ]
    return "; ".join(rows) or p.missing


def _claim_row(c: Claim, parts: Sequence[Part], st: Study, exps: Sequence[str], confidence: float) -> dict:
    status = _combine(parts)
    all_rows = [r for p in parts for r in p.rows]
    if status == FAILS:
        pool = [r for r in all_rows if r["outcome"] == FAILS]
        deciding = min(pool, key=lambda r: r["ci_high"])
    elif all_rows:
        # the weakest comparison of the status: the lowest lower bound among those with an interval
        want = INCONCLUSIVE if status == INCONCLUSIVE else HOLDS
        pool = [r for r in all_rows if r["outcome"] == want and math.isfinite(r["ci_low"])]
        pool = pool or [r for r in all_rows if r["outcome"] == want] or all_rows
        deciding = min(pool, key=lambda r: r["ci_low"] if math.isfinite(r["ci_low"]) else -math.inf)
    else:
        deciding = None
    counts = {o: sum(r["outcome"] == o for r in all_rows) for o in (HOLDS, FAILS, INCONCLUSIVE)}
    summary = (
        f"{counts[HOLDS]} hold, {counts[FAILS]} do not, {counts[INCONCLUSIVE]} inconclusive of "
        f"{len(all_rows)} comparisons"
    )
    excluded = st.excluded[st.excluded["experiment"].isin(exps)]
    used = frozenset().union(*(r["_pairs"] for r in all_rows))
    left_out = frozenset().union(*(r["_pairs_out"] for r in all_rows))
    detail = " || ".join(f"[{p.status}] {p.name}: {_part_text(p)}" for p in parts)
    return {
        "claim_id": c.claim_id, "claim": c.claim, "rule": c.rule, "status": status, "summary": summary,
        "deciding": f"{deciding['experiment']}: {deciding['comparison']}" if deciding else "",
        "estimate": deciding["estimate"] if deciding else math.nan,
        "ci_low": deciding["ci_low"] if deciding else math.nan,
        "ci_high": deciding["ci_high"] if deciding else math.nan,
        "confidence": deciding["confidence"] if deciding else confidence,
        "n_models": int(st.models["experiment"].isin(exps).sum()), "n_models_excluded": len(excluded),
        "n_pairs": len(used), "n_pairs_excluded": len(left_out),
        "excluded": "; ".join(f"{r.model_id} ({r.reason})" for r in excluded.itertuples()),
        "detail": detail,
    }  # fmt: skip
