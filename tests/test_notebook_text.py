"""The notebooks' text for readers: how long a run takes and where it is in the paper up front, exercises at the end.

The exercises ("## Try it") may only name knobs of their notebook's parameters cell and panels the notebook shows,
so that they cannot drift from the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9]*.ipynb"))
ARXIV = "https://arxiv.org/abs/1606.04474"
#: a markdown link to the paper whose text names a section or the appendix
PAPER_LINK = re.compile(r"\[([^\]]*(?:Section|Appendix|appendix)[^\]]*)\]\(" + re.escape(ARXIV) + r"\)")
CPU_TIME = re.compile(r"about \d+(?:\.\d+)? (?:seconds?|minutes?) on a 2-core CPU")
TRY_IT = re.compile(r"^## Try it[ \t]*$", re.MULTILINE)
ITEM = re.compile(r"^\d+\. ", re.MULTILINE)
#: where the exercises end: the next heading, or the link to the next notebook
SECTION_END = re.compile(r"^(?:#{1,6} |\*\*Next:\*\*|\*\*Back to:\*\*)", re.MULTILINE)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
STRING = re.compile(r"\"[^\"]*\"|'[^']*'")
ALL_CAPS = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*\b")
PANEL = re.compile(r"\b(?:l2l\.panels\.)?(\w+_panel)\b")
HISTORY = re.compile(r"\b(?:sessions?|issues?|tickets?|first attempt|earlier (?:version|recipe|attempt)s?)\b", re.I)


def parameters(nb: nbformat.NotebookNode) -> dict[str, object]:
    """The parameters cell's knobs and their default values (the cell only assigns literals)."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    return {t.id: ast.literal_eval(node.value) for node in tree.body for t in node.targets}


def panels_shown(nb: nbformat.NotebookNode) -> set[str]:
    """The ``l2l.panels`` functions the notebook's code cells call."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return set(re.findall(r"l2l\.panels\.(\w+)\(", code))


def exercises(nb: nbformat.NotebookNode) -> list[str]:
    """The numbered items of the notebook's one "## Try it" section (an AssertionError if it has none or several)."""
    found = [(i, m) for i, c in enumerate(nb.cells) if c.cell_type == "markdown" for m in TRY_IT.finditer(c.source)]
    assert len(found) == 1, f'{len(found)} "## Try it" sections: the notebook needs exactly one, with its exercises'
    i, match = found[0]
    source = nb.cells[i].source
    end = SECTION_END.search(source, match.end())
    section = source[match.end() : end.start() if end else len(source)]
    starts = [m.start() for m in ITEM.finditer(section)]
    return [section[a:b].strip() for a, b in zip(starts, [*starts[1:], len(section)], strict=True)]


def names_in_code_spans(text: str) -> tuple[set[str], set[str]]:
    """The ALL_CAPS names and the ``*_panel`` names written in backticks (string literals inside them skipped)."""
    caps, panels = set(), set()
    for span in CODE_SPAN.findall(text):
        bare = STRING.sub('""', span)
        caps |= set(ALL_CAPS.findall(bare))
        panels |= set(PANEL.findall(bare))
    return caps, panels


def kind(value: object) -> str:
    """A parameter value's kind, for checking the values exercises suggest: numbers match numbers."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def nb(request) -> nbformat.NotebookNode:
    return nbformat.read(request.param, as_version=4)


def test_first_cell_links_the_paper_and_says_how_long(nb):
    """The opening cell links the arXiv page with the section, and gives the CPU time, the GPU and SMOKE."""
    first = nb.cells[0].source
    assert PAPER_LINK.search(first), f"the first cell needs a link [Section ...]({ARXIV}) to where it is in the paper"
    assert CPU_TIME.search(first), 'the first cell needs the time of Run All: "about N minutes on a 2-core CPU"'
    assert "GPU" in first, "the first cell says how long it takes on a GPU (or that it is not measured yet)"
    assert "`SMOKE = True`" in first, "the first cell tells the reader that SMOKE = True is a quick check"


def test_ends_with_two_to_four_exercises(nb):
    """One "## Try it" section in the closing cell, before its link onwards, with 2-4 numbered questions."""
    items = exercises(nb)
    assert 2 <= len(items) <= 4, f'"## Try it" has {len(items)} numbered exercises: write 2 to 4'
    last = nb.cells[-1].source
    assert TRY_IT.search(last), '"## Try it" belongs in the closing cell, after the summary'
    onwards = re.search(r"\*\*(?:Next|Back to):\*\*", last)
    assert onwards and TRY_IT.search(last).start() < onwards.start(), '"## Try it" comes before the link onwards'
    for item in items:
        assert "?" in item, f"each exercise asks a question: {item[:60]!r}"


def test_exercises_name_only_real_knobs_and_panels(nb):
    """Every ALL_CAPS name in backticks is a parameter, every panel one this notebook shows; each exercise uses one."""
    knobs, shown = parameters(nb), panels_shown(nb)
    for item in exercises(nb):
        caps, panels = names_in_code_spans(item)
        assert caps <= knobs.keys(), f"{sorted(caps - knobs.keys())} are not parameters of this notebook: {item[:60]!r}"
        assert panels <= shown, f"{sorted(panels - shown)} are not panels this notebook shows: {item[:60]!r}"
        assert caps or panels, f"each exercise changes a parameter or uses a panel, in backticks: {item[:60]!r}"


def test_suggested_values_have_the_parameters_kind(nb):
    """An exercise's `NAME = value` is a literal of the kind the parameter has (a list stays a list, ...)."""
    knobs = parameters(nb)
    for item in exercises(nb):
        for span in CODE_SPAN.findall(item):
            match = re.fullmatch(r"([A-Z][A-Z0-9_]*) = (.+)", span.strip())
            if match and match[1] in knobs:
                value = ast.literal_eval(match[2])
                assert kind(value) == kind(knobs[match[1]]), f"`{span}`: {match[1]} is a {kind(knobs[match[1]])}"


def test_markdown_speaks_of_the_product(nb):
    """No word of how the project was made: the text states what the notebook does."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found = HISTORY.search(cell.source)
            assert not found, f"markdown cell {i} says {found[0]!r}: state what the product does instead"


def test_the_checks_catch_drift():
    """The parsers above find a knob that does not exist, a missing section, and a wrong kind of value."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("SEED = 0\nSTEPS = 100\nSCALES = [1.0]", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("## Try it\n\n1. Set `STEPS = 10`?\n2. Set `PREPROCESSING = 'none'`?"),
    ]
    caps = set().union(*(names_in_code_spans(item)[0] for item in exercises(nb)))
    assert caps - parameters(nb).keys() == {"PREPROCESSING"}
    assert kind(ast.literal_eval("[0.1, 10.0]")) == kind(parameters(nb)["SCALES"]) != kind(ast.literal_eval("10"))
    nb.cells[1].source = "## Summary"
    with pytest.raises(AssertionError, match="Try it"):
        exercises(nb)
