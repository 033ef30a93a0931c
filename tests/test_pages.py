"""Tests of toroids.pages: the report's tables as HTML pages, read in the browser."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from toroids import pages


def _claims() -> tuple[pd.DataFrame, pd.DataFrame]:
    claims = pd.DataFrame([
        {"claim_id": "claim_1", "claim": "RSGD < SGD & ADV", "status": "holds", "summary": "2 hold",
         "deciding": "x: sgd − rsgd", "estimate": 0.0123, "ci_low": 0.004, "ci_high": 0.02, "n_models": 12,
         "n_models_excluded": 1, "n_pairs": 0, "n_pairs_excluded": 0,
         "excluded": "m-adv-s1 (train error 2%)"},
        {"claim_id": "claim_4_deep", "claim": "deep", "status": "not measurable at this scale",
         "summary": "–", "deciding": "", "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
         "n_models": 0, "n_models_excluded": 0, "n_pairs": 0, "n_pairs_excluded": 0, "excluded": ""},
    ])  # fmt: skip
    tests = pd.DataFrame([
        {"claim_id": "claim_1", "part": "δE", "experiment": "x", "comparison": "sgd − rsgd",
         "estimate": 0.0123,
         "ci_low": 0.004, "ci_high": 0.02, "n_models": 12, "n_pairs": 0, "outcome": "holds", "note": ""},
        {"claim_id": "claim_1", "part": "test", "experiment": "x", "comparison": "adv − sgd",
         "estimate": -0.01,
         "ci_low": -0.02, "ci_high": -0.001, "n_models": 12, "n_pairs": 0, "outcome": "does not hold",
         "note": ""},
    ])  # fmt: skip
    return claims, tests


def test_the_claims_page_is_a_table_with_verdicts_intervals_and_counts():
    text = pages.claims_page(*_claims())
    assert text.startswith("<!doctype html>") and "<script" not in text and "http" not in text
    assert text.count("<table>") == 2  # the claims, then claim_1's comparisons
    assert '<tr class="holds">' in text and '<tr class="not-measurable-at-this-scale">' in text
    assert '<tr class="does-not-hold">' in text  # a comparison's outcome colours its row
    assert "0.0123 [0.004, 0.02]" in text and "12 (1 left out)" in text
    assert "RSGD &lt; SGD &amp; ADV" in text  # escaped, never markup
    assert "m-adv-s1 (train error 2%)" in text


def test_the_scorecard_page_groups_by_figure_and_names_what_it_cannot_compare():
    comp = pd.DataFrame([
        {"figure": "1", "panel": "(ii)", "combination": "mlp-x", "size": "", "quantity": "test_error",
         "path": "", "subject": s, "value": v, "value_high": np.nan, "unit": "%", "source": "read_off",
         "note": "", "ours": o, "n": 4, "within": "", "experiments": "mlp-x", "n_params": "100",
         "epochs": "7",
         "n_train": "500", "n_test": "all", "seeds": "4", "rank": r, "why_not": "",
         "ordering": "agrees (1 of 1 pairs)"}
        for s, v, o, r in (("rsgd", 9.5, 13.2, 1), ("sgd", 9.9, 14.3, 2))
    ] + [
        {"figure": "7", "panel": "", "combination": "binary_mlp-fashion_mnist", "size": "",
         "quantity": "test_error",
         "path": "", "subject": "sgd", "value": 10.8, "value_high": np.nan, "unit": "%", "source": "stated",
         "note": "", "ours": np.nan, "n": 0, "within": "", "experiments": "", "n_params": "", "epochs": "",
         "n_train": "", "n_test": "", "seeds": "", "rank": 2,
         "why_not": "no binary_mlp-fashion_mnist experiment in this study",
         "ordering": "no ordering"},
    ])  # fmt: skip
    text = pages.scorecard_page(comp)
    assert "2 of 3 numbers of the paper compared" in text
    assert "<h2>Figure 1</h2>" in text and "<h2>Figure 7</h2>" not in text
    assert '<td class="agrees">agrees (1 of 1 pairs)</td>' in text
    assert re.search(r'<td class="num">13\.2</td>', text)
    assert "no binary_mlp-fashion_mnist experiment in this study" in text


def test_the_index_and_config_pages():
    rows = [{"figure": 9, "name": "fig09_paths_all", "shows": "paths", "status": "left out",
             "experiments": "",
             "left_out": "the same picture as Fig. 2", "file": ""}]  # fmt: skip
    text = pages.figure_index_page(rows)
    assert "fig09_paths_all" in text and "the same picture as Fig. 2" in text and "<table>" in text
    text = pages.config_page("s", "study: s\nnote: <b>\n")
    assert "<pre>study: s\nnote: &lt;b&gt;\n</pre>" in text


def test_a_value_reaches_a_class_attribute_only_as_letters_digits_and_hyphens():
    frame = pd.DataFrame([{"status": 'st"<x> (y)', "n": 1}])
    text = pages.table(frame, [("status", "status"), ("n", "n")], row_class="status")
    assert '<tr class="stx-y">' in text and "st&quot;&lt;x&gt; (y)" in text
