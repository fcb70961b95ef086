"""Notebook 05's written-out quadratics and learning-rate search against the package (paper, Section 3.1 and 3).

The cell marked ``# quadratic_by_hand`` draws a function f(theta) = ||W theta - y||^2 from its task's seed and writes
its gradient 2 W^T (W theta - y) by hand; the cell marked ``# tune_by_hand`` runs Adam as plain update lines on the
training functions for every rate of a grid, keeps the lowest mean final loss and steps past the grid's edge while the
best rate is on it. These tests run both cells as the notebook does, on a small problem, and their functions on fresh
cases, against :class:`l2l.QuadraticProblem`'s tasks, :func:`l2l.tune_learning_rate` and :func:`l2l.grid_search`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import cell_functions, teaching_cell

import l2l_helpers as l2l

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_quadratics.ipynb"


def by_hand() -> dict[str, Callable]:
    """Both cells' functions in one namespace (the search's Adam calls the first cell's f_and_grad)."""
    namespace = {"torch": torch, "math": math}
    return cell_functions(NOTEBOOK, "# quadratic_by_hand", namespace) | cell_functions(
        NOTEBOOK, "# tune_by_hand", namespace
    )


def drawn(tasks, dim: int, init_scale: float) -> tuple[torch.Tensor, ...]:
    """W, y and theta_0 of every task of ``tasks``, drawn by the notebook's quadratic_task from the tasks' seeds."""
    quadratic_task = by_hand()["quadratic_task"]
    parts = zip(*[quadratic_task(seed, dim, init_scale) for seed in tasks.seeds], strict=True)
    return tuple(torch.stack(p) for p in parts)


def test_the_notebook_cells_run_and_agree_with_the_package():
    """Both cells as the notebook runs them, on 3 training functions, 15 steps, with the package's tuned Adam."""
    problem = l2l.QuadraticProblem()
    tuned = l2l.tune_baselines(problem, names=("Adam",), n_tasks=3, steps=15, progress=False)
    namespace = {"torch": torch, "math": math, "l2l": l2l, "problem": problem, "TUNE_TASKS": 3, "STEPS": 15}
    namespace["tuned"] = tuned
    exec(compile(teaching_cell(NOTEBOOK, "# quadratic_by_hand"), str(NOTEBOOK), "exec"), namespace)
    assert namespace["same"] is True
    exec(
        compile(teaching_cell(NOTEBOOK, "# tune_by_hand"), str(NOTEBOOK), "exec"), namespace
    )  # its own l2l.check decides
    assert namespace["best_lr"] == tuned["Adam"].best_lr
    assert namespace["scores"] == pytest.approx(tuned["Adam"].scores, rel=1e-4)  # the same rates tried, same scores


@pytest.mark.parametrize(("split", "dim", "init_scale"), [("train", 10, 0.01), ("dev", 3, 0.5), ("val", 7, 1.0)])
def test_drawn_functions_are_the_package_tasks(split, dim, init_scale):
    """From a task's seed: the package's W, y and theta_0 exactly, for any split, dimension and initial scale."""
    tasks = l2l.QuadraticProblem(dim=dim, init_scale=init_scale).tasks(split, [0, 5, 123])
    w, y, theta0 = drawn(tasks, dim, init_scale)
    assert torch.equal(w, tasks.W) and torch.equal(y, tasks.y) and torch.equal(theta0, tasks.init_theta())
    assert not torch.equal(w[0], w[1])  # each task its own function


@pytest.mark.parametrize("scale", [0.1, 3.0])
def test_loss_and_hand_gradient_are_the_package_loss_and_autograd_gradient(scale):
    """f and the written gradient 2 W^T (W theta - y) at random points equal the package's f and its autograd
    gradient (float64, to rounding), and the written gradient matches central finite differences."""
    f_and_grad = by_hand()["f_and_grad"]
    tasks = l2l.QuadraticProblem(dim=6).tasks("train", range(4))
    w, y = tasks.W.double(), tasks.y.double()  # the package's loss computes in theta's dtype
    theta = scale * torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss, grad = f_and_grad(w, y, theta)
    point = theta.clone().requires_grad_(True)
    package_loss = tasks.loss(point)
    (package_grad,) = torch.autograd.grad(package_loss.sum(), point)
    torch.testing.assert_close(loss, package_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, package_grad, rtol=1e-12, atol=1e-12)
    eps, bumps = 1e-6, torch.eye(6, dtype=torch.float64)
    numeric = torch.stack(
        [(f_and_grad(w, y, theta + eps * e)[0] - f_and_grad(w, y, theta - eps * e)[0]) / (2 * eps) for e in bumps], 1
    )
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-6)
    wrong = 2 * torch.einsum("bij,bj->bi", w, torch.einsum("bij,bj->bi", w, theta) - y)  # W (W theta - y): no transpose
    assert (wrong - package_grad).abs().max() > 1e-3


@pytest.mark.parametrize("lr", [1e-3, 0.1, 3.0])
def test_written_out_adam_gives_the_package_curves(lr):
    """Adam as plain update lines: the package's Adam loss curves on the same functions, step by step."""
    f = by_hand()
    problem = l2l.QuadraticProblem()
    tasks = problem.tasks("train", range(5))
    mine = f["adam_by_hand"](*drawn(tasks, 10, 0.01), lr, 30)
    theirs = l2l.run_rule(l2l.Adam(lr), tasks, 30)
    assert mine.shape == theirs.shape == (5, 31)
    torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)
    plain = f["adam_by_hand"](*drawn(tasks, 10, 0.01), lr, 30, beta1=0.0)  # no momentum: another curve
    assert (plain - theirs).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("grid", "steps", "edge"),
    [
        ((1e-4, 3e-4, 1e-3), 20, "top"),  # best on the top edge: the search steps on past it
        (l2l.DEFAULT_LR_GRID, 40, None),  # the notebook's grid
        ((0.5, 1.0, 2.0, 20.0), 20, "bottom"),  # best on the bottom edge of an uneven grid
    ],
    ids=["past-the-top", "notebook-grid", "past-the-bottom"],
)
def test_written_out_tuning_picks_the_package_rate(grid, steps, edge):
    """The written-out search with Adam written out picks :func:`l2l.tune_learning_rate`'s rate, trying the same
    rates (those past the grid's edge included) with the same scores."""
    f = by_hand()
    problem = l2l.QuadraticProblem()
    w, y, theta0 = drawn(problem.tasks("train", range(4)), 10, 0.01)

    def mean_final_loss(lr: float) -> float:
        value = float(f["adam_by_hand"](w, y, theta0, lr, steps)[:, -1].mean())
        return value if math.isfinite(value) else math.inf

    best, scores = f["tune_by_hand"](mean_final_loss, grid)
    package = l2l.tune_learning_rate("Adam", problem, grid=grid, n_tasks=4, steps=steps)
    assert best == package.best_lr
    assert list(scores) == list(package.scores)
    assert scores == pytest.approx(package.scores, rel=1e-4)
    past = [lr for lr in scores if lr not in grid]  # the case really is the one it names
    assert (edge is None) == (not past)
    if edge == "top":
        assert min(past) > max(grid)
    if edge == "bottom":
        assert max(past) < min(grid)


def synthetic_scores(rng: random.Random) -> tuple[list[float], Callable[[float], float]]:
    """A random grid (geometric or not, maybe with repeats) and a score with a random optimum; some rates diverge."""
    start, ratio, n = 10 ** rng.uniform(-5, 0), 10 ** rng.uniform(0.2, 1.0), rng.randint(1, 6)
    grid = [float(f"{start * ratio**k:.10g}") for k in range(n)]
    if rng.random() < 0.3:
        grid.append(grid[rng.randrange(len(grid))] * 10 ** rng.uniform(-0.3, 0.3))  # an uneven step
    if rng.random() < 0.2:
        grid.append(grid[0])  # a repeated rate
    rng.shuffle(grid)
    optimum, blowup = 10 ** rng.uniform(-7, 3), 10 ** rng.uniform(-3, 4)
    nan_above = rng.random() < 0.3

    def score(lr: float) -> float:
        if lr > blowup:
            return math.nan if nan_above else math.inf
        return (math.log10(lr) - math.log10(optimum)) ** 2

    return grid, score


@pytest.mark.parametrize("seed", range(200))
def test_written_out_search_is_the_package_grid_search(seed):
    """On random grids and scores (optima inside, past either edge, every rate diverging, NaN, repeats, one rate):
    the written-out search tries the same rates, in the same order, and keeps the same one as :func:`l2l.grid_search`.
    """
    rng = random.Random(seed)
    grid, score = synthetic_scores(rng)
    extend = rng.choice([0, 1, 4, 6])
    tune_by_hand = by_hand()["tune_by_hand"]

    def hand_score(lr: float) -> float:  # the notebook's criterion maps a diverged run to inf, as the package does
        value = score(lr)
        return value if math.isfinite(value) else math.inf

    best, scores = tune_by_hand(hand_score, grid, extend)
    package = l2l.grid_search(score, grid, extend)
    assert list(scores) == list(package)
    assert scores == package
    assert best == min(package, key=package.__getitem__)


def test_a_search_without_the_edge_rule_would_fail():
    """The comparison above can fail: a search that stops at the grid's edge keeps another rate than the package."""
    grid = [1e-4, 1e-3, 1e-2]
    score = lambda lr: (math.log10(lr) - 1) ** 2  # noqa: E731  (the optimum 10 lies past the top edge)
    package = l2l.grid_search(score, grid)
    best, _ = by_hand()["tune_by_hand"](score, grid, extend=0)
    assert best == 1e-2 != min(package, key=package.__getitem__)
