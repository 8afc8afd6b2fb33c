"""Systematization of gradient inversion attacks (paper §2, Appx C Table 7).

Section 2 of the paper classifies published gradient inversion attacks (GIAs)
along three axes:

* the *threat model*: the server's trust (honest-but-curious "HBC" or
  malicious "M"), its capability (passive or active), the attack goal
  (labels and/or data) and the assumption levels 0-5 the attack relies on;
* the *attack*: strategy (GIA-O observable-space optimisation, GIA-L latent
  space optimisation, GIA-A analytic) and data modality (CV, NLP, Tabular);
* the *defences* each work evaluated against (Q quantisation,
  S sparsification, C clipping, P perturbation).

Appendix C, Table 7 lists 38 publications along these axes.  The table ships
as tidy data inside the package, ``giasok/resources/systematization.csv``
(package data, read with ``importlib.resources``, so an installed giasok finds
it from any directory); this module loads it and turns it into a filterable
HTML table, a Fig. 1-style timeline and assumption counts.

Within a multi-valued cell, entries are stored in a fixed canonical order
(e.g. "label, data", "S, C, P"), so that equal sets compare equal as text.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

#: Table 7 inside the package (``resources/`` has no ``__init__.py``: it is data, listed as package data).
TABLE = resources.files("giasok") / "resources" / "systematization.csv"

#: Adversary knowledge, ranked from freely available (0) to over-assumed (5).
ASSUMPTION_LEVELS: dict[int, str] = {
    0: "basics: gradient, model, input shape, N",
    1: "priors on data or gradients (e.g. smoothness)",
    2: "data distribution (e.g. to pre-train a generator)",
    3: "client training details (lr, epochs, batch size)",
    4: "batch-norm statistics of the victim's batch",
    5: "malicious behaviour (tampered model or protocol)",
}

#: Allowed values of each multi-valued column, in their canonical order.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "trust": ("HBC", "M"),
    "capability": ("Active", "Passive"),
    "goal": ("label", "data"),
    "strategy": ("GIA-O", "GIA-L", "GIA-A"),
    "modality": ("CV", "NLP", "Tabular"),
    "defences": ("Q", "S", "C", "P"),
}

#: Abbreviations used in the table.
ABBREVIATIONS: dict[str, str] = {
    "HBC": "honest-but-curious server",
    "M": "malicious server",
    "GIA-O": "optimisation in the observable (input) space",
    "GIA-L": "optimisation in the latent space of a generator",
    "GIA-A": "analytic reconstruction",
    "Q": "quantisation",
    "S": "sparsification",
    "C": "clipping",
    "P": "perturbation (noise)",
}

COLUMNS = ("publication", "year", "ref", "trust", "capability", "goal",
           "assumptions", "strategy", "modality", "defences")

#: One colour per strategy (Okabe-Ito palette, colour-blind safe).
STRATEGY_COLOURS = {"GIA-O": "#0072B2", "GIA-L": "#E69F00", "GIA-A": "#009E73"}


def _split(cell: str) -> tuple[str, ...]:
    """Split a comma-separated cell into a tuple; "None" gives ()."""
    return () if cell == "None" else tuple(part.strip() for part in cell.split(","))


def load_systematization(path: str | Path | None = None) -> pd.DataFrame:
    """Load Table 7 as a DataFrame, one row per publication, in the paper's order.

    ``publication`` is a string, ``year`` and ``ref`` are ints, ``assumptions``
    is a tuple of ints and the other columns are tuples of strings, e.g.
    ``goal == ("label", "data")``; ``defences == ()`` when none was evaluated.
    ``path`` reads another copy of the table; by default the one shipped in the package (``TABLE``).
    """
    with (TABLE.open("rb") if path is None else open(path, "rb")) as f:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    df["year"] = df["year"].astype(int)
    df["ref"] = df["ref"].astype(int)
    df["assumptions"] = [tuple(int(a) for a in _split(c)) for c in df["assumptions"]]
    for column in VOCABULARY:
        df[column] = df[column].map(_split)
    return df[list(COLUMNS)]


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Join tuple cells back into the "a, b" text form used by the paper."""
    def join(cell):
        if isinstance(cell, tuple):
            return ", ".join(map(str, cell)) if cell else "None"
        return cell
    return df.apply(lambda column: column.map(join))


def filterable_table(df: pd.DataFrame, caption: str | None = None):
    """Return Table 7 as an interactive HTML table that needs no network.

    The table is rendered by ITables (DataTables) in offline mode: its
    JavaScript and CSS are embedded in the output, so the table can be
    searched, filtered per column (footer boxes) and sorted in a static
    HTML page, without a CDN and without a running Python kernel.  A plain
    HTML copy of the table is shown where JavaScript does not run.
    """
    from IPython.display import HTML
    from itables import to_html_datatable
    from itables.javascript import generate_init_offline_itables_html
    from itables.options import dt_bundle

    table = to_html_datatable(
        _as_text(df), caption=caption, connected=False,
        showIndex=False, paging=False, column_filters="footer",
        classes="display compact nowrap", scrollX=True, maxBytes=0, display_logo_when_loading=False,
    )
    # Let the footer's filter boxes shrink to their column instead of widening it.
    style = "<style>.dt-container tfoot input {width: 100%; min-width: 3em; box-sizing: border-box;}</style>"
    return HTML(generate_init_offline_itables_html(dt_bundle) + style + table)


def assumption_level_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Count how many publications rely on each assumption level 0-5."""
    counts = {level: sum(level in levels for levels in df["assumptions"])
              for level in ASSUMPTION_LEVELS}
    return pd.DataFrame({"assumption": ASSUMPTION_LEVELS, "works": counts}).rename_axis("level")


def timeline_figure(df: pd.DataFrame) -> Figure:
    """Draw a Fig. 1-style timeline: one labelled marker per publication.

    Years run along the x axis and each strategy has its own lane.  A work
    combining strategies sits in the lane of its first strategy and gets an
    edge in the colour of the second.  Circles mark honest-but-curious
    attacks, diamonds attacks that need a malicious server.
    """
    import matplotlib.pyplot as plt

    lanes = list(STRATEGY_COLOURS)
    stack = {}  # (lane, year) -> publications already placed there
    fig, ax = plt.subplots(figsize=(11, 7.5), layout="constrained")
    for row in df.itertuples():
        first, *others = row.strategy
        lane, year = lanes.index(first), row.year
        height = stack.setdefault((lane, year), 0)
        stack[lane, year] += 1
        y = lane + 0.375 - 0.15 * height  # stack upwards within the lane
        edge = STRATEGY_COLOURS[others[0]] if others else "black"
        ax.scatter(year, y, s=70, marker="D" if "M" in row.trust else "o",
                   color=STRATEGY_COLOURS[first], edgecolors=edge,
                   linewidths=2.5 if others else 0.5, zorder=3)
        ax.annotate(f"{row.publication} [{row.ref}]", (year, y), xytext=(7, 0),
                    textcoords="offset points", va="center", fontsize=8)

    years = range(df["year"].min(), df["year"].max() + 1)
    ax.set_xticks(list(years))
    ax.set_xlim(min(years) - 0.3, max(years) + 0.9)
    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(len(lanes) - 0.5, -0.75)  # GIA-O on top, room for the legend
    for boundary in range(len(lanes) - 1):
        ax.axhline(boundary + 0.5, color="0.85", lw=0.8)
    ax.set_xlabel("year")
    ax.set_title("Gradient inversion attacks by year and strategy (paper Table 7)")
    ax.legend(handles=[
        Line2D([], [], ls="", marker="o", color="0.5", label="honest-but-curious server"),
        Line2D([], [], ls="", marker="D", color="0.5", label="malicious server"),
        Line2D([], [], ls="", marker="o", color=STRATEGY_COLOURS["GIA-O"], markeredgewidth=2.5,
               markeredgecolor=STRATEGY_COLOURS["GIA-A"], label="edge: second strategy"),
    ], loc="upper left", ncols=3, fontsize=8)
    return fig
