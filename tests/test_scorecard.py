"""Tests of toroids.scorecard: the paper's numbers beside a study's, on tables whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toroids import scorecard
from toroids.data import DATASETS
from toroids.study import ARCH_OPTIONS, SAMPLER_LETTER

PAIR_TYPES = {"R-R", "R-S", "S-S", "R-A", "S-A", "A-A"}


def _paper(rows: list[dict]) -> pd.DataFrame:
    base = {"figure": "1", "panel": "", "combination": "mlp-x", "size": "", "quantity": "test_error",
            "path": "", "value_high": np.nan, "unit": "%", "source": "read_off", "rank": np.nan,
            "note": ""}  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(scorecard.PAPER_COLUMNS))


def _models(test_errors: dict[str, list[float]], experiment: str = "mlp-x", n_params: int = 100):
    rows = []
    for sampler, errs in test_errors.items():
        for s, e in enumerate(errs):
            rows.append({"model_id": f"{experiment}-{sampler}-s{s}", "experiment": experiment, "arch": "mlp",
                         "dataset": experiment.split("-")[1], "sampler": sampler, "train_error": 0.0,
                         "test_error": e, "is_solution": True, "n_params": n_params})  # fmt: skip
    return pd.DataFrame(rows)


SCALE = pd.DataFrame([{"experiment": "mlp-x", "combination": "mlp-x", "epochs": 7, "batch_size": 8,
                       "n_train": 500, "n_test": "all", "seeds": 2}])  # fmt: skip
EMPTY = pd.DataFrame()


def test_the_repos_paper_numbers_are_well_formed():
    paper = scorecard.read_paper()
    assert len(paper) >= 110
    ranked = paper[paper["rank"].notna()]
    # the orderings the paper draws: RSGD ≻ SGD ≻ ADV, and the pair-type levels of Fig. 2(c)
    fig1 = ranked[ranked["figure"] == "1"]
    assert dict(zip(fig1["subject"], fig1["rank"])) == {"rsgd": 1, "sgd": 2, "adv": 3}
    fig2 = ranked[(ranked["figure"] == "2") & (ranked["combination"] == "lenet-fashion_mnist")]
    levels = dict(zip(fig2["subject"], fig2["rank"]))
    assert levels == {"R-R": 1, "R-S": 2, "S-S": 2, "R-A": 3, "S-A": 3, "A-A": 4}
    assert paper[(paper["figure"] == "2") & (paper["path"] == "linear")]["rank"].isna().all()
    known = {f"{a}-{d}" for a in ARCH_OPTIONS for d in DATASETS} | {"all"}
    sweeps = {"committee-teacher", "binary_perceptron-teacher"}
    assert set(paper["combination"]) <= known
    assert set(paper.loc[paper["size"] != "", "combination"]) <= sweeps
    assert set(paper["subject"]) <= set(SAMPLER_LETTER) | PAIR_TYPES | {"all"}
    assert set(paper.loc[paper["quantity"] == "test_error", "subject"]) <= set(SAMPLER_LETTER)
    assert set(paper.loc[paper["quantity"] != "test_error", "subject"]) <= PAIR_TYPES | {"all"}
    # the text's stated numbers are there (digest §6): Fig. 7's legend and VGG16's optimized barriers
    fig7 = paper[(paper["figure"] == "7") & (paper["quantity"] == "test_error")]
    assert fig7["source"].eq("stated").all() and len(fig7) == 6
    assert 11.6 in fig7["value"].tolist() and 45.8 in fig7["value"].tolist()


def test_a_malformed_paper_file_is_refused(tmp_path):
    good = scorecard.read_paper()
    bad = good.copy()
    bad.loc[3, "source"] = "guessed"
    bad.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(ValueError, match="rows \\[5\\]"):
        scorecard.read_paper(tmp_path / "p.csv")
    good.drop(columns="note").to_csv(tmp_path / "q.csv", index=False)
    with pytest.raises(ValueError, match="columns"):
        scorecard.read_paper(tmp_path / "q.csv")
    for column, value in (("quantity", "speed"), ("path", "diagonal"), ("size", "huge"), ("rank", "1.5")):
        bad = good.copy()
        bad[column] = bad[column].astype(object)
        bad.loc[0, column] = value
        bad.to_csv(tmp_path / "r.csv", index=False)
        with pytest.raises(ValueError, match="rows \\[2\\]"):
            scorecard.read_paper(tmp_path / "r.csv")


def test_orderings_agree_or_disagree_as_the_means_do():
    paper = _paper([{"subject": "rsgd", "value": 1.0, "rank": 1}, {"subject": "sgd", "value": 2.0, "rank": 2},
                    {"subject": "adv", "value": 3.0, "rank": 3}])  # fmt: skip
    models = _models({"rsgd": [0.01, 0.03], "sgd": [0.04], "adv": [0.09]})
    same = scorecard.compare(paper, models, EMPTY, EMPTY, SCALE)
    assert same["ours"].tolist() == pytest.approx([2.0, 4.0, 9.0])  # means, in %
    assert same["n"].tolist() == [2, 1, 1]
    assert set(same["ordering"]) == {"agrees (3 of 3 pairs)"}
    assert same["epochs"].tolist() == ["7"] * 3 and same["why_not"].eq("").all()
    models = _models({"rsgd": [0.05], "sgd": [0.04], "adv": [0.09]})
    swapped = scorecard.compare(paper, models, EMPTY, EMPTY, SCALE)
    assert set(swapped["ordering"]) == {"disagrees (2 of 3 pairs)"}
    partial = scorecard.compare(paper, _models({"rsgd": [0.01], "sgd": [0.04]}), EMPTY, EMPTY, SCALE)
    assert set(partial["ordering"]) == {"agrees (1 of 1 pairs; 2 not compared)"}
    # values read off a plot order nothing by themselves: only the ranks the paper draws do
    unranked = scorecard.compare(paper.assign(rank=np.nan), models, EMPTY, EMPTY, SCALE)
    assert set(unranked["ordering"]) == {"no ordering"}
    level = paper.assign(rank=[1, 1, 2])  # RSGD and SGD put level: only the pairs with ADV are ordered
    leveled = scorecard.compare(level, models, EMPTY, EMPTY, SCALE)
    assert set(leveled["ordering"]) == {"agrees (2 of 2 pairs)"}
    flat = _models({"rsgd": [0.0], "sgd": [0.0], "adv": [0.0]})  # equal means reverse nothing: a tie
    tie = scorecard.compare(paper, flat, EMPTY, EMPTY, SCALE)
    assert set(tie["ordering"]) == {"ties (0 of 3 pairs; 3 tied)"}


def test_non_solutions_and_failed_adversaries_stay_out_as_in_the_claims():
    models = _models({"rsgd": [0.02, 0.50], "sgd": [0.04], "adv": [0.07, 0.30]})
    models.loc[1, "is_solution"] = False
    models["pretrain_target_reached"] = [None, None, None, True, False]  # adv-s1 missed its target
    adv = scorecard.compare(_paper([{"subject": "adv", "value": 5.0}]), models, EMPTY, EMPTY, SCALE)
    assert adv["ours"].tolist() == pytest.approx([7.0]) and adv["n"].tolist() == [1]
    paper = _paper([{"subject": "rsgd", "value": 1.0, "value_high": 3.0},
                    {"subject": "sgd", "value": 2.0, "value_high": 5.0}])  # fmt: skip
    out = scorecard.compare(paper, models, EMPTY, EMPTY, SCALE)
    assert out["ours"].tolist() == pytest.approx([2.0, 4.0])
    assert out["within"].tolist() == ["yes", "yes"]


def test_what_the_study_lacks_is_named_not_dropped():
    paper = _paper([{"subject": "rsgd", "value": 1.0, "rank": 1}, {"subject": "adv", "value": 3.0, "rank": 2},
                    {"combination": "lenet-y", "subject": "sgd", "value": 5.0}])  # fmt: skip
    out = scorecard.compare(paper, _models({"rsgd": [0.01]}), EMPTY, EMPTY, SCALE)
    assert len(out) == 3  # every paper row comes back
    assert out["why_not"].tolist() == ["", "no solution or pair of adv (test_error) in it",
                                       "no lenet-y experiment in this study"]  # fmt: skip
    assert out.loc[0, "ordering"] == "not compared"
    assert np.isnan(out.loc[2, "ours"])


def test_a_sweep_end_needs_a_sweep():
    models = _models({"rsgd": [0.1, 0.1]}, "committee-t", 10)
    models["arch"], models["dataset"] = "committee", "teacher"
    row = {"combination": "committee-teacher", "size": "largest", "subject": "rsgd", "value": 18.5}
    paper = _paper([row])
    out = scorecard.compare(paper, models, EMPTY, EMPTY, SCALE)
    assert np.isnan(out.loc[0, "ours"]) and "one size only" in out.loc[0, "why_not"]


def test_barriers_distances_and_sweep_ends():
    small, large = _models({"rsgd": [0.1, 0.1], "adv": [0.2, 0.2]}, "committee-t", 10), _models(
        {"rsgd": [0.1, 0.1], "adv": [0.2, 0.2]}, "committee-tt", 40)
    models = pd.concat([small, large], ignore_index=True)
    models["arch"], models["dataset"] = "committee", "teacher"
    barriers = pd.DataFrame([
        {"experiment": e, "pair": f"{e}-p{t}", "left": f"{e}-{s}-s0", "right": f"{e}-{s}-s1", "pair_type": t,
         "path": "random", "barrier": b}
        for e, s, t, b in [("committee-t", "rsgd", "R-R", 0.03), ("committee-t", "adv", "A-A", 0.10),
                           ("committee-tt", "rsgd", "R-R", 0.0), ("committee-tt", "adv", "A-A", 0.02)]
    ])  # fmt: skip
    paper = _paper([
        {"combination": "committee-teacher", "size": size, "quantity": "barrier", "path": "random",
         "subject": t, "value": v}
        for size, t, v in [("smallest", "R-R", 3.0), ("smallest", "A-A", 10.0), ("largest", "R-R", 0.03),
                           ("largest", "A-A", 2.3)]
    ])  # fmt: skip
    out = scorecard.compare(paper, models, barriers, EMPTY, SCALE)
    assert out["experiments"].tolist() == ["committee-t", "committee-t", "committee-tt", "committee-tt"]
    assert out["ours"].tolist() == pytest.approx([3.0, 10.0, 0.0, 2.0])
    assert out["n_params"].tolist() == ["10", "10", "40", "40"]
    distances = pd.DataFrame([
        {"experiment": "mlp-x", "pair": "p", "left": "mlp-x-rsgd-s0", "right": "mlp-x-rsgd-s1",
         "pair_type": "R-R", "between": between, "representation": rep, "distance": d}
        for between, rep, d in [("endpoints", "normalized_aligned", 0.04), ("endpoints", "raw", 0.9),
                                ("left_midpoint", "normalized_aligned", 0.01)]
    ])  # fmt: skip
    paper = _paper([{"figure": "5", "quantity": "distance", "path": "normalized_aligned", "subject": "R-R",
                     "value": 0.041}])  # fmt: skip
    out = scorecard.compare(paper, _models({"rsgd": [0.1, 0.1]}), EMPTY, distances, SCALE)
    assert out.loc[0, "ours"] == pytest.approx(0.04) and out.loc[0, "n"] == 1
