"""The paper's visual language, and the figures of the study.

Each figure has a data-preparation function (tested on known rows) and a drawing function. Colours and
markers follow the paper (digest §6): RSGD green triangles, SGD blue circles, ADV red squares; pair types
S-S blue, A-A red, S-A green, R-R black, R-S magenta, R-A orange. Samplers beyond the paper get their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

__all__ = [
    "PAIR_COLOR",
    "SAMPLER_STYLE",
    "figure_generalization",
    "figure_local_energy",
    "figure_paths",
    "prepare_generalization",
    "prepare_paths",
    "save_figure",
    "style",
]

SAMPLER_STYLE = {
    "rsgd": {"color": "#1a9850", "marker": "^", "label": "RSGD"},
    "sgd": {"color": "#2166ac", "marker": "o", "label": "SGD"},
    "adv": {"color": "#d73027", "marker": "s", "label": "ADV"},
    "sam": {"color": "#762a83", "marker": "D", "label": "SAM"},
    "esgd": {"color": "#8c510a", "marker": "v", "label": "eSGD"},
    "adam": {"color": "#636363", "marker": "P", "label": "Adam"},
}
PAIR_COLOR = {
    "S-S": "#2166ac", "A-A": "#d73027", "S-A": "#1a9850",
    "R-R": "#000000", "R-S": "#c51b7d", "R-A": "#f46d43",
}  # fmt: skip
PAIR_ORDER = ["R-R", "R-S", "S-S", "R-A", "S-A", "A-A"]
PATH_TITLE = {"linear": "Linear", "linear_aligned": "Linear-Aligned", "geodesic_aligned": "Geodesic-Aligned"}


def style() -> None:
    """One font family, sizes readable at a column's width."""
    sns.set_theme(context="paper", style="ticks", font="DejaVu Sans", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 150, "savefig.dpi": 200, "axes.spines.top": False,
                         "axes.spines.right": False, "legend.frameon": False})  # fmt: skip


def _sampler(s: str) -> dict[str, str]:
    return SAMPLER_STYLE.get(s, {"color": "#999999", "marker": "x", "label": s})


def _pair_color(t: str) -> str:
    return PAIR_COLOR.get(t, "#999999")


def save_figure(fig: plt.Figure, pdf: str | os.PathLike[str], png: str | os.PathLike[str]) -> None:
    """Write the figure as PDF and PNG (the PNG goes into the HTML report)."""
    for path in (pdf, png):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def _empty(ax: plt.Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()


def figure_local_energy(le: pd.DataFrame) -> plt.Figure:
    """Local energy δE(σ) (train error, %) against σ, one panel per experiment: the mean over models of a
    sampler, the band is the standard deviation over those models; thin lines are the single models."""
    style()
    exps = sorted(le["experiment"].unique()) if len(le) else []
    fig, axes = plt.subplots(1, max(1, len(exps)), figsize=(4.2 * max(1, len(exps)), 3.4), squeeze=False)
    if not exps:
        _empty(axes[0, 0], "no local-energy data in this study")
    for ax, exp in zip(axes[0], exps):
        sub = le[le["experiment"] == exp]
        for sampler, g in sub.groupby("sampler"):
            st = _sampler(sampler)
            for _, m in g.groupby("model_id"):
                ax.plot(m["sigma"], 100 * m["delta_mean"], color=st["color"], alpha=0.25, lw=0.8)
            agg = g.groupby("sigma")["delta_mean"].agg(["mean", "std"]).reset_index().fillna(0)
            n = g["model_id"].nunique()
            ax.plot(agg["sigma"], 100 * agg["mean"], color=st["color"], marker=st["marker"],
                    ms=4, label=f"{st['label']} (n={n})")  # fmt: skip
            ax.fill_between(agg["sigma"], 100 * (agg["mean"] - agg["std"]), 100 * (agg["mean"] + agg["std"]),
                            color=st["color"], alpha=0.15, lw=0)  # fmt: skip
        ax.set(title=exp, xlabel="noise amplitude σ", ylabel="local energy δE (train error, %)")
        ax.legend()
    fig.tight_layout()
    return fig


def prepare_generalization(models: pd.DataFrame, le: pd.DataFrame, sigma_star: float) -> pd.DataFrame:
    """One row per model: its test error and its local energy at σ* (``delta_mean``, ``delta_std``)."""
    at = le[np.isclose(le["sigma"], sigma_star)][["model_id", "delta_mean", "delta_std"]]
    out = models.merge(at, on="model_id", how="left", validate="one_to_one")
    missing = out[out["delta_mean"].isna()]["model_id"].tolist()
    if missing:
        raise ValueError(f"no local energy at σ*={sigma_star} for {missing}")
    return out


def figure_generalization(points: pd.DataFrame, sigma_star: float) -> plt.Figure:
    """Test error (%) against the local energy at σ* (%), one panel per experiment, one marker per model
    with the standard deviation over noise draws as horizontal error bar."""
    style()
    exps = sorted(points["experiment"].unique()) if len(points) else []
    fig, axes = plt.subplots(1, max(1, len(exps)), figsize=(4.2 * max(1, len(exps)), 3.4), squeeze=False)
    if not exps:
        _empty(axes[0, 0], "no models in this study")
    for ax, exp in zip(axes[0], exps):
        sub = points[points["experiment"] == exp]
        for sampler, g in sub.groupby("sampler"):
            st = _sampler(sampler)
            ax.errorbar(100 * g["delta_mean"], 100 * g["test_error"], xerr=100 * g["delta_std"], ls="none",
                        color=st["color"], marker=st["marker"], ms=6, capsize=2,
                        label=st["label"])  # fmt: skip
        ax.set(title=exp, xlabel=f"local energy δE at σ = {sigma_star} (%)", ylabel="test error (%)")
        if (sub["delta_mean"] > 0).all():
            ax.set_xscale("log")
        ax.legend()
    fig.tight_layout()
    return fig


def prepare_paths(paths: pd.DataFrame, path: str) -> pd.DataFrame:
    """Mean and standard deviation over pairs of the train error (%) at each x, per experiment, pair type."""
    sub = paths[paths["path"] == path]
    agg = (
        sub.groupby(["experiment", "pair_type", "x"])["train_error"]
        .agg(mean="mean", std="std", n="count")
        .reset_index()
    )
    agg["std"] = agg["std"].fillna(0.0)
    agg[["mean", "std"]] *= 100
    return agg


def figure_paths(paths: pd.DataFrame, path: str = "geodesic_aligned") -> plt.Figure:
    """Train error (%) along one path family, one panel per experiment, one curve per pair type (mean over
    pairs, band = standard deviation over pairs)."""
    style()
    agg = prepare_paths(paths, path) if len(paths) else pd.DataFrame()
    exps = sorted(agg["experiment"].unique()) if len(agg) else []
    fig, axes = plt.subplots(1, max(1, len(exps)), figsize=(4.2 * max(1, len(exps)), 3.4), squeeze=False)
    if not exps:
        _empty(axes[0, 0], "no pairs in this study (a pair needs two models of one experiment)")
    for ax, exp in zip(axes[0], exps):
        sub = agg[agg["experiment"] == exp]
        types = sorted(sub["pair_type"].unique(), key=lambda t: (PAIR_ORDER + [t]).index(t))
        for t in types:
            g = sub[sub["pair_type"] == t]
            c = _pair_color(t)
            ax.plot(g["x"], g["mean"], color=c, marker=".", label=f"{t} (n={int(g['n'].max())})")
            ax.fill_between(g["x"], g["mean"] - g["std"], g["mean"] + g["std"], color=c, alpha=0.15, lw=0)
        ax.set(title=f"{exp}: {PATH_TITLE.get(path, path)}", xlabel="position along the path x",
               ylabel="train error (%)", xlim=(0, 1))  # fmt: skip
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.tight_layout()
    return fig
