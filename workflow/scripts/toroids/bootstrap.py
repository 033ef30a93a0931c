"""The study's uncertainty: a bootstrap over models (seeds), stratified by (experiment, sampler).

A study's models are its independent draws; its pairs are not (model i enters every pair it is in). So
every interval of the claims resamples *models*: resample b draws, with replacement, n_g models from each
stratum g of n_g solutions (one experiment's models of one sampler), giving each model a multiplicity
c_bi ≥ 0 with Σ_{i∈g} c_bi = n_g. Then, in resample b,

* the mean of a model-level quantity (δE(σ*), test error) over a set S of models is
  Σ_{i∈S} c_bi v_i / Σ_{i∈S} c_bi;
* the mean of a pair-level quantity (a barrier, a distance) over a set P of pairs (i, j) is
  Σ_P c_bi c_bj v_ij / Σ_P c_bi c_bj: a pair enters as often as both of its endpoints were drawn
  (the usual bootstrap of dyadic data); a resample that drew no pair of P has no mean (NaN);
* Spearman's ρ over models is computed on the resampled list, each model repeated c_bi times.

Intervals are expanded percentile intervals (:func:`percentile_interval`), calibrated for the few models
per group that a study has.

Every statistic of one study is computed on the same resamples (:attr:`ModelBootstrap.counts`, from
``numpy.random.default_rng(seed)``), so two runs give the same intervals. The point estimate beside each
interval is the statistic of the data as observed (every multiplicity 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as sps

__all__ = ["ModelBootstrap", "percentile_interval"]


class ModelBootstrap:
    """``n_resamples`` stratified resamples of the models ``strata`` (model id → stratum key)."""

    def __init__(self, strata: Mapping[str, object], n_resamples: int, seed: int) -> None:
        self.ids = list(strata)
        self.index = {m: i for i, m in enumerate(self.ids)}
        self.n_resamples = int(n_resamples)
        groups: dict[str, list[int]] = {}
        for m, g in strata.items():
            groups.setdefault(str(g), []).append(self.index[m])
        rng = np.random.default_rng(seed)
        counts = np.zeros((self.n_resamples, len(self.ids)), dtype=np.int64)
        rows = np.arange(self.n_resamples)[:, None]
        for key in sorted(groups):  # sorted: the draws do not depend on the order models were listed in
            members = np.asarray(groups[key])
            picks = members[rng.integers(0, len(members), size=(self.n_resamples, len(members)))]
            np.add.at(counts, (np.broadcast_to(rows, picks.shape), picks), 1)
        self.counts = counts
        self.strata = {k: [self.ids[i] for i in v] for k, v in groups.items()}

    def _columns(self, models: Sequence[str]) -> np.ndarray:
        missing = [m for m in models if m not in self.index]
        if missing:
            raise KeyError(f"models not in the bootstrap: {missing}")
        return np.asarray([self.index[m] for m in models], dtype=np.int64)

    def mean(self, values: Mapping[str, float]) -> tuple[float, np.ndarray]:
        """(observed mean, the mean in every resample) of a model-level quantity ``{model: value}``."""
        v = np.asarray(list(values.values()), dtype=float)
        w = self.counts[:, self._columns(list(values))].astype(float)
        total = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = np.where(total > 0, (w @ v) / total, np.nan)
        return float(v.mean()), draws

    def pair_mean(self, pairs: Sequence[tuple[str, str, float]]) -> tuple[float, np.ndarray]:
        """(observed mean, the mean in every resample) of a pair-level quantity, pairs ``(left, right,
        value)`` weighted by the product of their endpoints' multiplicities."""
        v = np.asarray([p[2] for p in pairs], dtype=float)
        left = self.counts[:, self._columns([p[0] for p in pairs])]
        right = self.counts[:, self._columns([p[1] for p in pairs])]
        w = (left * right).astype(float)
        total = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = np.where(total > 0, (w @ v) / total, np.nan)
        return float(v.mean()), draws

    def spearman(self, x: Mapping[str, float], y: Mapping[str, float]) -> tuple[float, np.ndarray]:
        """(observed Spearman ρ, ρ in every resample) between two model-level quantities over the models
        of ``x`` (``y`` must have them all); NaN where either side is constant."""
        models = list(x)
        xs, ys = np.asarray([x[m] for m in models], float), np.asarray([y[m] for m in models], float)
        cols = self._columns(models)
        draws = np.full(self.n_resamples, np.nan)
        for b in range(self.n_resamples):
            rep = np.repeat(np.arange(len(models)), self.counts[b, cols])
            draws[b] = _spearman(xs[rep], ys[rep])
        return _spearman(xs, ys), draws


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    rx, ry = sps.rankdata(x), sps.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))


def percentile_interval(
    draws: np.ndarray, confidence: float, n: int | None = None
) -> tuple[float, float, int]:
    """The central ``confidence`` interval of the finite draws and how many there were; (NaN, NaN) from
    fewer than 2 draws, or for ``n`` < 2.

    With ``n`` (the number of independent models behind the statistic: the smallest group it compares),
    the *expanded* percentile interval (Hesterberg 2015): the quantiles at α'/2 and 1 − α'/2 with
    α' = 2 Φ(−sqrt(n / (n − 1)) · t_{n−1, 1−α/2}), α = 1 − confidence. The plain percentile interval is too
    narrow for a few models (its spread is that of the sample, biased by (n − 1)/n, and its tails
    normal where they should be Student's): with 3 or 5 models per group, pure noise crossed the plain
    95 % interval 13–27 % of the time (measured). Where α'/2 falls below one resample, the interval is
    the range of the draws.
    """
    finite = draws[np.isfinite(draws)]
    if len(finite) < 2 or (n is not None and n < 2):
        return float("nan"), float("nan"), len(finite)
    alpha = 1.0 - confidence
    if n is not None:
        z = np.sqrt(n / (n - 1.0)) * sps.t.ppf(1.0 - alpha / 2.0, n - 1)
        alpha = 2.0 * sps.norm.sf(z)
    lo, hi = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi), len(finite)
