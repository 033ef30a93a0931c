"""The figure manifest: one rule per paper figure, and which experiments each figure draws in a study."""

import yaml

from tests.conftest import ROOT
from toroids.config import load_schema, validate_config
from toroids.figures import FIGURES, figure_index, select, select_all

SCHEMA = load_schema(ROOT / "config" / "schema" / "config.schema.yaml")


def _config(experiments, **extra):
    return validate_config({"study": "t", "experiments": experiments, **extra}, SCHEMA)


def _exp(arch, dataset, samplers=("rsgd", "sgd", "adv"), seeds=(0, 1), **kw):
    return {"arch": arch, "dataset": dataset, "samplers": list(samplers), "seeds": list(seeds), **kw}


def test_one_figure_per_paper_figure_with_its_caption():
    assert [f.number for f in FIGURES.values()] == list(range(1, 24))
    for name, fig in FIGURES.items():
        assert name.startswith(f"fig{fig.number:02d}_")
        caption = (ROOT / "report" / f"{name}.rst").read_text()
        assert f"Fig. {fig.number}" in caption and "snakemake.params.left_out" in caption, name


def test_paper_config_draws_every_figure_with_the_papers_combinations():
    cfg = validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()), SCHEMA)
    index = {r["figure"]: r for r in figure_index(cfg, "results/paper")}
    assert all(r["status"] == "drawn" and not r["left_out"] for r in index.values()), [
        (n, r["left_out"]) for n, r in index.items() if r["left_out"]
    ]
    assert select(FIGURES["fig03_bend_paths"], cfg).slots == {"main": ["lenet-fashion_mnist"]}
    assert select(FIGURES["fig05_distances"], cfg).slots == {"main": ["mlp-mnist"]}
    assert select(FIGURES["fig04_sections"], cfg).slots == {
        "top row": ["lenet-fashion_mnist"],
        "bottom row": ["vgg16_bn-cifar10"],
    }
    # Fig. 2: LeNet/FMNIST on top, the six others below, in the paper's order
    fig2 = select(FIGURES["fig02_paths"], cfg).slots
    assert fig2["top row"] == ["lenet-fashion_mnist"] and len(fig2["other panels"]) == 6
    assert fig2["other panels"][0] == "mlp-mnist" and "lenet-fashion_mnist" not in fig2["other panels"]
    assert select(FIGURES["fig07_deep_binary"], cfg).slots == {
        "rows": ["binary_mlp-fashion_mnist", "binary_convnet-cifar10"]
    }
    # Fig. 19's five widths over the paper's range; Figs. 20-22 the rows H = 101, 201, 401
    sweep = select(FIGURES["fig19_binary_mlp"], cfg).slots["sweep"]
    assert sweep == [f"binary_mlp-mnist_parity-H{h}" for h in (101, 151, 201, 301, 401)]
    rows = [f"binary_mlp-mnist_parity-H{h}" for h in (101, 201, 401)]
    assert select(FIGURES["fig20_binary_mlp_sections_adv"], cfg).slots["triplets"] == rows


def test_default_study_draws_what_it_has_and_names_what_it_lacks(default_config):
    cfg = validate_config(default_config, SCHEMA)
    index = {r["figure"]: r for r in figure_index(cfg, "results/default")}
    left_out = {n for n, r in index.items() if r["status"] == "left out"}
    # no LeNet, VGG16, binary MLP or ConvNet in the default study; Figs. 9, 10, 17 would repeat 2, 3, 5
    assert left_out == {9, 10, 12, 13, 16, 17, 19, 20, 21, 22, 23}
    for appendix, main in ((9, 2), (10, 3), (17, 5)):
        assert index[appendix]["left_out"].startswith(f"the same picture as Fig. {main} in this study")
        assert index[main]["status"] == "drawn"
    assert "vgg16_bn" in index[16]["left_out"] and "lenet" in index[12]["left_out"]
    assert "vgg16_bn" in index[4]["left_out"] and index[4]["status"] == "drawn"  # a row left out, said so
    # the main figures fall back to the study's own networks
    assert select(FIGURES["fig03_bend_paths"], cfg).slots == {"main": ["mlp-digits"]}
    assert select(FIGURES["fig08_binary_sections"], cfg).slots == {"triplets": ["committee-teacher-N1200"]}
    assert select(FIGURES["fig07_deep_binary"], cfg).slots == {
        "rows": ["perceptron-teacher-N7200", "committee-teacher-N2400"]
    }
    assert index[6]["experiments"].count("committee-teacher") == 3


def test_appendix_figures_are_strict_about_their_architecture():
    cfg = _config(
        [
            _exp("lenet", "mnist", sections_pairs_per_type=1),
            _exp("lenet", "fashion_mnist", sections_pairs_per_type=0),
        ],
        data={"root": str(ROOT), "download": True},
    )
    fig12 = select(FIGURES["fig12_sections_lenet_raw"], cfg)
    assert fig12.slots == {"sections": ["lenet-mnist"]}  # FMNIST has no sections here: MNIST is used
    fig14 = select(FIGURES["fig14_sections_mlp_raw"], cfg)
    assert not fig14.drawn and fig14.left_out == [
        "sections: the study has no mlp experiment with 2-D sections (sections.pairs_per_type > 0)"
    ]
    # no midpoints anywhere: Fig. 3 is left out, with the reason
    fig3 = select(
        FIGURES["fig03_bend_paths"], _config([_exp("mlp", "digits")], midpoints={"pairs_per_type": 0})
    )
    assert not fig3.drawn and "single-bend midpoints" in fig3.left_out[0]


def test_an_appendix_figure_is_drawn_when_it_shows_more_than_its_main_figure():
    two = [_exp("mlp", "fashion_mnist"), _exp("lenet", "fashion_mnist")]
    sels = select_all(validate_config({"study": "two", "experiments": two}, SCHEMA))
    # Fig. 2: LeNet on top, the MLP below; Fig. 9: both in full; Fig. 3: LeNet; Fig. 10: both
    assert sels["fig09_paths_all"].drawn and sels["fig10_bend_paths_all"].drawn
    assert sels["fig17_distances_all"].slots["experiments"] == ["mlp-fashion_mnist", "lenet-fashion_mnist"]
    one = select_all(validate_config({"study": "one", "experiments": two[1:]}, SCHEMA))
    assert not one["fig09_paths_all"].drawn and not one["fig17_distances_all"].drawn
