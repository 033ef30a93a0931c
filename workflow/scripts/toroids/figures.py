"""The figure manifest: every figure 1–23 of the paper, the tables it reads, the experiments it draws.

Each paper figure is one rule, ``figNN_<name>``, drawing ``results/{study}/figures/figNN_<name>.{pdf,png}``.
A figure is made of *slots* (a row, a group of panels); each slot says which experiments it can draw:

* ``kind``: continuous or binary networks; ``needs``: what the experiment must have computed (models, pairs,
  single-bend midpoints, 2-D sections of pairs, triplet sections);
* ``archs`` and ``prefer``: the paper's architecture(s) and, in order, its (architecture, data set)
  combinations. Among the study's experiments that qualify, the paper's combinations come first (in the
  paper's order), the rest in config order;
* ``many``: ``one`` experiment, ``all`` of them, the whole ``family`` (every experiment with the chosen
  architecture and data set: an over-parameterization sweep) or the ``last_per_family`` (its largest net);
* ``fallback``: when no experiment has one of ``archs``, take any experiment of the kind.

The rule the manifest follows: the main-text figures (1–8) and Fig. 11, which show "the" combination, fall
back to what the study has, so that a study of other networks still gets every main figure; the appendix
figures that repeat a figure for another named architecture (12–16, 18–23) do not. A slot that finds nothing
is *left out*: the figure index (``figures/index.csv``, in the report) has one line per figure saying what
was drawn and what was left out and why; a figure with no slot at all is not drawn, and says so there.

Kept free of torch, pandas and matplotlib at import time: the Snakefile reads the manifest to build the DAG,
and the plotting environment has no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toroids.study import BEND_PATHS, BINARY_ARCHS, PATHS, experiment_name, pairs, per_type, triplets

__all__ = [
    "FIGURES",
    "Figure",
    "Selection",
    "Slot",
    "figure_index",
    "load_tables",
    "render",
    "select",
    "select_all",
]

NEEDS = ("models", "pairs", "midpoints", "sections", "triplets")

#: the paper's six continuous combinations, in the order of its Figs. 1, 2, 9, 10, 17
PAPER_COMBOS = (
    ("mlp", "mnist"),
    ("mlp", "fashion_mnist"),
    ("mlp", "cifar10"),
    ("lenet", "mnist"),
    ("lenet", "fashion_mnist"),
    ("lenet", "cifar10"),
    ("vgg16_bn", "cifar10"),
)


@dataclass(frozen=True)
class Slot:
    """One part of a figure and the experiments it can draw (see the module docstring)."""

    label: str
    kind: str = "continuous"  # continuous | binary
    needs: str = "models"
    archs: tuple[str, ...] = ()
    prefer: tuple[tuple[str, str], ...] = ()
    many: str = "one"  # one | all | family | last_per_family
    fallback: bool = False
    exclude: tuple[str, ...] = ()  # labels of earlier slots whose experiments this one skips
    optional: bool = False  # finding nothing is not worth a "left out" line (e.g. Fig. 2's other panels)

    def describe(self) -> str:
        what = f"{' or '.join(self.archs)}" if self.archs else f"{self.kind}"
        need = {
            "models": "",
            "pairs": " with pairs (two models of one experiment)",
            "midpoints": " with single-bend midpoints (midpoints.pairs_per_type > 0)",
            "sections": " with 2-D sections (sections.pairs_per_type > 0)",
            "triplets": " with triplet sections (triplet_sections: true, 3 seeds)",
        }[self.needs]
        return f"{what} experiment{need}"


@dataclass(frozen=True)
class Figure:
    number: int
    name: str  # the rule and file name, figNN_<slug>
    title: str  # one line: what it shows (the README's and the index's list)
    tables: tuple[str, ...]
    slots: tuple[Slot, ...]
    draw: Callable[[Any, dict[str, Any], dict[str, Any]], Any]  # (plotting module, tables, params) -> figure
    category: str  # the report's heading


@dataclass
class Selection:
    """The experiments of each slot, and a line for each slot that found none."""

    slots: dict[str, list[str]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

    @property
    def drawn(self) -> bool:
        return any(self.slots.values())


# -- selection ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Exp:
    name: str
    arch: str
    dataset: str
    has: frozenset[str]

    @property
    def kind(self) -> str:
        return "binary" if self.arch in BINARY_ARCHS else "continuous"


def _experiments(config: Mapping[str, Any]) -> list[_Exp]:
    """The study's experiments in config order, with what each one computes."""
    cfg = dict(config)
    all_pairs = pairs(cfg)
    has: dict[str, set[str]] = {experiment_name(e): {"models"} for e in cfg["experiments"]}
    for p in all_pairs:
        has[p.experiment].add("pairs")
    for p in per_type(cfg, all_pairs, "midpoints"):
        has[p.experiment].add("midpoints")
    for p in per_type(cfg, all_pairs, "sections"):
        has[p.experiment].add("sections")
    for t in triplets(cfg):
        has[t.experiment].add("triplets")
    return [
        _Exp(experiment_name(e), e["arch"], e["dataset"], frozenset(has[experiment_name(e)]))
        for e in cfg["experiments"]
    ]


def _rank(slot: Slot, exps: list[_Exp]) -> list[_Exp]:
    order = {combo: i for i, combo in enumerate(slot.prefer)}
    return sorted(exps, key=lambda e: order.get((e.arch, e.dataset), len(order)))  # stable: config order


def _pick(slot: Slot, candidates: list[_Exp]) -> list[_Exp]:
    ranked = _rank(slot, candidates)
    if not ranked:
        return []
    if slot.many == "one":
        return ranked[:1]
    if slot.many == "all":
        return ranked
    families = list(dict.fromkeys((e.arch, e.dataset) for e in ranked))
    if slot.many == "family":
        return [e for e in candidates if (e.arch, e.dataset) == families[0]]
    if slot.many == "last_per_family":
        # per architecture, the paper's data set if the study has it, else every family of that arch
        out = []
        for arch in dict.fromkeys(a for a, _ in families):
            fams = [f for f in families if f[0] == arch]
            preferred = [f for f in fams if f in slot.prefer]
            for fam in preferred or fams:
                out.append([e for e in candidates if (e.arch, e.dataset) == fam][-1])
        return out
    raise ValueError(f"unknown slot mode {slot.many!r}")


def select(figure: Figure, config: Mapping[str, Any]) -> Selection:
    """The experiments each slot of ``figure`` draws in the study ``config``, and the slots left out (as
    :func:`select_all` decides them: an appendix figure depends on its main figure)."""
    return select_all(config)[figure.name]


#: the appendix figures that repeat a main-text figure for every continuous experiment (Figs. 9, 10, 17 are
#: Figs. 2, 3, 5 for each combination): in a study where both would draw the same one experiment they are
#: the same picture, drawn once as the main figure
REPEATS = {"fig09_paths_all": "fig02_paths", "fig10_bend_paths_all": "fig03_bend_paths",
           "fig17_distances_all": "fig05_distances"}  # fmt: skip


def _shown(sel: Selection) -> set[str]:
    return {e for names in sel.slots.values() for e in names}


def select_all(config: Mapping[str, Any]) -> dict[str, Selection]:
    """:func:`select` for every figure of the manifest, the study's plan derived once; an appendix figure
    of :data:`REPEATS` that would show the same single experiment as its main figure is left out, the index
    saying so."""
    exps = _experiments(config)
    sels = {name: _select(fig, exps) for name, fig in FIGURES.items()}
    for appendix, main in REPEATS.items():
        a, m = sels[appendix], sels[main]
        if a.drawn and m.drawn and _shown(a) == _shown(m) and len(_shown(a)) == 1:
            (only,) = _shown(a)
            number = FIGURES[main].number
            sels[appendix] = Selection(
                {k: [] for k in a.slots},
                [f"the same picture as Fig. {number} in this study (its one experiment, {only}): drawn once, "
                 f"as Fig. {number}"],
            )
    return sels


def _select(figure: Figure, exps: list[_Exp]) -> Selection:
    sel = Selection()
    for slot in figure.slots:
        taken = {n for label in slot.exclude for n in sel.slots.get(label, [])}
        ok = [e for e in exps if e.kind == slot.kind and slot.needs in e.has and e.name not in taken]
        candidates = [e for e in ok if not slot.archs or e.arch in slot.archs]
        if not candidates and slot.fallback:
            candidates = ok
        chosen = _pick(slot, candidates)
        sel.slots[slot.label] = [e.name for e in chosen]
        if not chosen and not slot.optional:
            sel.left_out.append(f"{slot.label}: the study has no {slot.describe()}")
    return sel


def figure_index(
    config: Mapping[str, Any], results: str, selections: Mapping[str, Selection] | None = None
) -> list[dict[str, Any]]:
    """One row per paper figure: drawn or left out, the experiments of each slot, and why a slot is empty
    (``selections``: :func:`select_all`'s, when the caller has them already)."""
    selections = selections if selections is not None else select_all(config)
    rows = []
    for fig in FIGURES.values():
        sel = selections[fig.name]
        rows.append(
            {
                "figure": fig.number,
                "name": fig.name,
                "shows": fig.title,
                "status": "drawn" if sel.drawn else "left out",
                "experiments": "; ".join(f"{k}: {', '.join(v)}" for k, v in sel.slots.items() if v),
                "left_out": "; ".join(sel.left_out),
                "file": f"{results}/figures/{fig.name}.png" if sel.drawn else "",
            }
        )
    return rows


# -- the manifest ---------------------------------------------------------------------------------------

ALL_CONTINUOUS = PAPER_COMBOS
LENET_FMNIST = (("lenet", "fashion_mnist"),)


def _main(needs: str, label: str = "main", prefer: tuple[tuple[str, str], ...] = LENET_FMNIST) -> Slot:
    """The main-text figures' one combination: the paper's, else the study's first continuous experiment."""
    return Slot(label, needs=needs, archs=tuple(a for a, _ in prefer), prefer=prefer, fallback=True)


def _sections(arch: str, dataset: str, label: str = "sections") -> Slot:
    return Slot(label, needs="sections", archs=(arch,), prefer=((arch, dataset),))


def _sweep(arch: str, dataset: str) -> Slot:
    return Slot("sweep", kind="binary", archs=(arch,), prefer=((arch, dataset),), many="family")


def _triplets(arch: str, dataset: str, many: str = "one", fallback: bool = False) -> Slot:
    return Slot(
        "triplets",
        kind="binary",
        needs="triplets",
        archs=(arch,),
        prefer=((arch, dataset),),
        many=many,
        fallback=fallback,
    )


#: the order of the samplers' rows in the triplet-section figures: ADV on top, as in the paper's Figs. 8, 23
ROW_ORDER = ("adv", "sgd", "rsgd", "sam", "esgd", "adam")


def _every_family(
    slot: str, families: tuple[str, ...]
) -> Callable[[Any, dict[str, Any], dict[str, Any]], Any]:
    """Figs. 3, 9, 10: one panel per experiment of ``slot`` and path family."""
    return lambda pl, t, p: pl.figure_paths(t["paths"], [(e, f) for e in p["slots"][slot] for f in families])


#: Figs. 6, 18, 19: a binary architecture against its size
SWEEP_TABLES = ("models", "local_energy", "distances", "barriers")


def _draw_sweep(pl: Any, t: dict[str, Any], p: dict[str, Any]) -> Any:
    return pl.figure_sweep(t, p["slots"]["sweep"])


def _every_pair_type(rep: str) -> Callable[[Any, dict[str, Any], dict[str, Any]], Any]:
    """Figs. 12–15: the first section of every pair type, in one representation."""

    def draw(pl: Any, t: dict[str, Any], p: dict[str, Any]) -> Any:
        panels = [
            (e, pair, rep, "train_error")
            for e in p["slots"]["sections"]
            for pair in pl.section_pairs(t["sections"], e, None)
        ]
        return pl.figure_sections(t["sections"], panels, ncols=3)

    return draw


def _triplets_of(sampler: str) -> Callable[[Any, dict[str, Any], dict[str, Any]], Any]:
    """Figs. 20–22: one sampler's triplet sections, one row per width."""
    return lambda pl, t, p: pl.figure_triplet_sections(
        t["triplet_sections"], p["slots"]["triplets"], (sampler,)
    )


_FIGURES: list[Figure] = [
    Figure(
        1,
        "fig01_flatness",
        "local energy δE against σ (log) and test error against δE at σ*, per experiment and sampler",
        ("models", "local_energy"),
        (Slot("experiments", archs=(), prefer=ALL_CONTINUOUS, many="all"),),
        lambda pl, t, p: pl.figure_flatness(t["models"], t["local_energy"], p["slots"]["experiments"]),
        "Flatness",
    ),
    Figure(
        2,
        "fig02_paths",
        "train error along Linear, Linear-Aligned and Geodesic-Aligned paths (top row), Geodesic-Aligned "
        "for the other experiments",
        ("paths",),
        (
            _main("pairs", "top row"),
            Slot(
                "other panels",
                needs="pairs",
                prefer=ALL_CONTINUOUS,
                many="all",
                exclude=("top row",),
                optional=True,
            ),
        ),
        lambda pl, t, p: pl.figure_paths(
            t["paths"],
            [(e, f) for e in p["slots"]["top row"] for f in PATHS]
            + [(e, "geodesic_aligned") for e in p["slots"]["other panels"]],
        ),
        "Paths",
    ),
    Figure(
        3,
        "fig03_bend_paths",
        "train error along single-bend paths through optimized midpoints, three path families",
        ("paths",),
        (_main("midpoints"),),
        _every_family("main", BEND_PATHS),
        "Paths",
    ),
    Figure(
        4,
        "fig04_sections",
        "2-D sections through RSGD, ADV and ADV aligned, raw and normalized (top: LeNet/FMNIST, "
        "bottom: VGG16)",
        ("sections",),
        (_main("sections", "top row"), _sections("vgg16_bn", "cifar10", "bottom row")),
        lambda pl, t, p: pl.figure_sections(
            t["sections"],
            [
                (e, pair, rep, "train_error")
                for row in ("top row", "bottom row")
                for e in p["slots"][row]
                for pair in pl.section_pairs(t["sections"], e, ("R-A",))
                for rep in ("raw", "normalized")
            ],
            ncols=2,
        ),
        "Sections",
    ),
    Figure(
        5,
        "fig05_distances",
        "per-parameter distances by pair type, raw/aligned/normalized/normalized-aligned, endpoints and "
        "optimized midpoints",
        ("distances",),
        (_main("pairs", prefer=(("mlp", "mnist"),)),),
        lambda pl, t, p: pl.figure_distances(t["distances"], p["slots"]["main"]),
        "Distances",
    ),
    Figure(
        6,
        "fig06_committee",
        "binary committee machine against its size: local energy, test error, Hamming distances, barriers",
        SWEEP_TABLES,
        (
            Slot(
                "sweep",
                kind="binary",
                archs=("committee",),
                prefer=(("committee", "teacher"),),
                many="family",
            ),
        ),
        _draw_sweep,
        "Binary networks",
    ),
    Figure(
        7,
        "fig07_deep_binary",
        "deep binary nets: local energy against the flipped fraction, random shortest paths raw and aligned, "
        "single-bend paths",
        ("models", "local_energy", "paths", "distances"),
        (
            Slot(
                "rows",
                kind="binary",
                needs="pairs",
                archs=("binary_mlp", "binary_convnet"),
                prefer=(("binary_mlp", "fashion_mnist"), ("binary_convnet", "cifar10")),
                many="last_per_family",
                fallback=True,
            ),
        ),
        lambda pl, t, p: pl.figure_deep_binary(t, p["slots"]["rows"]),
        "Binary networks",
    ),
    Figure(
        8,
        "fig08_binary_sections",
        "2-D sections through three binary solutions of one sampler, not aligned and aligned",
        ("triplet_sections",),
        (_triplets("binary_mlp", "fashion_mnist", fallback=True),),
        lambda pl, t, p: pl.figure_triplet_sections(t["triplet_sections"], p["slots"]["triplets"], ROW_ORDER),
        "Binary networks",
    ),
    Figure(
        9,
        "fig09_paths_all",
        "Linear, Linear-Aligned and Geodesic-Aligned paths for every continuous experiment",
        ("paths",),
        (Slot("experiments", needs="pairs", prefer=ALL_CONTINUOUS, many="all"),),
        _every_family("experiments", PATHS),
        "Paths",
    ),
    Figure(
        10,
        "fig10_bend_paths_all",
        "single-bend paths for every continuous experiment",
        ("paths",),
        (Slot("experiments", needs="midpoints", prefer=ALL_CONTINUOUS, many="all"),),
        _every_family("experiments", BEND_PATHS),
        "Paths",
    ),
    Figure(
        11,
        "fig11_sections_test",
        "2-D sections through RSGD and ADV: train error and test error, raw and normalized",
        ("sections",),
        (_main("sections"),),
        lambda pl, t, p: pl.figure_sections(
            t["sections"],
            [
                (e, pair, rep, err)
                for e in p["slots"]["main"]
                for pair in pl.section_pairs(t["sections"], e, ("R-A",))
                for rep in ("raw", "normalized")
                for err in ("train_error", "test_error")
            ],
            ncols=2,
        ),
        "Sections",
    ),
    *[
        Figure(
            number,
            f"fig{number:02d}_sections_{slug}_{rep}",
            f"2-D sections of every pair type, {arch} on {dataset} (or the study's {arch}), "
            + ("without" if rep == "raw" else "with")
            + " normalization",
            ("sections",),
            (_sections(arch, dataset),),
            _every_pair_type(rep),
            "Sections",
        )
        for number, slug, arch, dataset, rep in (
            (12, "lenet", "lenet", "fashion_mnist", "raw"),
            (13, "lenet", "lenet", "fashion_mnist", "normalized"),
            (14, "mlp", "mlp", "cifar10", "raw"),
            (15, "mlp", "mlp", "cifar10", "normalized"),
        )
    ],
    Figure(
        16,
        "fig16_sections_vgg16",
        "2-D sections of VGG16-BN on CIFAR-10, R-R, S-S and A-A pairs, without normalization",
        ("sections",),
        (_sections("vgg16_bn", "cifar10"),),
        lambda pl, t, p: pl.figure_sections(
            t["sections"],
            [
                (e, pair, "raw", "train_error")
                for e in p["slots"]["sections"]
                for pair in pl.section_pairs(t["sections"], e, ("R-R", "S-S", "A-A"), every=True)
            ],
            ncols=3,
        ),
        "Sections",
    ),
    Figure(
        17,
        "fig17_distances_all",
        "per-parameter distances (Fig. 5's format) for every continuous experiment",
        ("distances",),
        (Slot("experiments", needs="pairs", prefer=ALL_CONTINUOUS, many="all"),),
        lambda pl, t, p: pl.figure_distances(t["distances"], p["slots"]["experiments"]),
        "Distances",
    ),
    Figure(
        18,
        "fig18_perceptron",
        "binary perceptron against its size: local energy, test error, Hamming distances, barriers",
        SWEEP_TABLES,
        (_sweep("binary_perceptron", "teacher"),),
        _draw_sweep,
        "Binary networks",
    ),
    Figure(
        19,
        "fig19_binary_mlp",
        "binary 2-hidden-layer MLP against its width: local energy, test error, Hamming distances, barriers",
        SWEEP_TABLES,
        (_sweep("binary_mlp", "mnist_parity"),),
        _draw_sweep,
        "Binary networks",
    ),
    *[
        Figure(
            number,
            f"fig{number:02d}_binary_mlp_sections_{sampler}",
            f"2-D sections through three {sampler.upper()} solutions of the binary MLP, one row per width, "
            "not aligned and aligned",
            ("triplet_sections",),
            (_triplets("binary_mlp", "mnist_parity", many="family"),),
            _triplets_of(sampler),
            "Binary networks",
        )
        for number, sampler in ((20, "adv"), (21, "sgd"), (22, "rsgd"))
    ],
    Figure(
        23,
        "fig23_binary_convnet_sections",
        "2-D sections through three solutions of the binary ConvNet per sampler, not aligned and aligned",
        ("triplet_sections",),
        (_triplets("binary_convnet", "cifar10"),),
        lambda pl, t, p: pl.figure_triplet_sections(t["triplet_sections"], p["slots"]["triplets"], ROW_ORDER),
        "Binary networks",
    ),
]

FIGURES: dict[str, Figure] = {f.name: f for f in _FIGURES}
assert [f.number for f in _FIGURES] == list(range(1, 24)), "one entry per paper figure, in order"
assert all(slot.needs in NEEDS for f in _FIGURES for slot in f.slots), "a slot needs what a study computes"


# -- rendering ------------------------------------------------------------------------------------------


def load_tables(paths: Mapping[str, str]) -> dict[str, Any]:
    """Read each named CSV into a DataFrame; an empty file gives an empty frame."""
    from toroids.tables import read_or_empty

    return {name: read_or_empty(path) for name, path in paths.items()}


def render(name: str, tables: Mapping[str, str], params: Mapping[str, Any], pdf: str, png: str) -> None:
    """Draw figure ``name`` from its tables and its slots' experiments (``params['slots']``) as PDF, PNG."""
    from toroids import plotting

    fig = FIGURES[name]
    frames = load_tables({t: tables[t] for t in fig.tables})
    plotting.save_figure(fig.draw(plotting, frames, dict(params)), pdf, png)
