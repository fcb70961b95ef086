"""House rules for the notebooks: committed clean, one tagged parameters cell, the reading order kept."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9]*.ipynb"))
REQUIRED = {"SEED", "DEVICE", "SMOKE", "INTERACTIVE"}


def test_there_are_notebooks():
    """The numbered sequence exists and starts at 01."""
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("01_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_clean(path):
    """No outputs, execution counts or widget state: what nbstripout would leave."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state"
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_with_the_knobs(path):
    """Exactly one cell tagged 'parameters', near the top, assigning the standard knobs in ALL_CAPS."""
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert tagged[0] <= 2, "the parameters cell comes right after the introduction"
    tree = ast.parse(nb.cells[tagged[0]].source)
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert all(isinstance(node, ast.Assign) for node in tree.body), "the parameters cell only assigns"
    assert REQUIRED <= names, f"{path.name} lacks {REQUIRED - names}"
    assert all(n.isupper() for n in names), f"{path.name}: parameters are ALL_CAPS"
    values = {t.id: node.value for node in tree.body for t in node.targets}
    assert ast.literal_eval(values["SMOKE"]) is False and ast.literal_eval(values["INTERACTIVE"]) is True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opens_with_goals_and_ends_with_summary(path):
    """A title with what the reader learns and where in the paper; a summary at the end."""
    nb = nbformat.read(path, as_version=4)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "What you will learn" in first.source and "Where in the paper" in first.source
    assert last.cell_type == "markdown" and "Summary" in last.source


def test_next_pointers_follow_the_numbering():
    """Each notebook's closing cell links the next notebook of the sequence."""
    for path, following in itertools.pairwise(NOTEBOOKS):
        last = nbformat.read(path, as_version=4).cells[-1].source
        assert following.name in last, f"{path.name} does not point to {following.name}"


#: Where readers find the interactive panels (notebook -> panel of l2l_helpers.notebook.panels).
PANELS = {
    "02_coordinatewise_lstm": "architecture_training_panel",
    "04_meta_training": "architecture_training_panel",
    "07_architectures": "optimizee_panel",
    "08_relu_failure": "optimizee_panel",
    "10_convnets": "label_subset_panel",
}


@pytest.mark.parametrize(("stem", "panel"), PANELS.items(), ids=list(PANELS))
def test_interactive_panels_are_shown(stem, panel):
    """The meta-training panel in 02 and 04, the MNIST optimizee panel in 07 and 08, each shown via INTERACTIVE."""
    nb = nbformat.read(NOTEBOOKS[0].parent / f"{stem}.ipynb", as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and f"l2l.panels.{panel}(" in c.source]
    assert cells, f"{stem} does not show l2l.panels.{panel}"
    assert all(".show(INTERACTIVE)" in source for source in cells), "headless runs take the same path once"
