"""Triplet sections (the paper's binary Figs. 8, 20–23): the Gram–Schmidt planes through three solutions of
one sampler, raw and with the second and third aligned to the first; their config key and study plan."""

import numpy as np
import pytest
import torch

from toroids import sections, study
from toroids import symmetry as S
from toroids.config import ConfigError, validate_config
from toroids.data import Dataset
from toroids.evaluate import evaluate
from toroids.models import build_model
from toroids.tables import concat_csv

ARCHS = [
    # (arch, options, whether a hidden unit's sign flip is a symmetry)
    ("binary_mlp", {"widths": [7, 5]}, True),
    ("committee", {"hidden": 5}, False),
    ("mlp", {"widths": [6, 5]}, False),
]


@pytest.fixture(scope="module")
def parity():
    """The blobs of conftest with a binary label (one-output binary networks classify by its sign)."""
    from tests.conftest import make_blobs

    b = make_blobs()
    return Dataset("blobs_parity", b.x_train, b.y_train % 2, b.x_test, b.y_test % 2, 2)


def _splits(data):
    return {"train": (data.x_train, data.y_train), "test": (data.x_test, data.y_test)}


def _net(arch, options, seed):
    m = build_model(arch, (10,), 2, seed=seed, **options).eval()
    g = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.uniform_(0.5, 2, generator=g)
                mod.weight.uniform_(0.5, 2, generator=g)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g))
    return m


def _symmetric_copy(model, seed, flips):
    """``model`` with every hidden layer randomly permuted, and its units randomly sign-flipped if ``flips``:
    the same function, other coordinates."""
    s = S.structure(model)
    g = torch.Generator().manual_seed(seed)
    perms = []
    for grp in s.hidden:
        signs = None
        if flips and grp.odd:
            signs = torch.where(torch.rand(grp.size, generator=g) < 0.5, -1.0, 1.0)
        perms.append(S.Permutation(torch.randperm(grp.size, generator=g), signs))
    out = _net(*_arch_of(model), seed=0)
    out.load_state_dict(S.permute_state(model.state_dict(), s, perms))
    return out


def _arch_of(model):
    return model.spec["arch"], model.spec["options"]


def _rows(rows, rep, kind):
    return [r for r in rows if r["representation"] == rep and r["kind"] == kind]


@pytest.mark.parametrize("arch, options, flips", ARCHS, ids=[a for a, _, _ in ARCHS])
def test_aligned_plane_of_symmetric_copies_collapses_onto_a(parity, arch, options, flips):
    a = _net(arch, options, seed=1)
    b, c = _symmetric_copy(a, 2, flips), _symmetric_copy(a, 3, flips)
    splits = _splits(parity)
    # the copies compute a's function (the alignment has something exact to find)
    own = evaluate(a, *splits["train"]).error
    assert evaluate(b, *splits["train"]).error == own and evaluate(c, *splits["train"]).error == own
    rows = sections.triplet_section([a, b, c], splits, resolution=5, margin=0.25)
    assert {(r["representation"], r["kind"]) for r in rows} == {
        (rep, kind) for rep in ("raw", "aligned") for kind in ("grid", "point")
    }
    raw = {r["name"]: (r["alpha"], r["beta"]) for r in _rows(rows, "raw", "point")}
    aligned = {r["name"]: (r["alpha"], r["beta"]) for r in _rows(rows, "aligned", "point")}
    # as trained, b and c are elsewhere in weight space
    assert raw["b"][0] > 0.1 and np.hypot(*raw["c"]) > 0.1
    # aligned, they are a
    for name in ("a", "b", "c"):
        assert aligned[name] == pytest.approx((0.0, 0.0), abs=1e-9), (name, aligned[name])
    # the aligned grid is centred on the points, as wide as the raw one, and the point nearest a is a
    grid = _rows(rows, "aligned", "grid")
    assert len(grid) == 25
    raw_grid = _rows(rows, "raw", "grid")
    width = max(r["alpha"] for r in grid) - min(r["alpha"] for r in grid)
    raw_width = max(
        max(r["alpha"] for r in raw_grid) - min(r["alpha"] for r in raw_grid),
        max(r["beta"] for r in raw_grid) - min(r["beta"] for r in raw_grid),
    )
    assert width == pytest.approx(raw_width)
    nearest = min(grid, key=lambda r: np.hypot(r["alpha"], r["beta"]))
    assert np.hypot(nearest["alpha"], nearest["beta"]) < 1e-9
    assert nearest["train_error"] == own
    assert nearest["test_error"] == evaluate(a, *splits["test"]).error


@pytest.mark.parametrize("arch, options, flips", ARCHS[:2], ids=[a for a, _, _ in ARCHS[:2]])
def test_raw_plane_points_have_their_gram_schmidt_coordinates(parity, arch, options, flips):
    models = [_net(arch, options, seed=s) for s in (4, 5, 6)]
    flat = [
        np.concatenate(
            [t.reshape(-1).double().numpy() for t in m.state_dict().values() if t.is_floating_point()]
        )
        for m in models
    ]
    a, b, c = flat
    u = (b - a) / np.linalg.norm(b - a)
    r = (c - a) - ((c - a) @ u) * u
    expect = {"a": (0.0, 0.0), "b": (np.linalg.norm(b - a), 0.0), "c": ((c - a) @ u, np.linalg.norm(r))}
    rows = sections.triplet_section(models, _splits(parity), resolution=3, margin=0.5)
    points = _rows(rows, "raw", "point")
    assert [p["name"] for p in points] == ["a", "b", "c"]
    for p in points:
        assert (p["alpha"], p["beta"]) == pytest.approx(expect[p["name"]], abs=1e-9, rel=1e-9)
        assert np.isnan(p["train_error"]) and np.isnan(p["test_error"])
    # the grid covers the three points with the margin: (1 + 2·0.5) × the larger extent
    grid = _rows(rows, "raw", "grid")
    alphas = sorted({g["alpha"] for g in grid})
    span = max(expect["b"][0] - min(0.0, expect["c"][0]), expect["c"][1])
    assert len(grid) == 9 and alphas[-1] - alphas[0] == pytest.approx(2 * span)
    assert all(0 <= g["train_error"] <= 1 and 0 <= g["test_error"] <= 1 for g in grid)


def _config(seeds, **extra):
    return {
        "study": "t",
        "experiments": [
            {"arch": "committee", "dataset": "teacher", "samplers": ["sgd"], "seeds": seeds, **extra}
        ],
    }


def test_triplet_sections_need_three_seeds():
    assert validate_config(_config([0, 1]))["experiments"][0]["triplet_sections"] is False
    with pytest.raises(ConfigError, match=r"experiments\.0\.triplet_sections") as err:
        validate_config(_config([0, 1], triplet_sections=True))
    assert "3 seeds" in str(err.value)
    assert validate_config(_config([0, 1, 2], triplet_sections=True))["experiments"][0]["triplet_sections"]


def test_triplets_are_the_first_three_seeds_of_each_sampler_in_paper_order():
    cfg = validate_config(
        {
            "study": "t",
            "experiments": [
                {"arch": "mlp", "dataset": "digits", "samplers": ["sgd"], "seeds": [0, 1, 2]},
                {
                    "name": "bm-H7",
                    "arch": "binary_mlp",
                    "dataset": "digits_parity",
                    "samplers": ["adv", "rsgd"],
                    "seeds": [5, 0, 3, 9],
                    "triplet_sections": True,
                },
            ],
        }
    )
    ts = study.triplets(cfg)
    assert [t.triplet_id for t in ts] == ["bm-H7-rsgd", "bm-H7-adv"]
    assert ts[0] == study.Triplet("bm-H7", "rsgd", ("bm-H7-rsgd-s5", "bm-H7-rsgd-s0", "bm-H7-rsgd-s3"))
    assert ts[1].models == ("bm-H7-adv-s5", "bm-H7-adv-s0", "bm-H7-adv-s3")
    assert all(m in study.models(cfg) for t in ts for m in t.models)


def test_no_triplets_give_a_table_with_its_header(tmp_path):
    frame = concat_csv([], columns=study.TRIPLET_COLUMNS)
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    import pandas as pd

    back = pd.read_csv(path)
    assert back.empty and list(back.columns) == list(study.TRIPLET_COLUMNS)
