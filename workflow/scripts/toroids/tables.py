"""The study's tidy tables, assembled from the per-job outputs. Nothing is dropped silently: a model or a
pair that is missing, or a solution above the train-error threshold, is flagged in a column and logged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SOLUTION_THRESHOLD", "barriers", "concat_csv", "mark_star", "models_table", "read_or_empty"]

#: the paper keeps solutions with train error below 1% (App. A.1)
SOLUTION_THRESHOLD = 0.01

MODEL_COLUMNS = [
    "model_id", "experiment", "arch", "dataset", "sampler", "seed", "rng_seed", "status", "train_error",
    "test_error", "train_loss", "test_loss", "is_solution", "n_params", "random_label_accuracy",
    "pretrain_epochs_run", "pretrain_target_reached", "wall_time_s", "device",
]  # fmt: skip
#: columns taken from meta.json's ``sampler_summary`` (ADV's pre-training; empty for other samplers)
SUMMARY_COLUMNS = ("random_label_accuracy", "pretrain_epochs_run", "pretrain_target_reached")


def models_table(metas: Iterable[dict[str, Any]], expected: Sequence[str]) -> pd.DataFrame:
    """One row per model; ``is_solution`` is train error < 1%; ADV's pre-training (random-label accuracy
    reached, epochs run, target reached) from its ``sampler_summary``. Every id in ``expected`` must be
    present."""
    rows = []
    for m in metas:
        summary = m.get("sampler_summary") or {}
        rows.append(
            {
                **{k: m.get(k) for k in MODEL_COLUMNS},
                **{k: summary.get(k) for k in SUMMARY_COLUMNS},
                "experiment": m.get("experiment") or f"{m['arch']}-{m['dataset']}",
                "is_solution": m["train_error"] < SOLUTION_THRESHOLD,
            }
        )
    frame = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    missing = sorted(set(expected) - set(frame["model_id"]))
    if missing:
        raise ValueError(f"models missing from the tables: {missing}")
    return frame


def mark_star(local_energy: pd.DataFrame, stars: Mapping[str, float]) -> pd.DataFrame:
    """The local-energy table with ``is_star``: the row of each model at which its flatness is compared,
    ``stars[model_id]`` (:func:`toroids.study.flatness_stars`: its experiment's σ*, or ε* for the sign
    flips of a binary network). Marked here, not by the measuring jobs, so that changing a star reruns the
    analysis only. A model without a star is an error: it would silently drop out of every comparison."""
    if local_energy.empty:
        return local_energy.assign(is_star=pd.Series(dtype=bool))
    missing = sorted(set(local_energy["model_id"]) - set(stars))
    if missing:
        raise ValueError(f"no σ* or ε* for {missing}")
    star = local_energy["model_id"].map(stars).astype(float)
    return local_energy.assign(is_star=np.isclose(local_energy["sigma"].astype(float), star))


def concat_csv(paths: Sequence[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Concatenate per-job CSVs; an empty list gives an empty frame (with ``columns``, if given, so that
    the table written from it keeps its header)."""
    frames = [pd.read_csv(p) for p in paths]
    if frames:
        return pd.concat(frames, ignore_index=True)
    return pd.DataFrame(columns=list(columns or []))


def read_or_empty(path: str) -> pd.DataFrame:
    """A CSV as a frame; a table written without rows (a study without pairs) gives an empty frame."""
    from pandas.errors import EmptyDataError

    try:
        return pd.read_csv(path)
    except EmptyDataError:
        return pd.DataFrame()


def barriers(paths: pd.DataFrame) -> pd.DataFrame:
    """Per (pair, path): ``barrier`` = max train error along the path; ``barrier_excess`` = barrier minus the
    mean of the two endpoints' train errors; the test-error maximum beside them. Paths drawn in several
    random orders (binary networks, an ``order`` column) take the maximum per order, then the mean over
    orders (``barrier_std`` over orders, the paper's averaged maximum barrier)."""
    keys = ["experiment", "pair", "left", "right", "pair_type", "path"]
    if paths.empty:
        return pd.DataFrame(columns=[*keys, "barrier", "barrier_excess", "barrier_std", "n_orders"])
    paths = paths.assign(order=paths["order"].fillna(0) if "order" in paths else 0)
    per_order = []
    for key, g in paths.sort_values("x").groupby([*keys, "order"], sort=False):
        ends = (g["train_error"].iloc[0] + g["train_error"].iloc[-1]) / 2
        top = g["train_error"].max()
        per_order.append(
            {
                **dict(zip([*keys, "order"], key)),
                "barrier": top,
                "barrier_excess": top - ends,
                "test_error_max": g["test_error"].max() if "test_error" in g else float("nan"),
                "x_at_barrier": g["x"].iloc[int(g["train_error"].to_numpy().argmax())],
                "n_points": len(g),
            }
        )
    per = pd.DataFrame(per_order)
    out = per.groupby(keys, sort=False).agg(
        barrier=("barrier", "mean"),
        barrier_excess=("barrier_excess", "mean"),
        test_error_max=("test_error_max", "mean"),
        x_at_barrier=("x_at_barrier", "mean"),
        n_points=("n_points", "max"),
        barrier_std=("barrier", "std"),
        n_orders=("order", "nunique"),
    )
    out["barrier_std"] = out["barrier_std"].fillna(0.0)
    return out.reset_index().sort_values(["experiment", "pair", "path"], ignore_index=True)
