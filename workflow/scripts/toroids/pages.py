"""HTML pages for the report: the claims, the scorecard, the figure index and the study's config as pages a
reader reads in the browser (Snakemake's report shows an HTML output inline; a CSV is only a download).

Each page is one self-contained file (inline CSS, no script, no external resource), its text escaped. The
CSV beside it stays the data; the page is its reading.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["claims_page", "config_page", "figure_index_page", "page", "scorecard_page", "table"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .4em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
p.intro { max-width: 62em; color: #333; }
table { border-collapse: collapse; margin: .4em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; text-align: left; }
th { background: #f2f2f2; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.holds td.status, td.agrees { background: #dff0d8; }
tr.does-not-hold td.status, td.disagrees { background: #f2dede; }
tr.inconclusive td.status, td.not-compared { background: #fcf8e3; }
tr.not-measurable-at-this-scale td.status, td.no-ordering { background: #eee; }
td.small { font-size: .9em; color: #444; max-width: 40em; }
pre { background: #f7f7f7; padding: .8em; border: 1px solid #ddd; overflow-x: auto; }
"""


def _slug(text: str) -> str:
    """A CSS class from a value: lower-case letters, digits and hyphens only (nothing else reaches HTML)."""
    return "-".join(re.sub(r"[^a-z0-9 ]", "", str(text).lower()).split())


def _cell(value: Any, fmt: Callable[[Any], str] | None) -> tuple[str, bool]:
    """(escaped text, whether it is a number)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–", False
    if fmt is not None:
        return html.escape(fmt(value)), True
    if isinstance(value, float):
        return f"{value:.4g}", True
    return html.escape(str(value)), isinstance(value, int)


def table(frame: pd.DataFrame, columns: Sequence[tuple[str, str]],
          formats: Mapping[str, Callable[[Any], str]] | None = None,
          row_class: str | None = None, cell_class: Mapping[str, str] | None = None) -> str:
    """An HTML table of ``frame``'s ``columns`` (``(column, header)``), each cell escaped; ``formats`` per
    column; ``row_class``: the column whose value (slugged) classes each row; ``cell_class``: column → a
    class for its cells (``"slug"``: its own value, slugged, up to a parenthesis)."""
    formats, cell_class = dict(formats or {}), dict(cell_class or {})
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    rows = []
    for _, r in frame.iterrows():
        cls = f' class="{_slug(r[row_class])}"' if row_class else ""
        cells = []
        for col, _ in columns:
            text, numeric = _cell(r[col], formats.get(col))
            classes = ["num"] if numeric else []
            if col in cell_class:
                extra = cell_class[col]
                classes.append(_slug(str(r[col]).split(" (")[0]) if extra == "slug" else extra)
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{text}</td>")
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def page(title: str, intro: str, body: str) -> str:
    """A self-contained HTML page: ``title`` and ``intro`` are text (escaped), ``body`` is HTML."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="intro">{html.escape(intro)}</p>{body}</body></html>\n'
    )


def _interval(r: pd.Series) -> str:
    if any(isinstance(r[k], float) and math.isnan(r[k]) for k in ("estimate", "ci_low", "ci_high")):
        return "–"
    return f"{r['estimate']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}]"


def claims_page(claims: pd.DataFrame, tests: pd.DataFrame) -> str:
    """The claims table (status, what decided it with its simultaneous interval, the counts) and, per
    claim, its comparisons (``claim_tests.csv``)."""
    c = claims.copy()
    c["interval"] = c.apply(_interval, axis=1)
    c["models"] = [f"{a} ({b} left out)" for a, b in zip(c["n_models"], c["n_models_excluded"])]
    c["pairs"] = [f"{a} ({b} left out)" for a, b in zip(c["n_pairs"], c["n_pairs_excluded"])]
    body = table(
        c,
        [("claim_id", "claim"), ("claim", "the paper says"), ("status", "status"), ("summary", "comparisons"),
         ("deciding", "deciding comparison"), ("interval", "estimate [simultaneous interval]"),
         ("models", "models"), ("pairs", "pairs"), ("excluded", "left out, and why")],
        row_class="status",
        cell_class={"status": "status", "claim": "small", "excluded": "small"},
    )  # fmt: skip
    for claim_id, group in tests.groupby("claim_id", sort=False):
        g = group.copy()
        g["interval"] = g.apply(_interval, axis=1)
        cols = [("part", "part"), ("experiment", "experiment"), ("comparison", "comparison"),
                ("outcome", "outcome"), ("interval", "estimate [simultaneous interval]"),
                ("n_models", "models"), ("n_pairs", "pairs"), ("note", "note")]  # fmt: skip
        cols = [c for c in cols if c[0] in g.columns]
        body += f"<h2>{html.escape(str(claim_id))}: its comparisons</h2>"
        body += table(g, cols, row_class="outcome", cell_class={"outcome": "status", "note": "small"})
    return page(
        "The paper's claims, tested on this study",
        "Each claim is cut into comparisons oriented so that a value above 0 is the paper's side, each with "
        "a bootstrap interval over the models, simultaneous over a claim part's comparisons. A comparison "
        "holds when its interval lies above 0, does not hold when below, and is inconclusive otherwise or "
        "when a sampler it compares has too few solutions. The comparisons of every claim follow the table.",
        body,
    )


def scorecard_page(comparison: pd.DataFrame) -> str:
    """The scorecard: per paper figure, the paper's numbers beside ours, the scale and the ordering."""
    c = comparison.copy()
    c["paper"] = [
        f"{v:g}" if math.isnan(h) else f"{v:g}–{h:g}" for v, h in zip(c["value"], c["value_high"])
    ]
    c["where"] = [" ".join(str(x) for x in (p, s, q, pa) if str(x)) for p, s, q, pa in
                  zip(c["panel"], c["size"], c["quantity"], c["path"])]  # fmt: skip
    compared = c[c["why_not"] == ""]
    body = ""
    for fig, group in compared.groupby("figure", sort=False):
        body += f"<h2>Figure {html.escape(str(fig))}</h2>" if fig != "text" else "<h2>The text</h2>"
        body += table(
            group,
            [("combination", "combination"), ("where", "panel, quantity, path"),
             ("subject", "sampler or pair"), ("paper", "paper"), ("unit", "unit"),
             ("source", "paper's source"), ("ours", "ours"), ("n", "n"),
             ("within", "in the paper's range"), ("n_params", "parameters"), ("epochs", "epochs"),
             ("n_train", "train samples"), ("n_test", "test samples"), ("seeds", "seeds"),
             ("rank", "paper's rank"), ("ordering", "ordering as the paper's"), ("note", "note")],
            formats={"ours": lambda v: f"{v:.3g}", "rank": lambda v: f"{v:g}"},
            cell_class={"ordering": "slug", "note": "small"},
        )  # fmt: skip
    missing = c[c["why_not"] != ""]
    if len(missing):
        lacks = missing.groupby("why_not", sort=False).size().reset_index(name="rows")
        body += "<h2>Not compared here</h2>" + table(lacks, [("why_not", "why"), ("rows", "paper numbers")])
    return page(
        "The paper's numbers beside this study's",
        f"{len(compared)} of {len(c)} numbers of the paper compared. Ours are means over this study's "
        "solutions (test errors) or over the pairs of a type between solutions (barriers: the peak train "
        "error along the path, in %; distances per parameter), at the scale given in each row: a smaller "
        "scale than the paper's moves the values, and the ordering is what to compare. The paper's rank is "
        "the order it draws from a panel (RSGD before SGD before ADV; the pair-type levels of Fig. 2(c)); "
        "the ordering column counts the pairs it orders that our means order the same way. It describes "
        "means; the claims page holds the intervals.",
        body,
    )


def figure_index_page(rows: Sequence[Mapping[str, Any]]) -> str:
    """The figure index: every paper figure, drawn or not, what it shows, and what is missing."""
    frame = pd.DataFrame(list(rows))
    return page(
        "Which figures of the paper this study draws",
        "One row per figure 1–23 of the paper: whether this study draws it, the experiments each part shows, "
        "and for the parts it cannot draw, what is missing.",
        table(frame, [("figure", "figure"), ("name", "file"), ("shows", "shows"), ("status", "status"),
                      ("experiments", "experiments"), ("left_out", "left out, and why")],
              cell_class={"left_out": "small", "shows": "small"}),
    )  # fmt: skip


def config_page(study: str, text: str) -> str:
    """The study's config as it ran (its YAML text)."""
    return page(
        f"The config of study {study}",
        "As the workflow ran it: every key validated against config/schema/config.schema.yaml and every "
        "default filled in. Saved as a file and given as the only --configfile, it reproduces the study.",
        f"<pre>{html.escape(text)}</pre>",
    )
