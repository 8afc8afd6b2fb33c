"""Table 7 as data: complete, in the allowed vocabulary, and row by row equal to the paper's text."""
import re
from collections import Counter
from pathlib import Path

import pytest

from giasok.systematization import (ASSUMPTION_LEVELS, COLUMNS, VOCABULARY, assumption_level_counts,
                                    filterable_table, load_systematization, timeline_figure)

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "sok-gradient-leakage.txt"
ROW = re.compile(r"^(?P<publication>.+? et al\.) \((?P<year>\d{4})\) \[(?P<ref>\d+)\]\t(?P<rest>.*)$")
GOAL_AND_LEVELS = re.compile(r"(?P<goal>[a-z]+(?:, [a-z]+)*)\s*(?P<levels>\d+(?:, \d+)*)?")


@pytest.fixture(scope="module")
def table():
    return load_systematization()


def test_all_38_publications_with_allowed_values(table):
    assert list(table.columns) == list(COLUMNS) and len(table) == 38
    for column, allowed in VOCABULARY.items():
        for cell in table[column]:
            assert set(cell) <= set(allowed), (column, cell)
            assert list(cell) == sorted(cell, key=allowed.index), (column, cell)  # canonical order
            assert len(set(cell)) == len(cell), (column, cell)
            assert cell or column == "defences", (column, "empty cell")
    for levels in table.assumptions:
        assert 0 in levels and set(levels) <= set(ASSUMPTION_LEVELS) and list(levels) == sorted(set(levels))
    assert table.year.between(2019, 2024).all() and table.ref.is_unique
    assert table.publication.str.fullmatch(r"[A-Z][a-z]+ et al\.").all()


def _split(cell):
    return set() if cell == "None" else {part.strip() for part in cell.split(",")}


def paper_rows(text):
    """Parse Table 7 out of the paper's text, one dict per publication line, in the paper's order.

    A line reads 'Author et al. (year) [ref]' then tab-separated cells: trust, capability, goal,
    assumptions, strategy, modality, defences. The text extraction sometimes glues the goal and the
    assumption levels into one cell ('label, data 0, 1, 3') and leaves an empty cell behind.
    """
    block = text[text.index("Table 7: Systematization on Gradient Inversion Attacks."):]
    block = block[:block.index("¹ HBC")]
    rows = []
    for line in block.splitlines():
        match = ROW.match(line.strip())
        if not match:
            continue
        cells = [cell.strip() for cell in match["rest"].split("\t") if cell.strip()]
        trust, capability, goal, *rest = cells
        glued = GOAL_AND_LEVELS.fullmatch(goal)
        assert glued, line
        goal, levels = glued["goal"], glued["levels"] or rest.pop(0)
        assert len(rest) == 3, line
        strategy, modality, defences = rest
        rows.append({"publication": match["publication"], "year": int(match["year"]), "ref": int(match["ref"]),
                     "trust": _split(trust), "capability": _split(capability), "goal": _split(goal),
                     "assumptions": {int(level) for level in _split(levels)}, "strategy": _split(strategy),
                     "modality": _split(modality), "defences": _split(defences)})
    return rows


def test_the_parser_reads_glued_and_separate_cells():
    text = ("Table 7: Systematization on Gradient Inversion Attacks.\n"
            "Zhu et al. (2019) [100]\tHBC\tPassive\tlabel, data 0\t\tGIA-O\tCV, NLP\tQ, S, P\n"
            "Wang et al. (2019) [80]\tHBC, M\tActive, Passive\tdata\t0, 1, 2\tGIA-O\tCV\tNone\n"
            "¹ HBC for Honest-but-curious\n")
    zhu, wang = paper_rows(text)
    assert zhu["goal"] == {"label", "data"} and zhu["assumptions"] == {0} and zhu["defences"] == {"Q", "S", "P"}
    assert wang["trust"] == {"HBC", "M"} and wang["assumptions"] == {0, 1, 2} and wang["defences"] == set()


@pytest.mark.skipif(not PAPER.exists(), reason=f"the paper's text is not at {PAPER}")
def test_every_row_matches_the_papers_table_in_order(table):
    paper = paper_rows(PAPER.read_text(encoding="utf-8"))
    assert len(paper) == len(table) == 38
    for ours, theirs in zip(table.to_dict("records"), paper):
        ours = {k: set(v) if isinstance(v, tuple) else v for k, v in ours.items()}
        assert ours == theirs, theirs["publication"]


def test_filterable_table_is_offline_and_complete(table):
    html = filterable_table(table).data
    tags = re.findall(r"<(?:script|link|img|iframe|source)\b[^>]*>", html, flags=re.IGNORECASE)
    assert tags, "no script found: the table would not be interactive"
    remote = [tag for tag in tags if re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", tag, re.I)]
    assert remote == [], "the table loads a resource from the web"
    assert not re.search(r"""(?:@import|url\()\s*["']?\s*(?:https?:)?//""", html), "CSS loads from the web"
    assert not re.search(r"""\bimport\b[^;]*?from\s*["']https?://""", html), "a module import hits the web"
    assert all(name in html for name in table.publication)
    assert "None" in html and "0, 1, 3, 4" in html  # tuple cells are shown in the paper's text form


def test_timeline_has_one_labelled_marker_per_publication(table):
    fig = timeline_figure(table)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(table)
    labels = [text.get_text() for text in ax.texts]
    assert sorted(labels) == sorted(f"{p} [{r}]" for p, r in zip(table.publication, table.ref))
    years = sorted({round(float(x)) for c in ax.collections for x, _ in c.get_offsets()})
    assert years == sorted(set(table.year))


def test_assumption_level_counts(table):
    counts = assumption_level_counts(table)
    assert list(counts.index) == list(range(6)) and counts.loc[0, "works"] == 38
    tally = Counter(level for levels in table.assumptions for level in levels)
    assert counts.works.to_dict() == {level: tally[level] for level in range(6)}
    assert counts.works.to_dict() == {0: 38, 1: 17, 2: 9, 3: 4, 4: 4, 5: 9}  # counted by hand in the paper
