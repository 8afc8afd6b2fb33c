"""Table 7 as data: complete, in the allowed vocabulary, and row by row equal to the paper's text."""
import re
from pathlib import Path

import pytest

from giasok.systematization import COLUMNS, VOCABULARY, assumption_level_counts, filterable_table, \
    load_systematization, timeline_figure

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "sok-gradient-leakage.txt"


@pytest.fixture(scope="module")
def table():
    return load_systematization()


def test_all_38_publications_with_allowed_values(table):
    assert list(table.columns) == list(COLUMNS) and len(table) == 38
    for column, allowed in VOCABULARY.items():
        for cell in table[column]:
            assert set(cell) <= set(allowed), (column, cell)
            assert list(cell) == sorted(cell, key=allowed.index), (column, cell)  # canonical order
    assert all(0 in levels and set(levels) <= set(range(6)) for levels in table.assumptions)
    assert table.year.between(2019, 2024).all() and table.ref.is_unique


def _paper_rows():
    """Parse Table 7's lines out of the paper's text: 'Author et al. (year) [ref] fields…'."""
    text = PAPER.read_text()
    block = text[text.index("Table 7: Systematization on Gradient Inversion Attacks."):]
    block = block[:block.index("¹ HBC")]
    rows = {}
    pattern = re.compile(r"^(.+?) \((\d{4})\) \[(\d+)\]\s+(.*)$")
    for line in block.splitlines():
        match = pattern.match(line.strip())
        if match:
            author, year, ref, rest = match.groups()
            rows[int(ref)] = (author, int(year), re.sub(r"\s+", " ", rest.replace("\t", " ")).strip())
    return rows


def _normalise(cells):
    return re.sub(r"\s+", " ", " ".join(cells)).replace("data, label", "label, data").strip()


@pytest.mark.skipif(not PAPER.exists(), reason=f"the paper's text is not at {PAPER}")
def test_every_row_matches_the_papers_table(table):
    paper = _paper_rows()
    assert len(paper) == 38
    for row in table.itertuples():
        author, year, fields = paper[row.ref]
        assert (row.publication, row.year) == (author, year)
        ours = [", ".join(row.trust), ", ".join(row.capability), ", ".join(row.goal),
                ", ".join(map(str, row.assumptions)), ", ".join(row.strategy), ", ".join(row.modality),
                ", ".join(row.defences) or "None"]
        theirs = fields.replace("Passive, Active", "Active, Passive").replace("data, label", "label, data")
        theirs = theirs.replace("S, P, C", "S, C, P")
        assert _normalise(ours) == _normalise([theirs]), (row.publication, row.year)


def test_filterable_table_is_offline_and_complete(table):
    html = filterable_table(table).data
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", html), "the table loads something from the web"
    assert all(name in html for name in table.publication)


def test_timeline_has_one_marker_per_publication_and_counts_add_up(table):
    fig = timeline_figure(table)
    markers = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert markers == len(table)
    counts = assumption_level_counts(table)
    assert counts.loc[0, "works"] == 38 and counts.works.sum() == sum(len(a) for a in table.assumptions)
