"""Notebook 11's written-out Global Averaging Cells and NTM-BFGS memory (paper, appendix) against the package.

The cell marked ``# global_average_by_hand`` replaces the first ``cells`` hidden units of every coordinate by their
mean over the coordinates of its optimizee; the cell marked ``# memory_by_hand`` writes k rank-one terms over the k
oldest and reads the dense memory M = I + sum_j a_j b_j^T with r. These tests run both cells as the notebook does,
and their functions on fresh inputs against ``l2l.global_average`` and ``l2l.memory_write_read``; the averaging also
against a mean computed element by element, and inside a GAC network's step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import cell_functions, teaching_cell

import l2l_helpers as l2l

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "11_beyond_the_paper.ipynb"
GAC_MARKER, MEMORY_MARKER = "# global_average_by_hand", "# memory_by_hand"


def cell_function(marker: str, name: str) -> Callable:
    """The function ``name`` the cell defines, and nothing else of the cell, exec'd with only torch."""
    return cell_functions(NOTEBOOK, marker, {"torch": torch}, [name])[name]


def mean_by_elements(h: torch.Tensor, cells: int, optimizees: int) -> torch.Tensor:
    """The oracle: entry (k * D + i, j) is the mean of h[k * D + i', j] over i' for j < cells, else h's own."""
    dim = h.shape[0] // optimizees
    rows = h.tolist()
    out = [row[:] for row in rows]
    for k in range(optimizees):
        for j in range(cells):
            mean = sum(rows[k * dim + i][j] for i in range(dim)) / dim
            for i in range(dim):
                out[k * dim + i][j] = mean
    return torch.tensor(out, dtype=h.dtype)


CASES = [(1, 5, 20, 5), (3, 4, 20, 5), (2, 7, 6, 0), (4, 3, 6, 6), (5, 1, 8, 3)]  # optimizees, D, hidden, cells


@pytest.mark.parametrize(("optimizees", "dim", "hidden", "cells"), CASES)
def test_written_out_averaging_is_the_package_and_the_elementwise_mean(optimizees, dim, hidden, cells):
    by_hand = cell_function(GAC_MARKER, "global_average_by_hand")
    gen = torch.Generator().manual_seed(optimizees * 100 + dim)
    h = torch.randn(optimizees * dim, hidden, generator=gen, dtype=torch.float64)
    mine = by_hand(h, cells, optimizees)
    torch.testing.assert_close(mine, l2l.global_average(h, cells, optimizees), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mine, mean_by_elements(h, cells, optimizees), rtol=1e-12, atol=1e-12)


def test_the_oracle_tells_optimizees_apart():
    """The check can fail: a mean over all coordinates of every optimizee is not the mean over each one's own."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(3 * 4, 6, generator=gen, dtype=torch.float64)
    expected = mean_by_elements(h, 2, optimizees=3)
    assert not torch.allclose(mean_by_elements(h, 2, optimizees=1), expected)
    assert not torch.allclose(cell_function(GAC_MARKER, "global_average_by_hand")(h, 2, 1), expected)


def test_a_gac_step_is_lstm_cells_with_the_written_out_averaging():
    """A GAC network's step on (tasks, D) gradients: each layer's nn.LSTMCell, then the cell's averaging of its h."""
    by_hand = cell_function(GAC_MARKER, "global_average_by_hand")
    torch.manual_seed(3)
    net = l2l.CoordinatewiseLSTM(gac_cells=3, hidden_size=8, preprocessing="none").double()
    gen = torch.Generator().manual_seed(4)
    grad = torch.randn(3, 5, generator=gen, dtype=torch.float64)  # 3 optimizees of 5 coordinates
    state = 0.5 * torch.randn(net.init_state(grad.numel()).shape, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        update, new_state = net(grad, state)
        x, layers = grad.reshape(-1, 1), []  # (N, 1): the "none" preprocessing feeds the gradient itself
        for layer, cell in enumerate(net.cells):
            h, c = cell(x, (state[layer, 0], state[layer, 1]))
            h = by_hand(h, 3, optimizees=3)
            layers.append(torch.stack([h, c]))
            x = h
        mine = net.output(x).squeeze(-1) * net.config.output_scale
    torch.testing.assert_close(mine.view(3, 5), update, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.stack(layers), new_state, rtol=1e-12, atol=1e-12)


MEMORY_CASES = [(1, 4, 6, 3), (3, 5, 18, 3), (2, 6, 4, 1), (4, 2, 3, 3)]  # optimizees, D, slots, heads


@pytest.mark.parametrize(("optimizees", "dim", "slots", "heads"), MEMORY_CASES)
def test_written_out_memory_is_the_package(optimizees, dim, slots, heads):
    """New slots and the read M r equal memory_write_read's on fresh terms, per optimizee of a batch."""
    by_hand = cell_function(MEMORY_MARKER, "memory_write_read_by_hand")
    gen = torch.Generator().manual_seed(optimizees * 10 + slots)
    n = optimizees * dim

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    args = (draw(n, slots), draw(n, slots), draw(n, heads), draw(n, heads), draw(n))
    mine = by_hand(*args, optimizees)
    theirs = l2l.memory_write_read(*args, optimizees)
    for got, want in zip(mine, theirs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    if optimizees > 1:  # the check can fail: one memory for all coordinates mixes the optimizees
        assert not torch.allclose(by_hand(*args, 1)[2], theirs[2])


def test_an_empty_memory_reads_r():
    """With no terms written (all a zero), M = I: the read result is the read vector itself."""
    by_hand = cell_function(MEMORY_MARKER, "memory_write_read_by_hand")
    gen = torch.Generator().manual_seed(5)
    r = torch.randn(8, generator=gen, dtype=torch.float64)
    b_slots, b = torch.randn(8, 6, generator=gen, dtype=torch.float64), torch.randn(8, 3, generator=gen)
    _, _, read = by_hand(torch.zeros(8, 6, dtype=torch.float64), b_slots, torch.zeros(8, 3), b.double(), r, 2)
    torch.testing.assert_close(read, r, rtol=0, atol=0)


def test_the_notebook_cells_run_and_agree_with_the_package():
    """Both cells as the notebook runs them; the memory cell draws the same random numbers as before its function."""
    namespace = {"torch": torch, "l2l": l2l, "SEED": 0}
    exec(compile(teaching_cell(NOTEBOOK, GAC_MARKER), str(NOTEBOOK), "exec"), namespace)
    expected = torch.arange(24.0).view(6, 4)
    expected[:3, :2], expected[3:, :2] = torch.tensor([4.0, 5.0]), torch.tensor([16.0, 17.0])  # means of 3 rows
    torch.testing.assert_close(namespace["by_hand"], expected, rtol=0, atol=0)
    torch.testing.assert_close(namespace["package"], expected, rtol=0, atol=0)
    exec(compile(teaching_cell(NOTEBOOK, MEMORY_MARKER), str(NOTEBOOK), "exec"), namespace)
    torch.testing.assert_close(namespace["by_hand"], namespace["package"], rtol=1e-5, atol=1e-6)
    after_cell = torch.get_rng_state()
    torch.manual_seed(0)
    for shape in ((4, 6), (4, 6), (4, 3), (4, 3), (4,)):  # the notebook's draws: slots, writes, read vector
        torch.randn(shape)
    assert torch.equal(after_cell, torch.get_rng_state())
