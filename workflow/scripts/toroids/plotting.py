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
    "figure_distances",
    "figure_generalization",
    "figure_local_energy",
    "figure_overparameterization",
    "figure_paths",
    "figure_sections",
    "prepare_distances",
    "prepare_generalization",
    "prepare_overparameterization",
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
    "S-S": "#2166ac",
    "A-A": "#d73027",
    "S-A": "#1a9850",
    "R-R": "#000000",
    "R-S": "#c51b7d",
    "R-A": "#f46d43",
}
PAIR_ORDER = ["R-R", "R-S", "S-S", "R-A", "S-A", "A-A"]
PATH_TITLE = {
    "linear": "Linear",
    "linear_aligned": "Linear-Aligned",
    "geodesic_aligned": "Geodesic-Aligned",
    "random": "Random shortest path",
    "random_aligned": "Random shortest path, aligned",
    "random_bend": "Random path, single bend",
    "random_aligned_bend": "Random path, aligned, single bend",
    "linear_bend": "Linear, single bend",
    "linear_aligned_bend": "Linear-Aligned, single bend",
    "geodesic_aligned_bend": "Geodesic-Aligned, single bend",
}


def style() -> None:
    """One font family, sizes readable at a column's width."""
    sns.set_theme(context="paper", style="ticks", font="DejaVu Sans", font_scale=1.1)
    plt.rcParams.update(
        {
            "figure.dpi": 150,
            "savefig.dpi": 200,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.frameon": False,
        }
    )


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
            ax.plot(
                agg["sigma"],
                100 * agg["mean"],
                color=st["color"],
                marker=st["marker"],
                ms=4,
                label=f"{st['label']} (n={n})",
            )
            ax.fill_between(
                agg["sigma"],
                100 * (agg["mean"] - agg["std"]),
                100 * (agg["mean"] + agg["std"]),
                color=st["color"],
                alpha=0.15,
                lw=0,
            )
        ax.set(title=exp, xlabel="noise amplitude σ", ylabel="local energy δE (train error, %)")
        ax.legend()
    fig.tight_layout()
    return fig


def prepare_generalization(models: pd.DataFrame, le: pd.DataFrame, sigma_star: float) -> pd.DataFrame:
    """One row per model: its test error and its local energy at σ* (``delta_mean``, ``delta_std``)."""
    from toroids.stats import flatness_at

    at = flatness_at(le, sigma_star)
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
            ax.errorbar(
                100 * g["delta_mean"],
                100 * g["test_error"],
                xerr=100 * g["delta_std"],
                ls="none",
                color=st["color"],
                marker=st["marker"],
                ms=6,
                capsize=2,
                label=st["label"],
            )
        ax.set(title=exp, xlabel=f"local energy δE at σ = {sigma_star} (%)", ylabel="test error (%)")
        if (sub["delta_mean"] > 0).all():
            ax.set_xscale("log")
        ax.legend()
    fig.tight_layout()
    return fig


def prepare_paths(paths: pd.DataFrame, path: str, n_grid: int = 41) -> pd.DataFrame:
    """Mean and standard deviation over pairs of the train error (%) along one path family, per experiment
    and pair type. Each pair's curve is interpolated onto ``n_grid`` common x values first (single-bend
    paths put their bend at a pair-dependent x); for straight paths on the same grid this is the identity."""
    sub = paths[paths["path"] == path]
    if "order" in sub.columns and sub["order"].notna().any():  # random paths: first average over orders
        sub = sub.groupby(["experiment", "pair_type", "pair", "x"], as_index=False)["train_error"].mean()
    rows = []
    for (exp, ptype), g in sub.groupby(["experiment", "pair_type"]):
        xs_common = np.sort(g["x"].unique())
        counts = g.groupby("pair")["x"].nunique()
        # every pair on the same points (straight paths): use them as they are; else interpolate
        same = len(xs_common) <= n_grid and (counts == len(xs_common)).all()
        grid = xs_common if same else np.linspace(0.0, 1.0, n_grid)
        curves = np.array(
            [
                np.interp(grid, c.sort_values("x")["x"], 100 * c.sort_values("x")["train_error"])
                for _, c in g.groupby("pair")
            ]
        )
        std = curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(grid))
        for x, m, sd in zip(grid, curves.mean(axis=0), std):
            rows.append(
                {"experiment": exp, "pair_type": ptype, "x": x, "mean": m, "std": sd, "n": len(curves)}
            )
    return pd.DataFrame(rows, columns=["experiment", "pair_type", "x", "mean", "std", "n"])


def _type_order(types: object) -> list[str]:
    return sorted(types, key=lambda t: (PAIR_ORDER.index(t) if t in PAIR_ORDER else len(PAIR_ORDER), t))


def figure_paths(paths: pd.DataFrame, families: tuple[str, ...]) -> plt.Figure:
    """Train error (%) along each path family (columns), one row per experiment, one curve per pair type:
    mean over pairs, band = standard deviation over pairs (paper Figs. 2, 3, 9, 10)."""
    style()
    exps = sorted(paths[paths["path"].isin(families)]["experiment"].unique()) if len(paths) else []
    nrow, ncol = max(1, len(exps)), len(families)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.8 * ncol, 3.2 * nrow), squeeze=False)
    if not exps:
        for ax in axes[0]:
            _empty(ax, "no such paths in this study\n(a pair needs two models of one experiment)")
        return fig
    for r, exp in enumerate(exps):
        for c, fam in enumerate(families):
            ax = axes[r, c]
            agg = prepare_paths(paths[paths["experiment"] == exp], fam)
            if agg.empty:
                _empty(ax, f"{PATH_TITLE.get(fam, fam)}: not computed")
                continue
            for t in _type_order(agg["pair_type"].unique()):
                g = agg[agg["pair_type"] == t]
                col = _pair_color(t)
                ax.plot(g["x"], g["mean"], color=col, lw=1.5, label=f"{t} (n={int(g['n'].max())})")
                ax.fill_between(
                    g["x"], g["mean"] - g["std"], g["mean"] + g["std"], color=col, alpha=0.15, lw=0
                )
            ax.set(title=f"{exp}: {PATH_TITLE.get(fam, fam)}", xlim=(0, 1))
            ax.set_ylim(bottom=0)
            if r == nrow - 1:
                ax.set_xlabel("position along the path (rescaled distance)")
            if c == 0:
                ax.set_ylabel("train error (%)")
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


#: which single-bend variant's midpoint is used for the midpoint distances of each representation
MIDPOINT_VARIANT = {
    "raw": "linear",
    "aligned": "linear_aligned",
    "normalized": "linear",
    "normalized_aligned": "geodesic_aligned",
}
REPRESENTATION_STYLE = {
    "raw": ("Raw", "#bdbdbd", "o"),
    "aligned": ("Aligned", "#636363", "s"),
    "normalized": ("Normalized", "#9ecae1", "^"),
    "normalized_aligned": ("Normalized-Aligned", "#08519c", "D"),
}
BETWEEN_TITLE = {
    "endpoints": "endpoint – endpoint",
    "left_midpoint": "left endpoint – optimized midpoint",
    "right_midpoint": "right endpoint – optimized midpoint",
}


def prepare_distances(distances: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over pairs of the per-parameter distance, per experiment, ``between``,
    pair type and representation; midpoint rows use the variant of :data:`MIDPOINT_VARIANT`."""
    d = distances[distances["representation"].isin(list(REPRESENTATION_STYLE))].copy()
    if "variant" in d:
        keep = d["variant"].isna() | (d["variant"] == d["representation"].map(MIDPOINT_VARIANT))
        d = d[keep]
    return (
        d.groupby(["experiment", "between", "pair_type", "representation"])["distance"]
        .agg(mean="mean", std="std", n="count")
        .fillna({"std": 0.0})
        .reset_index()
    )


def figure_distances(distances: pd.DataFrame) -> plt.Figure:
    """Per-parameter Euclidean distances by pair type in four representations (paper Figs. 5 and 17):
    endpoint–endpoint, and each endpoint to the optimized midpoint; error bars = std over pairs."""
    style()
    agg = prepare_distances(distances) if len(distances) else pd.DataFrame()
    exps = sorted(agg["experiment"].unique()) if len(agg) else []
    betweens = [b for b in BETWEEN_TITLE if len(agg) and b in set(agg["between"])] or ["endpoints"]
    fig, axes = plt.subplots(
        max(1, len(exps)), len(betweens), figsize=(4 * len(betweens), 3.3 * max(1, len(exps))), squeeze=False
    )
    if not exps:
        _empty(axes[0, 0], "no pairs in this study")
        return fig
    for r, exp in enumerate(exps):
        for c, between in enumerate(betweens):
            ax = axes[r, c]
            sub = agg[(agg["experiment"] == exp) & (agg["between"] == between)]
            types = _type_order(sub["pair_type"].unique())
            pos = {t: i for i, t in enumerate(types)}
            for j, (rep, (label, col, mk)) in enumerate(REPRESENTATION_STYLE.items()):
                g = sub[sub["representation"] == rep]
                x = np.array([pos[t] for t in g["pair_type"]]) + (j - 1.5) * 0.12
                ax.errorbar(
                    x, g["mean"], yerr=g["std"], ls="none", marker=mk, color=col, capsize=2, label=label
                )
            ax.set_xticks(range(len(types)), types)
            ax.set_xlim(-0.5, len(types) - 0.5)
            ax.set(title=f"{exp}: {BETWEEN_TITLE[between]}", ylim=(0, None))
            if c == 0:
                ax.set_ylabel("distance (per parameter)")
            if r == 0 and c == 0:
                ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


#: contour levels of the paper's 2-D sections, train error in % (digest §5.4)
SECTION_LEVELS = [0, 0.025, 0.091, 0.33, 1.2, 4.5, 16, 60, 100]


def figure_sections(sections: pd.DataFrame) -> plt.Figure:
    """Train error (%) on the Gram–Schmidt plane through left, right and right-aligned (paper Figs. 4, 12–16):
    one row per section, one column per representation; the paper's log-spaced contour levels; the dashed
    curve is the straight path (raw) or the projected geodesic (normalized) from left to right-aligned."""
    style()
    pairs_ = list(dict.fromkeys(sections["pair"])) if len(sections) else []
    reps = list(dict.fromkeys(sections["representation"])) if len(sections) else ["raw"]
    fig, axes = plt.subplots(
        max(1, len(pairs_)), len(reps), figsize=(4.3 * len(reps), 3.8 * max(1, len(pairs_))), squeeze=False
    )
    if not pairs_:
        _empty(axes[0, 0], "no sections in this study")
        return fig
    cmap = plt.get_cmap("viridis", len(SECTION_LEVELS) - 1)
    norm = matplotlib.colors.BoundaryNorm(SECTION_LEVELS, cmap.N)
    for r, pair in enumerate(pairs_):
        for c, rep in enumerate(reps):
            ax = axes[r, c]
            sub = sections[(sections["pair"] == pair) & (sections["representation"] == rep)]
            grid = sub[sub["kind"] == "grid"].pivot(index="beta", columns="alpha", values="train_error")
            cs = ax.contourf(
                grid.columns, grid.index, 100 * grid.to_numpy(), levels=SECTION_LEVELS, cmap=cmap, norm=norm
            )
            path = sub[sub["kind"] == "path"]
            ax.plot(path["alpha"], path["beta"], "w--", lw=1.2)
            pts = sub[sub["kind"] == "point"].set_index("name")
            left, right = sub["left"].iloc[0], sub["right"].iloc[0]
            for name, model_id in (("left", left), ("right", right), ("right_aligned", right)):
                st = _sampler(model_id.rsplit("-", 2)[-2])
                ax.plot(
                    pts.loc[name, "alpha"],
                    pts.loc[name, "beta"],
                    marker=st["marker"],
                    color=st["color"],
                    mec="white",
                    ms=9,
                    ls="none",
                )
                ax.annotate(
                    name.replace("_", " "),
                    (pts.loc[name, "alpha"], pts.loc[name, "beta"]),
                    textcoords="offset points",
                    xytext=(5, 5),
                    color="white",
                    fontsize="small",
                )
            ax.set(title=f"{sub['pair_type'].iloc[0]} {rep}\n{left} ← {right}", xlabel="α", ylabel="β")
            ax.title.set_fontsize("small")
            bar = fig.colorbar(cs, ax=ax, label="train error (%)", ticks=SECTION_LEVELS)
            bar.ax.set_yticklabels([f"{v:g}" for v in SECTION_LEVELS])
    fig.tight_layout()
    return fig


def prepare_overparameterization(
    models: pd.DataFrame, local_energy: pd.DataFrame, distances: pd.DataFrame, barriers: pd.DataFrame
) -> pd.DataFrame:
    """One row per (binary experiment, sampler): the size (#params) and, averaged over models or over the
    pairs within the sampler's own type, test error, δE at ε*, Hamming distance raw and aligned, and the
    (order-averaged) maximum barrier along random shortest paths raw and aligned (paper Figs. 6, 18, 19).
    An experiment's family is its architecture and data set; sizes are compared within a family."""
    from toroids.stats import flatness_at

    bin_models = models[
        models["arch"].isin(["binary_perceptron", "committee", "binary_mlp", "binary_convnet"])
    ]
    if bin_models.empty:
        return pd.DataFrame()
    flat = flatness_at(local_energy, 0.0).set_index("model_id")["delta_mean"]
    per = bin_models.assign(flatness=bin_models["model_id"].map(flat))
    out = (
        per.groupby(["experiment", "arch", "dataset", "sampler"])
        .agg(
            n_params=("n_params", "max"),
            test_error=("test_error", "mean"),
            test_error_std=("test_error", "std"),
            flatness=("flatness", "mean"),
        )
        .reset_index()
    )
    letter = {"rsgd": "R", "sgd": "S", "adv": "A", "sam": "M", "esgd": "E", "adam": "D"}
    out["pair_type"] = out["sampler"].map(lambda x: f"{letter.get(x, x)}-{letter.get(x, x)}")
    if len(distances):
        d = distances[(distances.get("between", "endpoints") == "endpoints")]
        hd = d[d["representation"].isin(["hamming", "hamming_aligned"])]
        hd = hd.pivot_table(index=["experiment", "pair_type"], columns="representation", values="distance")
        out = out.merge(hd.reset_index(), on=["experiment", "pair_type"], how="left")
    if len(barriers):
        b = barriers[barriers["path"].isin(["random", "random_aligned"])]
        b = b.pivot_table(index=["experiment", "pair_type"], columns="path", values="barrier")
        b.columns = [f"barrier_{c}" for c in b.columns]
        out = out.merge(b.reset_index(), on=["experiment", "pair_type"], how="left")
    return out


def figure_overparameterization(table: pd.DataFrame) -> plt.Figure:
    """Binary networks against their size (paper Figs. 6, 18, 19): test error, δE at ε*, Hamming distance
    (raw dashed, aligned solid) and maximum barrier along random shortest paths (raw dashed, aligned solid),
    one row per family (architecture on a data set), one colour per sampler, pairs within a sampler."""
    style()
    fams = sorted({(a, d) for a, d in zip(table["arch"], table["dataset"])}) if len(table) else []
    fig, axes = plt.subplots(max(1, len(fams)), 4, figsize=(16, 3.4 * max(1, len(fams))), squeeze=False)
    if not fams:
        _empty(axes[0, 0], "no binary networks in this study")
        for ax in axes[0, 1:]:
            ax.set_axis_off()
        return fig
    panels = [
        ("test_error", None, "test error (%)", False),
        ("flatness", None, "local energy δE at ε* (%)", False),
        ("hamming_aligned", "hamming", "Hamming distance (fraction)", False),
        ("barrier_random_aligned", "barrier_random", "max barrier, random path (%)", True),
    ]
    for r, (arch, dataset) in enumerate(fams):
        sub = table[(table["arch"] == arch) & (table["dataset"] == dataset)].sort_values("n_params")
        for c, (col, raw_col, label, log_y) in enumerate(panels):
            ax = axes[r, c]
            scale = 1 if col.startswith("hamming") else 100
            for sampler, g in sub.groupby("sampler"):
                st = _sampler(sampler)
                if col in g:
                    ax.plot(
                        g["n_params"],
                        scale * g[col],
                        color=st["color"],
                        marker=st["marker"],
                        label=st["label"],
                    )
                if raw_col and raw_col in g:
                    ax.plot(
                        g["n_params"],
                        scale * g[raw_col],
                        color=st["color"],
                        marker=st["marker"],
                        ls="--",
                        mfc="none",
                    )
            ax.set(xscale="log", xlabel="number of parameters", ylabel=label, title=f"{arch} on {dataset}")
            if log_y and (sub.filter(like="barrier") > 0).any().any():
                ax.set_yscale("log")
            if c == 0:
                ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
