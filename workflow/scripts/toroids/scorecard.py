"""The scorecard: the paper's numbers (``workflow/resources/paper_numbers.csv``) beside a study's own.

Each paper row names a figure and panel, a *combination* (``{arch}-{dataset}``; ``all`` for the text's
statements), for a sweep which end of it (``size``: ``smallest`` or ``largest`` network), a ``quantity``, a
``path`` (the barrier's path or the distance's representation) and a ``subject`` (a sampler or a pair
type), the paper's value (``value``, or the range ``value``–``value_high``), its unit, its ``source``
(``stated`` in the text, or ``read_off`` a plot) and its ``rank``: where the paper draws an ordering from
the panel (RSGD ≻ SGD ≻ ADV; the pair-type levels R-R < {R-S, S-S} < {R-A, S-A} < A-A of Fig. 2(c) and
claim 2), the subject's place in it, equal ranks for what it puts level; blank where it draws none (an
unaligned path, a single value, a distance it calls the same for every type).

Ours is the mean over the study's models that enter, or over the pairs of the pair type whose endpoints
both enter; a model enters as it does in the claims (:func:`toroids.claims.exclusion_reasons`: a solution,
with ``stats.solutions_only``, and no ADV whose pre-training missed its target):

* ``test_error``: the models' test error, in %;
* ``barrier``: the peak train error along the path, ``barriers.csv``'s ``barrier``, in %;
* ``distance``: the endpoints' per-parameter distance, ``distances.csv``, in that representation;
* ``train_error_max``: the largest train error, in %, over every trained model of the study (solutions or
  not: the paper says all of its models are solutions).

``within`` says whether ours lies in the paper's range, for the rows that give one (``value_high``).

*Does the ordering agree?* Within a group of rows (the same figure, panel, combination, size, quantity and
path), the paper orders two subjects when their ranks differ; the group agrees when our means order every
such pair the same way, disagrees when they reverse one, and ties when the rest are equal (``ordering`` =
``agrees`` / ``disagrees`` / ``ties``, with the count of pairs, over the pairs whose two subjects the study
has), has ``no ordering`` when the paper draws none, and is ``not compared``
when the study has no such pair. It is a description of the means at
the study's scale, not a test: the claims table (:mod:`toroids.claims`) holds the intervals.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from toroids.claims import exclusion_reasons
from toroids.study import BEND_PATHS, BINARY_PATHS, PATHS, REPRESENTATIONS

__all__ = ["PAPER_COLUMNS", "PAPER_NUMBERS", "compare", "read_paper"]

PAPER_NUMBERS = Path(__file__).resolve().parents[2] / "resources" / "paper_numbers.csv"
PAPER_COLUMNS = (
    "figure", "panel", "combination", "size", "quantity", "path", "subject", "value", "value_high", "unit",
    "source", "rank", "note",
)  # fmt: skip
QUANTITIES = ("test_error", "barrier", "distance", "train_error_max")
#: per quantity, what its path may name: a barrier's path family, a distance's representation
_PATHS = {"test_error": ("",), "train_error_max": ("",), "barrier": PATHS + BEND_PATHS + BINARY_PATHS,
          "distance": REPRESENTATIONS}  # fmt: skip
_GROUP = ["figure", "panel", "combination", "size", "quantity", "path"]


def read_paper(path: str | Path = PAPER_NUMBERS) -> pd.DataFrame:
    """The paper's numbers, checked: the columns above; ``source`` ∈ {stated, read_off}; ``quantity`` one of
    :data:`QUANTITIES` with a ``path`` it can have; ``size`` blank, smallest or largest; ``rank`` blank or
    a positive integer; a range's ``value_high`` ≥ ``value``. Blanks are empty strings (``value_high`` and
    ``rank``: NaN)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(df.columns) != PAPER_COLUMNS:
        raise ValueError(f"{path}: columns {list(df.columns)}, expected {list(PAPER_COLUMNS)}")
    df["value"] = df["value"].astype(float)
    df["value_high"] = pd.to_numeric(df["value_high"].replace("", np.nan))
    df["rank"] = pd.to_numeric(df["rank"].replace("", np.nan))
    path_ok = [q in _PATHS and p in _PATHS[q] for q, p in zip(df["quantity"], df["path"])]
    bad = df[
        ~df["source"].isin(["stated", "read_off"])
        | ~np.array(path_ok)
        | ~df["size"].isin(["", "smallest", "largest"])
        | (df["value_high"] < df["value"])
        | ~(df["rank"].isna() | ((df["rank"] >= 1) & (df["rank"] % 1 == 0)))
    ]
    if len(bad):
        raise ValueError(
            f"{path}: rows {list(bad.index + 2)} have a bad source, quantity, path, size, rank, or a range "
            "whose high is below its low"
        )
    return df


def _experiments_for(row: pd.Series, models: pd.DataFrame) -> tuple[list[str], str]:
    """The study's experiments of the row's combination (for a sweep end, the one with the fewest or most
    parameters), and why there are none ('' when there are)."""
    if row["combination"] == "all":
        return sorted(models["experiment"].unique()), ""
    m = models[(models["arch"] + "-" + models["dataset"]) == row["combination"]] if len(models) else models
    if not len(m):
        return [], f"no {row['combination']} experiment in this study"
    if row["size"] in ("smallest", "largest"):
        size = m.groupby("experiment")["n_params"].max()
        if size.nunique() < 2:  # one size is no sweep: its two ends would be the same network
            return [], f"no {row['combination']} sweep in this study (one size only)"
        return [size.idxmin() if row["size"] == "smallest" else size.idxmax()], ""
    return sorted(m["experiment"].unique()), ""


def _ours(row: pd.Series, experiments: list[str], models: pd.DataFrame, barriers: pd.DataFrame,
          distances: pd.DataFrame, solutions_only: bool) -> tuple[float, int]:
    """(our value, how many models or pairs it averages); NaN and 0 when the study has none."""
    mine = models[models["experiment"].isin(experiments)]
    entering = exclusion_reasons(mine, solutions_only) == ""
    if "status" in mine.columns:
        entering &= mine["status"] == "ok"
    sol = mine[entering]
    good = set(sol["model_id"])
    q = row["quantity"]
    if q == "train_error_max":  # over every trained model: the paper says all of its models are solutions
        trained = mine["train_error"].dropna()
        return (float(trained.max() * 100), len(trained)) if len(trained) else (np.nan, 0)
    if q == "test_error":
        m = sol[sol["sampler"] == row["subject"]]
        return (float(m["test_error"].mean() * 100), len(m)) if len(m) else (np.nan, 0)
    table, col, scale = (barriers, "barrier", 100.0) if q == "barrier" else (distances, "distance", 1.0)
    if not len(table):
        return np.nan, 0
    t = table[table["experiment"].isin(experiments) & (table["pair_type"] == row["subject"])]
    t = t[t["left"].isin(good) & t["right"].isin(good)]
    if q == "barrier":
        t = t[t["path"] == row["path"]]
    else:
        t = t[(t["between"] == "endpoints") & (t["representation"] == row["path"])]
    if not len(t):
        return np.nan, 0
    return float(t[col].mean() * scale), int(t["pair"].nunique())


def _ordering(group: pd.DataFrame) -> str:
    """Whether our values order the group's subjects as the paper's ranks do (see the module's docstring)."""
    rank, ours = group["rank"], group["ours"]
    ordered = [(i, j) for i, j in itertools.permutations(group.index, 2) if rank[i] < rank[j]]  # i before j
    if not ordered:
        return "no ordering"
    both = [(i, j) for i, j in ordered if not (np.isnan(ours[i]) or np.isnan(ours[j]))]
    if not both:
        return "not compared"
    agree = sum(ours[i] < ours[j] for i, j in both)
    tied = sum(ours[i] == ours[j] for i, j in both)  # e.g. barriers that are 0 for every type
    verdict = "agrees" if agree == len(both) else "disagrees" if agree + tied < len(both) else "ties"
    notes = f"; {tied} tied" if tied else ""
    notes += f"; {len(ordered) - len(both)} not compared" if len(both) < len(ordered) else ""
    return f"{verdict} ({agree} of {len(both)} pairs{notes})"


def compare(paper: pd.DataFrame, models: pd.DataFrame, barriers: pd.DataFrame, distances: pd.DataFrame,
            scale: pd.DataFrame, solutions_only: bool = True) -> pd.DataFrame:
    """One row per paper number: the paper's columns, then ``ours``, ``n`` (models or pairs averaged),
    ``within``, ``experiments`` (those of the study that enter), their scale (``n_params``, ``epochs``,
    ``n_train``, ``n_test``, ``seeds``, each ``a/b`` when the experiments differ; ``scale`` has a row per
    experiment, :func:`toroids.study.experiment_scale`), ``ordering`` (of the row's group) and ``why_not``
    (empty when compared: else what the study lacks). ``solutions_only`` (the config's
    ``stats.solutions_only``): false lets every trained model in, solution or not."""
    rows = []
    for _, row in paper.iterrows():
        exps, why = _experiments_for(row, models)
        ours, n = _ours(row, exps, models, barriers, distances, solutions_only) if exps else (np.nan, 0)
        sc = scale[scale["experiment"].isin(exps)]
        if exps and n == 0:
            why = f"no solution or pair of {row['subject']} ({row['path'] or row['quantity']}) in it"
        rows.append({
            **row.to_dict(),
            "ours": ours,
            "n": n,
            "within": "" if np.isnan(row["value_high"]) or np.isnan(ours)
            else "yes" if row["value"] <= ours <= row["value_high"] else "no",
            "experiments": " ".join(exps),
            "n_params": "/".join(str(int(v)) for v in dict.fromkeys(
                models[models["experiment"].isin(exps)].groupby("experiment")["n_params"].max()
            )),
            **{k: "/".join(str(v) for v in dict.fromkeys(sc[k]))
               for k in ("epochs", "n_train", "n_test", "seeds")},
            "why_not": why,
        })  # fmt: skip
    out = pd.DataFrame(rows)
    out["ordering"] = ""
    for _, group in out.groupby(_GROUP, sort=False, dropna=False):
        out.loc[group.index, "ordering"] = _ordering(group)
    return out
