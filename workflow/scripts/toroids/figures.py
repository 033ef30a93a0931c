"""The figure manifest: each paper figure's name, the tables it reads, and the function that draws it.

A figure rule names its inputs after the tables (``models``, ``local_energy``, ``paths``, ``distances``,
``sections``); :func:`render` loads them and calls the figure's function. A table that is empty (a study
without pairs, say) is passed as an empty frame, and the figure says so in its panel instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from toroids.study import BEND_PATHS, BINARY_PATHS, PATHS

# Kept free of torch, pandas and matplotlib at import time: the Snakefile reads the manifest to build the
# DAG, and the plotting environment has no torch.

__all__ = ["FIGURES", "Figure", "load_tables", "render"]


@dataclass(frozen=True)
class Figure:
    paper: str  # the paper's figure(s) it reproduces
    tables: tuple[str, ...]
    draw: Callable[[Any, dict[str, Any], dict[str, Any]], Any]  # (plotting module, tables, params) -> figure
    caption: str  # one line for the README's list


FIGURES: dict[str, Figure] = {
    "fig01_local_energy": Figure(
        "Fig. 1 (i)",
        ("local_energy",),
        lambda pl, t, p: pl.figure_local_energy(t["local_energy"]),
        "local energy δE against σ, per sampler",
    ),
    "fig01_generalization": Figure(
        "Fig. 1 (ii)",
        ("models", "local_energy"),
        lambda pl, t, p: pl.figure_generalization(
            pl.prepare_generalization(t["models"], t["local_energy"], p["sigma_star"]), p["sigma_star"]
        ),
        "test error against δE at σ*",
    ),
    "fig02_paths": Figure(
        "Figs. 2 and 9",
        ("paths",),
        lambda pl, t, p: pl.figure_paths(t["paths"], PATHS),
        "train error along the Linear, Linear-Aligned and Geodesic-Aligned paths, per pair type",
    ),
    "fig03_bend_paths": Figure(
        "Figs. 3 and 10",
        ("paths",),
        lambda pl, t, p: pl.figure_paths(t["paths"], BEND_PATHS),
        "train error along the single-bend paths through optimized midpoints",
    ),
    "fig04_sections": Figure(
        "Figs. 4 and 11–16",
        ("sections",),
        lambda pl, t, p: pl.figure_sections(t["sections"]),
        "train error on 2-D sections through left, right and right aligned, raw and normalized",
    ),
    "fig05_distances": Figure(
        "Figs. 5 and 17",
        ("distances",),
        lambda pl, t, p: pl.figure_distances(t["distances"]),
        "per-parameter distances by pair type in four representations, endpoints and midpoints",
    ),
    "fig06_overparameterization": Figure(
        "Figs. 6, 18 and 19",
        ("models", "local_energy", "distances", "barriers"),
        lambda pl, t, p: pl.figure_overparameterization(
            pl.prepare_overparameterization(t["models"], t["local_energy"], t["distances"], t["barriers"])
        ),
        "binary networks against their size: test error, flatness, Hamming distances, barriers",
    ),
    "fig07_binary_paths": Figure(
        "Fig. 7 (right) and its insets",
        ("paths",),
        lambda pl, t, p: pl.figure_paths(t["paths"], BINARY_PATHS),
        "train error along random shortest paths between binary solutions, raw, aligned, single bend",
    ),
}


def load_tables(paths: Mapping[str, str]) -> dict[str, Any]:
    """Read each named CSV into a DataFrame; an empty file gives an empty frame."""
    from toroids.tables import read_or_empty

    return {name: read_or_empty(path) for name, path in paths.items()}


def render(name: str, tables: Mapping[str, str], params: Mapping[str, Any], pdf: str, png: str) -> None:
    """Draw figure ``name`` from its tables and save it as PDF and PNG."""
    from toroids import plotting

    fig = FIGURES[name]
    frames = load_tables({t: tables[t] for t in fig.tables})
    plotting.save_figure(fig.draw(plotting, frames, dict(params)), pdf, png)
