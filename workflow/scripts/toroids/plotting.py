"""The paper's visual language, and the figures of the study.

Each figure has a data-preparation function (tested on known rows) and a drawing function. Colours and
markers follow the paper (digest §6): RSGD green triangles, SGD blue circles, ADV red squares; pair types
S-S blue, A-A red, S-A green, R-R black, R-S magenta, R-A orange. Samplers beyond the paper get their own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.patheffects  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from toroids.study import BINARY_ARCHS, SAMPLER_LETTER  # noqa: E402

__all__ = [
    "PAIR_COLOR",
    "SAMPLER_STYLE",
    "SECTION_LEVELS",
    "binary_legend",
    "figure_deep_binary",
    "figure_distances",
    "figure_flatness",
    "figure_paths",
    "figure_sections",
    "figure_sweep",
    "figure_triplet_sections",
    "prepare_binary_paths",
    "prepare_distances",
    "prepare_generalization",
    "prepare_local_energy",
    "prepare_overparameterization",
    "prepare_paths",
    "save_figure",
    "section_grid",
    "section_pairs",
    "style",
    "triplet_rows",
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


def prepare_generalization(
    models: pd.DataFrame, le: pd.DataFrame, sigma_star: float | None = None
) -> pd.DataFrame:
    """One row per model: its test error and its local energy at its σ* (``delta_mean``, ``delta_std``;
    the ``is_star`` rows, else those at ``sigma_star``)."""
    from toroids.stats import flatness_at

    at = flatness_at(le, sigma_star)
    out = models.merge(at, on="model_id", how="left", validate="one_to_one")
    missing = out[out["delta_mean"].isna()]["model_id"].tolist()
    if missing:
        raise ValueError(f"no local energy at σ* for {missing}")
    return out


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


def prepare_overparameterization(
    models: pd.DataFrame, local_energy: pd.DataFrame, distances: pd.DataFrame, barriers: pd.DataFrame
) -> pd.DataFrame:
    """One row per (binary experiment, sampler): the size (#params) and, averaged over models or over the
    pairs within the sampler's own type, test error, δE at ε*, Hamming distance raw and aligned, and the
    (order-averaged) maximum barrier along random shortest paths raw and aligned (paper Figs. 6, 18, 19).
    An experiment's family is its architecture and data set; sizes are compared within a family."""
    from toroids.stats import flatness_at

    bin_models = models[models["arch"].isin(BINARY_ARCHS)]
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
    letter = {s: SAMPLER_LETTER.get(s, s) for s in out["sampler"].unique()}
    out["pair_type"] = out["sampler"].map(lambda x: f"{letter[x]}-{letter[x]}")
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


# -- layout helpers --------------------------------------------------------------------------------------


#: one panel, in inches: three side by side make a figure a page wide (~10 in) whose text, scaled to the
#: 7 in of a two-column paper's full width, is still ≥ 7 pt
PANEL_W, PANEL_H = 3.3, 2.8


def _grid(
    n: int, ncols: int, width: float = PANEL_W, height: float = PANEL_H, layout: str | None = None
) -> tuple[plt.Figure, list[plt.Axes]]:
    """``n`` panels on rows of ``ncols``; unused axes switched off. At least one panel."""
    n = max(1, n)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout=layout
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_axis_off()
    return fig, flat[:n]


def _plain_log(ax: plt.Axes, axis: str = "x") -> None:
    """Log-axis tick labels as plain numbers (3000, 0.1), not 3×10³."""
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 1, 2, 5, 10, …
    target.set_major_formatter(fmt)
    target.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _log_scale(ax: plt.Axes, axis: str, values: Iterable[float]) -> None:
    """A log axis for positive ``values`` (in the units plotted); with zeros among them a symmetric log axis,
    linear below the decade under the smallest positive value, so that a δE = 0 is drawn at 0 and not
    dropped, a decade below the first labelled one (a threshold at the value itself put the 0 and the first
    decade's labels on top of each other); linear when none is positive."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    positive = v[v > 0]
    if not len(positive):
        return
    if (v > 0).all():
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        _plain_log(ax, axis)
        return
    threshold = 10 ** math.floor(math.log10(float(positive.min())))
    (ax.set_xscale if axis == "x" else ax.set_yscale)("symlog", linthresh=threshold)


def _nothing(message: str) -> plt.Figure:
    style()
    fig, axes = _grid(1, 1)
    _empty(axes[0], message)
    return fig


def _order_samplers(samplers: object) -> list[str]:
    order = list(SAMPLER_STYLE)
    return sorted(samplers, key=lambda s: (order.index(s) if s in order else len(order), s))


# -- Fig. 1: flatness and generalization -----------------------------------------------------------------


def prepare_local_energy(le: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Per sampler and σ (or flipped fraction ε) of one experiment: the mean over models of δE, the
    standard deviation over models (``std``, the band) and the number of models ``n``."""
    sub = le[le["experiment"] == experiment]
    return (
        sub.groupby(["sampler", "sigma"])["delta_mean"]
        .agg(mean="mean", std="std", n="count")
        .fillna({"std": 0.0})
        .reset_index()
    )


def _ax_local_energy(ax: plt.Axes, le: pd.DataFrame, experiment: str, xlabel: str, log_y: bool) -> None:
    agg = prepare_local_energy(le, experiment)
    for sampler in _order_samplers(agg["sampler"].unique()):
        g, st = agg[agg["sampler"] == sampler], _sampler(sampler)
        ax.plot(g["sigma"], 100 * g["mean"], color=st["color"], marker=st["marker"], ms=4, label=st["label"])
        lo = (g["mean"] - g["std"]).clip(lower=0)
        ax.fill_between(
            g["sigma"], 100 * lo, 100 * (g["mean"] + g["std"]), color=st["color"], alpha=0.15, lw=0
        )
    # δE(σ = 0) is 0 by definition, and a flat minimum can have δE = 0 at small σ: a symmetric log axis
    # draws them at 0 (linear below the smallest positive value) instead of dropping them
    if log_y:
        _log_scale(ax, "y", 100 * agg["mean"])
    ax.set(xlabel=xlabel, ylabel="local energy δE (train error, %)")


def figure_flatness(models: pd.DataFrame, le: pd.DataFrame, experiments: Sequence[str]) -> plt.Figure:
    """Paper Fig. 1, one row per experiment: (i) δE(σ) in % against σ on the experiment's own grid, log y,
    mean over the sampler's models with the standard deviation over models as band; (ii) test error against
    δE at the experiment's σ* (log x; named in the axis label), one marker per model, horizontal bars =
    standard deviation over the noise draws."""
    from toroids.stats import star_label

    style()
    if not experiments:
        return _nothing("no continuous experiment in this study")
    points = prepare_generalization(models[models["experiment"].isin(experiments)], le)
    fig, axes = plt.subplots(
        len(experiments), 2, figsize=(2 * PANEL_W, PANEL_H * len(experiments)), squeeze=False
    )
    for r, exp in enumerate(experiments):
        ax1, ax2 = axes[r]
        _ax_local_energy(ax1, le, exp, "noise amplitude σ", log_y=True)
        ax1.set_title(f"{exp}: local energy")
        ax1.legend(fontsize="small")
        sub = points[points["experiment"] == exp]
        for sampler in _order_samplers(sub["sampler"].unique()):
            g, st = sub[sub["sampler"] == sampler], _sampler(sampler)
            ax2.errorbar(
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
        _log_scale(ax2, "x", 100 * sub["delta_mean"])
        ax2.set(title=f"{exp}: flatness and generalization", ylabel="test error (%)",
                xlabel=f"δE at σ* = {star_label(le, sub['model_id'])} (%)")  # fmt: skip
    fig.tight_layout()
    return fig


# -- Figs. 2, 3, 9, 10: paths ----------------------------------------------------------------------------


def figure_paths(paths: pd.DataFrame, panels: Sequence[tuple[str, str]], ncols: int = 3) -> plt.Figure:
    """Train error (%) along one path family per panel ``(experiment, family)``, one curve per pair type:
    mean over pairs, band = standard deviation over pairs (paper Figs. 2, 3, 9, 10)."""
    style()
    if not panels:
        return _nothing("no pairs in this study")
    fig, axes = _grid(len(panels), ncols, layout="constrained")
    pairs_of: dict[str, int] = {}  # pair type -> the most pairs it has in a panel (the legend's n)
    for i, (ax, (exp, fam)) in enumerate(zip(axes, panels)):
        agg = prepare_paths(paths[paths["experiment"] == exp], fam) if len(paths) else pd.DataFrame()
        ax.set_title(f"{exp}\n{PATH_TITLE.get(fam, fam)}", fontsize="medium")
        if agg.empty:
            _empty(ax, f"{PATH_TITLE.get(fam, fam)}: not computed")
            continue
        for t in _type_order(agg["pair_type"].unique()):
            g = agg[agg["pair_type"] == t]
            col = _pair_color(t)
            ax.plot(g["x"], g["mean"], color=col, lw=1.5)
            if g["n"].max() >= 2:  # a band over one pair would promise a spread that was never measured
                lo, hi = g["mean"] - g["std"], g["mean"] + g["std"]
                ax.fill_between(g["x"], lo, hi, color=col, alpha=0.15, lw=0)
            pairs_of[t] = max(pairs_of.get(t, 0), int(g["n"].max()))
        ax.set(xlim=(0, 1), xlabel="position on the path (rescaled)")
        ax.set_ylim(bottom=0)
        if i % ncols == 0:
            ax.set_ylabel("train error (%)")
    # one legend for the figure, below it: it never hides a curve
    handles = [
        matplotlib.lines.Line2D([], [], color=_pair_color(t), lw=1.5, label=f"{t} (n={n})")
        for t, n in ((t, pairs_of[t]) for t in _type_order(pairs_of))
    ]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)), fontsize="small")
    return fig


# -- Figs. 5, 17: distances ------------------------------------------------------------------------------


def figure_distances(distances: pd.DataFrame, experiments: Sequence[str]) -> plt.Figure:
    """Per-parameter Euclidean distances by pair type in four representations (paper Figs. 5 and 17):
    endpoint–endpoint, and each endpoint to the optimized midpoint; error bars = std over pairs."""
    style()
    agg = prepare_distances(distances) if len(distances) else pd.DataFrame()
    agg = agg[agg["experiment"].isin(experiments)] if len(agg) else agg
    if agg.empty:
        return _nothing("no pairs in this study")
    betweens = [b for b in BETWEEN_TITLE if b in set(agg["between"])]
    fig, axes = plt.subplots(
        len(experiments),
        len(betweens),
        figsize=(PANEL_W * len(betweens), PANEL_H * len(experiments)),
        squeeze=False,
    )
    for r, exp in enumerate(experiments):
        for c, between in enumerate(betweens):
            ax = axes[r, c]
            sub = agg[(agg["experiment"] == exp) & (agg["between"] == between)]
            if sub.empty:
                _empty(ax, f"{exp}: {BETWEEN_TITLE[between]} not computed")
                continue
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
            ax.set(title=f"{exp}\n{BETWEEN_TITLE[between]}", ylim=(0, None), xlabel="pair type")
            ax.title.set_fontsize("medium")
            if c == 0:
                ax.set_ylabel("distance (per parameter)")
            if r == 0 and c == 0:
                ax.legend(fontsize="x-small")
    fig.tight_layout()
    return fig


# -- Figs. 4, 11–16: 2-D sections of pairs ---------------------------------------------------------------

#: contour levels of the paper's 2-D sections, train error in % (digest §5.4)
SECTION_LEVELS = [0, 0.025, 0.091, 0.33, 1.2, 4.5, 16, 60, 100]
#: the sections' colour map: it holds neither the green of RSGD nor the blue of SGD, so their markers stand
#: out on it (on viridis they did not)
SECTION_CMAP = "magma"


def section_pairs(
    sections: pd.DataFrame, experiment: str, types: Sequence[str] | None, every: bool = False
) -> list[str]:
    """Which sections of ``experiment`` a figure shows. ``types=None``: the first pair of every pair type,
    in the paper's order; else the first pair of the first of ``types`` the study has (``every``: of each
    of them); if it has none of them, the first section of the experiment (a figure is never empty when
    the study has a section)."""
    if sections.empty:
        return []
    sub = sections[sections["experiment"] == experiment].drop_duplicates("pair")
    first = {t: g["pair"].iloc[0] for t, g in sub.groupby("pair_type", sort=False)}
    if types is None:
        return [first[t] for t in _type_order(first)]
    found = [first[t] for t in types if t in first]
    if found:
        return found if every else found[:1]
    return list(sub["pair"].iloc[:1])


def section_grid(sub: pd.DataFrame, value: str) -> pd.DataFrame:
    """The grid rows of one section plane as a β × α table of ``value`` (in %)."""
    grid = sub[sub["kind"] == "grid"].pivot(index="beta", columns="alpha", values=value)
    return 100 * grid.sort_index().sort_index(axis=1)


def _mark(ax: plt.Axes, a: float, b: float, sampler: str, label: str) -> None:
    """A network on a section: its sampler's marker, and its label on the side where there is room."""
    st = _sampler(sampler)
    # a white ring inside a black one: the sampler's colour stays legible on every colour of the map
    ax.plot(a, b, marker=st["marker"], color="black", ms=12, ls="none")
    ax.plot(a, b, marker=st["marker"], color=st["color"], mec="white", mew=1.2, ms=9, ls="none")
    lo, hi = ax.get_xlim()
    right_half = a > lo + 0.5 * (hi - lo)
    ax.annotate(
        label,
        (a, b),
        textcoords="offset points",
        xytext=(-6, 6) if right_half else (6, 6),
        ha="right" if right_half else "left",
        color="white",
        fontsize="small",
        path_effects=[matplotlib.patheffects.withStroke(linewidth=2, foreground="black")],
    )


def _sampler_of(model_id: str) -> str:
    return model_id.rsplit("-", 2)[-2]


def figure_sections(
    sections: pd.DataFrame, panels: Sequence[tuple[str, str, str, str]], ncols: int = 2
) -> plt.Figure:
    """The error (%) on the Gram–Schmidt plane through left, right and right aligned, one panel per
    ``(experiment, pair, representation, error column)`` (paper Figs. 4, 11–16), with the paper's
    log-spaced contour levels; dashed: the straight path (raw) or the projected geodesic (normalized) from
    left to right aligned."""
    style()
    if not panels:
        return _nothing("no 2-D sections in this study")
    cmap = plt.get_cmap(SECTION_CMAP, len(SECTION_LEVELS) - 1)
    norm = matplotlib.colors.BoundaryNorm(SECTION_LEVELS, cmap.N)
    fig, axes = _grid(len(panels), ncols, width=PANEL_W, height=PANEL_W, layout="constrained")
    for ax, (exp, pair, rep, err) in zip(axes, panels):
        sub = sections[(sections["pair"] == pair) & (sections["representation"] == rep)]
        if sub.empty:
            _empty(ax, f"{pair}: no {rep} section")
            continue
        grid = section_grid(sub, err)
        ax.contourf(grid.columns, grid.index, grid.to_numpy(), levels=SECTION_LEVELS, cmap=cmap, norm=norm)
        path = sub[sub["kind"] == "path"]
        ax.plot(path["alpha"], path["beta"], "w--", lw=1.2)
        pts = sub[sub["kind"] == "point"].set_index("name")
        left, right = sub["left"].iloc[0], sub["right"].iloc[0]
        for name, model_id in (("left", left), ("right", right), ("right_aligned", right)):
            a, b = pts.loc[name, "alpha"], pts.loc[name, "beta"]
            _mark(ax, a, b, _sampler_of(model_id), name.replace("_", " "))
        what = "train" if err == "train_error" else "test"
        ax.set(title=f"{exp}: {sub['pair_type'].iloc[0]}, {rep}, {what} error", xlabel="α", ylabel="β")
        ax.title.set_fontsize("small")
    errors = {"train" if p[3] == "train_error" else "test" for p in panels}
    fig.colorbar(
        matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=axes,
        label=f"{' / '.join(sorted(errors, reverse=True))} error (%)",
        ticks=SECTION_LEVELS,
        format=matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"),
        shrink=0.9,
    )
    return fig


# -- Figs. 8, 20–23: 2-D sections through three binary solutions -----------------------------------------


def triplet_rows(trip: pd.DataFrame, experiments: Sequence[str], samplers: Sequence[str]) -> list[str]:
    """The triplet sections a figure shows, one row each: experiments in the given order, and within an
    experiment the given samplers' triplets in the given order (those the study has)."""
    if trip.empty:
        return []
    ids = trip.drop_duplicates("triplet")
    out = []
    for exp in experiments:
        sub = ids[ids["experiment"] == exp]
        for s in samplers:
            out += sub[sub["sampler"] == s]["triplet"].tolist()
    return out


def figure_triplet_sections(
    trip: pd.DataFrame, experiments: Sequence[str], samplers: Sequence[str]
) -> plt.Figure:
    """Train error (%) on the plane through three solutions of one sampler, built from the binary nets'
    latent weights and binarized at every grid point (paper Figs. 8, 20–23): left column as trained, right
    column with the second and third aligned to the first; one row per triplet."""
    style()
    rows = triplet_rows(trip, experiments, samplers)
    if not rows:
        return _nothing("no triplet sections in this study")
    fig, axes = plt.subplots(
        len(rows), 2, figsize=(2 * PANEL_W + 0.8, PANEL_W * len(rows)), squeeze=False, layout="constrained"
    )
    hi = max(1.0, float(100 * trip[trip["triplet"].isin(rows)]["train_error"].max()))
    levels = matplotlib.ticker.MaxNLocator(12).tick_values(0.0, hi)
    norm = matplotlib.colors.BoundaryNorm(levels, 256)
    for r, tid in enumerate(rows):
        for c, rep in enumerate(("raw", "aligned")):
            ax = axes[r, c]
            sub = trip[(trip["triplet"] == tid) & (trip["representation"] == rep)]
            if sub.empty:
                _empty(ax, f"{tid}: no {rep} plane")
                continue
            grid = section_grid(sub, "train_error")
            z = grid.to_numpy()
            ax.contourf(grid.columns, grid.index, z, levels=levels, cmap=SECTION_CMAP, norm=norm)
            pts = sub[sub["kind"] == "point"].set_index("name")
            sampler = sub["sampler"].iloc[0]
            for name in ("a", "b", "c"):
                _mark(ax, pts.loc[name, "alpha"], pts.loc[name, "beta"], sampler, name)
            title = "not aligned" if rep == "raw" else "b, c aligned to a"
            # two lines, and the colour bar below the panels: the right column's titles stay clear of it
            label = _sampler(sampler)["label"]
            ax.set(title=f"{sub['experiment'].iloc[0]}\n{label}, {title}", xlabel="α", ylabel="β")
            ax.title.set_fontsize("small")
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=SECTION_CMAP)
    fig.colorbar(mappable, ax=axes, label="train error (%)", location="bottom", shrink=0.8, aspect=40)
    return fig


# -- Figs. 6, 18, 19: binary networks against their size --------------------------------------------------


def figure_sweep(tables: dict[str, pd.DataFrame], experiments: Sequence[str]) -> plt.Figure:
    """An over-parameterization sweep of one binary architecture (paper Figs. 6, 18, 19), 2×3 panels:
    δE against the flipped fraction ε for the largest net; δE at ε* against #params; test error against
    #params; Hamming distance between two solutions of one sampler against #params (aligned solid, raw
    dashed); maximum train error along random shortest paths against #params (log–log, aligned solid, raw
    dashed). Means over the models or over the same-sampler pairs; bars = standard deviation over models.
    ε* is each model's own (the ``is_star`` rows), named in the axis label."""
    from toroids.stats import star_label

    style()
    models = tables["models"]
    table = prepare_overparameterization(
        models[models["experiment"].isin(experiments)],
        tables["local_energy"],
        tables["distances"],
        tables["barriers"],
    )
    if table.empty:
        return _nothing("no binary networks in this study")
    table = table.sort_values("n_params")
    largest = table.loc[table["n_params"].idxmax(), "experiment"]
    ids = models.loc[models["experiment"].isin(experiments), "model_id"]
    fig, axes = plt.subplots(2, 3, figsize=(3 * PANEL_W, 2 * PANEL_H + 0.4))
    ax = axes[0, 0]
    _ax_local_energy(ax, tables["local_energy"], largest, "flipped fraction ε", log_y=False)
    ax.set_title(f"local energy, {largest}", fontsize="small")
    ax.legend(fontsize="small", loc="upper left")
    panels = [
        (axes[0, 1], "flatness", None, f"δE at ε* = {star_label(tables['local_energy'], ids)} (%)",
         100, "flatness against size"),  # fmt: skip
        (axes[0, 2], "test_error", None, "test error (%)", 100, "generalization"),
        (
            axes[1, 0],
            "hamming_aligned",
            "hamming",
            "Hamming distance (fraction)",
            1,
            "distance between solutions",
        ),
        (
            axes[1, 1],
            "barrier_random_aligned",
            "barrier_random",
            "max train error on the path (%)",
            100,
            "barrier, random shortest paths",
        ),
    ]
    for a, col, raw_col, label, scale, title in panels:
        for sampler in _order_samplers(table["sampler"].unique()):
            g, st = table[table["sampler"] == sampler], _sampler(sampler)
            yerr = scale * g["test_error_std"] if col == "test_error" else None
            if col in g:
                a.errorbar(
                    g["n_params"],
                    scale * g[col],
                    yerr=yerr,
                    color=st["color"],
                    marker=st["marker"],
                    ms=4,
                    capsize=2,
                    label=st["label"],
                )
            if raw_col and raw_col in g:
                a.plot(
                    g["n_params"],
                    scale * g[raw_col],
                    color=st["color"],
                    marker=st["marker"],
                    ls="--",
                    mfc="none",
                    ms=4,
                )
        a.set(xscale="log", xlabel="number of parameters", ylabel=label)
        a.set_title(title, fontsize="small")
        _plain_log(a, "x")
        a.set_xticks(sorted(table["n_params"].unique()))  # the sweep's sizes, whatever decade they span
    if (table.filter(like="barrier_random") > 0).any().any():
        axes[1, 1].set_yscale("log")
        _plain_log(axes[1, 1], "y")
    key = axes[1, 2]
    key.set_axis_off()
    handles = [
        matplotlib.lines.Line2D([], [], color="k", ls="-", label="aligned (permutations, sign flips)"),
        matplotlib.lines.Line2D([], [], color="k", ls="--", mfc="none", marker="o", label="raw"),
    ] + [
        matplotlib.lines.Line2D(
            [], [], color=_sampler(s)["color"], marker=_sampler(s)["marker"], label=_sampler(s)["label"]
        )
        for s in _order_samplers(table["sampler"].unique())
    ]
    key.legend(handles=handles, loc="center", title=f"{table['arch'].iloc[0]} on {table['dataset'].iloc[0]}")
    fig.tight_layout()
    return fig


# -- Fig. 7: deep binary networks --------------------------------------------------------------------------


def prepare_binary_paths(
    paths: pd.DataFrame, distances: pd.DataFrame, experiment: str, path: str
) -> pd.DataFrame:
    """Random shortest paths of one experiment and family, per pair type: the mean and std over pairs of
    the train error (%) against the Hamming distance from the left endpoint, ``x · d`` with ``d`` the mean
    (raw or aligned) Hamming distance of the type's pairs, so that alignment shortens the x range."""
    agg = prepare_paths(paths[paths["experiment"] == experiment], path)
    rep = "hamming_aligned" if "aligned" in path else "hamming"
    d = distances[(distances["experiment"] == experiment) & (distances["representation"] == rep)]
    if "between" in d:
        d = d[d["between"] == "endpoints"]
    scale = d.groupby("pair_type")["distance"].mean()
    agg["hamming"] = agg["x"] * agg["pair_type"].map(scale)
    return agg


def binary_legend(models: pd.DataFrame, experiment: str) -> dict[str, str]:
    """``sampler -> 'RSGD: test 10.2 ± 0.1%'``: mean and standard deviation over the sampler's models."""
    sub = models[models["experiment"] == experiment]
    out = {}
    for sampler in _order_samplers(sub["sampler"].unique()):
        e = 100 * sub[sub["sampler"] == sampler]["test_error"]
        sd = e.std() if len(e) > 1 else 0.0
        out[sampler] = f"{_sampler(sampler)['label']}: test {e.mean():.1f} ± {sd:.1f}%"
    return out


def figure_deep_binary(tables: dict[str, pd.DataFrame], experiments: Sequence[str]) -> plt.Figure:
    """Paper Fig. 7, one row per experiment: δE against the flipped fraction ε, the legend with the test
    errors (mean ± std over models); train error along random shortest paths between two solutions of one
    sampler, raw (light, dashed) and aligned (dark), against the Hamming distance from the left solution, so
    that alignment shortens the path; the single-bend paths through an optimized midpoint (the paper's
    insets), raw and aligned, against the rescaled position. Curves: means over pairs (and orders)."""
    style()
    if not experiments:
        return _nothing("no binary networks with pairs in this study")
    models, le, paths, dist = tables["models"], tables["local_energy"], tables["paths"], tables["distances"]
    sub_all = paths[paths["experiment"].isin(experiments)] if len(paths) else paths
    # the bends' column only when some row has single bends: no panel that can only say "not computed"
    bends = len(sub_all) and sub_all["path"].isin(["random_bend", "random_aligned_bend"]).any()
    ncols = 3 if bends else 2
    fig, axes = plt.subplots(
        len(experiments), ncols, figsize=(ncols * PANEL_W, (PANEL_H + 0.4) * len(experiments)), squeeze=False
    )
    for r, exp in enumerate(experiments):
        ax1, ax2 = axes[r][:2]
        _ax_local_energy(ax1, le, exp, "flipped fraction ε", log_y=False)
        labels = binary_legend(models, exp)
        for line in ax1.get_lines():
            key = next((s for s in labels if _sampler(s)["label"] == line.get_label()), None)
            if key:
                flat = not np.any(np.asarray(line.get_ydata(), dtype=float) > 0)
                line.set_label(labels[key] + (" (δE = 0 throughout)" if flat else ""))
        ax1.legend(fontsize="x-small", loc="upper left")
        ax1.set_title(f"{exp}\nlocal energy", fontsize="small")
        same = [f"{SAMPLER_LETTER[s]}-{SAMPLER_LETTER[s]}" for s in labels if s in SAMPLER_LETTER]
        sub = paths[paths["experiment"] == exp] if len(paths) else paths
        panels = [(ax2, ("random", "random_aligned"), "hamming")]
        if bends:
            panels.append((axes[r][2], ("random_bend", "random_aligned_bend"), "x"))
        for ax, (raw, aligned), x in panels:
            if not _binary_path_panel(ax, sub, dist, exp, raw, aligned, x, same):
                _empty(ax, "not computed for this experiment")
                continue
            ax.set_ylim(bottom=0)
            ax.set_ylabel("train error (%)")
            ax.legend(fontsize="x-small", ncol=1, loc="upper left")
        ax2.set(xlabel="Hamming distance from the left (fraction)")
        ax2.set_title(f"{exp}\nrandom shortest paths", fontsize="small")
        if bends:
            axes[r][2].set(xlabel="position along the path (rescaled)", xlim=(0, 1))
            axes[r][2].set_title(f"{exp}\nsingle bend through an optimized midpoint", fontsize="small")
    fig.tight_layout()
    return fig


def _binary_path_panel(
    ax: plt.Axes, sub: pd.DataFrame, dist: pd.DataFrame, exp: str, raw: str, aligned: str, x: str,
    types: Sequence[str],
) -> bool:
    """One panel of Fig. 7's paths, raw (light, dashed) and aligned (dark) per same-sampler pair type; a
    legend entry for every line, saying so where a line hides another (aligned = raw: no permutation
    changed the pair, e.g. a perceptron) or lies on the axis (0 throughout). False when nothing to draw."""
    fams = {
        f: prepare_binary_paths(sub, dist, exp, f) if len(sub) else pd.DataFrame() for f in (raw, aligned)
    }
    drawn = False
    for t in types:
        g = {f: a[a["pair_type"] == t] for f, a in fams.items() if len(a) and t in set(a["pair_type"])}
        if not g:
            continue
        color = _pair_color(t)
        # the same curve: errors and x (alignment shortens the Hamming distance even where errors agree)
        same = raw in g and aligned in g and len(g[raw]) == len(g[aligned]) and all(
            np.allclose(g[raw][c].to_numpy(dtype=float), g[aligned][c].to_numpy(dtype=float), equal_nan=True)
            for c in ("mean", x)
        )
        for f, (ls, alpha, what) in ((raw, ("--", 0.5, "raw")), (aligned, ("-", 1.0, "aligned"))):
            if f not in g or (same and f == raw):
                continue
            if same:
                what = "aligned = raw"
            if not (g[f]["mean"] > 0).any():
                what += " (0 throughout)"
            ax.plot(g[f][x], g[f]["mean"], ls=ls, color=color, alpha=alpha, label=f"{t} {what}")
            drawn = True
    return drawn
