"""l2l_helpers.evaluation.loops: the optimization loop, loss summaries, learning-rate grid searches on training
tasks."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import lively_net

import l2l_helpers as l2l
from l2l_helpers.evaluation.loops import evaluate, run_rule, trajectory
from l2l_helpers.evaluation.tuning import tune_learning_rate
from l2l_helpers.optimizees import QuadraticProblem
from l2l_helpers.optimizer.baselines import SGD
from l2l_helpers.optimizer.coordinatewise_lstm import LearnedRule


def test_tune_near_searches_around_each_best_rate_on_training_tasks():
    """Each baseline gets its own grid, best_lr x factors, scored on training tasks like tune_baselines."""
    problem = l2l.QuadraticProblem()
    tuned = l2l.tune_baselines(problem, ("SGD", "Adam"), grid=(1e-2, 1e-1), n_tasks=2, steps=10, progress=False)
    near = l2l.tune_near(problem, tuned, factors=(0.5, 1.0, 2.0), n_tasks=2, steps=10, progress=False)
    for name, t in near.items():
        grid = [tuned[name].best_lr * f for f in (0.5, 1.0, 2.0)]
        assert all(any(r == pytest.approx(g) for r in t.scores) for g in grid)  # (+ steps past an edge best)
        assert t.scores[tuned[name].best_lr] == pytest.approx(tuned[name].scores[tuned[name].best_lr])
        assert t.best_lr == min(t.scores, key=t.scores.get)
    with pytest.raises(ValueError, match="factors"):
        l2l.tune_near(problem, tuned, factors=(0.0, 1.0))
    with pytest.raises(ValueError, match="tuned is empty"):
        l2l.tune_near(problem, {})


def test_tune_near_at_scores_each_horizon_as_a_search_of_its_own():
    """Several horizons from one run per rate: each horizon's result is the one-horizon search's."""
    problem = l2l.QuadraticProblem()
    tuned = l2l.tune_baselines(problem, ("NAG",), grid=(1e-2, 1e-1), n_tasks=2, steps=10, progress=False)
    both = l2l.tune_near_at(problem, tuned, (10, 30), factors=(0.5, 1.0), n_tasks=2, progress=False)
    for horizon in (10, 30):
        alone = l2l.tune_near(problem, tuned, factors=(0.5, 1.0), n_tasks=2, steps=horizon, progress=False)
        assert both[horizon]["NAG"].scores == pytest.approx(alone["NAG"].scores)
        assert both[horizon]["NAG"].best_lr == alone["NAG"].best_lr


def quad_loss(tasks, theta):
    """||W theta - y||^2 per task, written out independently."""
    return ((torch.einsum("bij,bj->bi", tasks.W, theta) - tasks.y) ** 2).sum(-1)


def sgd_reference(tasks, lr, steps):
    """Plain gradient descent on quadratic tasks, losses at theta_0..theta_T: shape (n_tasks, steps + 1)."""
    theta = tasks.init_theta().double()
    W, y = tasks.W.double(), tasks.y.double()
    losses = []
    for _ in range(steps):
        r = torch.einsum("bij,bj->bi", W, theta) - y
        losses.append((r**2).sum(-1))
        theta = theta - lr * 2 * torch.einsum("bji,bj->bi", W, r)
    r = torch.einsum("bij,bj->bi", W, theta) - y
    losses.append((r**2).sum(-1))
    return torch.stack(losses, 1)


def test_evaluate_shapes_and_values():
    """evaluate returns (n_tasks, steps + 1) losses equal to an independent gradient-descent loop."""
    problem = QuadraticProblem(dim=4)
    result = evaluate(SGD(0.02), problem, n_tasks=5, steps=12)
    assert result.losses.shape == (5, 13) and result.steps == 12 and result.lr == 0.02 and result.name == "SGD"
    ref = sgd_reference(problem.tasks("dev", range(5)), 0.02, 12).float()
    torch.testing.assert_close(result.losses, ref, rtol=1e-4, atol=1e-5)
    assert result.mean_final == pytest.approx(float(ref[:, -1].mean()), rel=1e-4)
    assert result.mean_sum == pytest.approx(float(ref[:, 1:].sum(1).mean()), rel=1e-4)
    chunked = evaluate(SGD(0.02), problem, n_tasks=5, steps=12, batch_tasks=2)
    torch.testing.assert_close(chunked.losses, result.losses)
    shifted = evaluate(SGD(0.02), problem, n_tasks=2, steps=12, first_index=3)
    torch.testing.assert_close(shifted.losses, result.losses[3:])
    val = evaluate(SGD(0.02), problem, n_tasks=2, steps=12, split="val")
    assert not torch.equal(val.losses, result.losses[:2])


def test_evaluate_learned_rule_restores_training_mode():
    """Evaluating a LearnedRule runs without a graph and leaves the net's train/eval mode as it was."""
    net = lively_net()
    net.train()
    result = evaluate(LearnedRule(net), QuadraticProblem(dim=3), 2, 5)
    assert net.training and not result.losses.requires_grad
    tasks = QuadraticProblem(dim=3).tasks("dev", range(2))
    losses, thetas = trajectory(LearnedRule(net), tasks, 5)
    assert thetas.shape == (6, 2, 3)
    torch.testing.assert_close(losses, result.losses)
    torch.testing.assert_close(losses, run_rule(LearnedRule(net), tasks, 5))
    for t in range(6):
        torch.testing.assert_close(losses[:, t], quad_loss(tasks, thetas[t]))


@pytest.mark.parametrize(
    ("kwargs", "name"), [({"n_tasks": 0}, "n_tasks"), ({"steps": 0}, "steps"), ({"batch_tasks": 0}, "batch_tasks")]
)
def test_evaluate_validation(kwargs, name):
    """Bad evaluation sizes are a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=rf"\b{name}="):
        evaluate(SGD(0.1), QuadraticProblem(dim=2), **{"n_tasks": 2, "steps": 2, **kwargs})


@pytest.mark.parametrize("criterion", ["final", "sum"])
def test_tune_learning_rate_picks_grid_best(criterion):
    """tune_learning_rate scores each lr on training tasks like an independent loop and picks the best."""
    problem = QuadraticProblem(dim=4)
    grid = [0.001, 0.01, 0.03, 1.0]
    tuned = tune_learning_rate("sgd", problem, grid=grid, n_tasks=4, steps=15, criterion=criterion)
    tasks = problem.tasks("train", range(4))
    expected = {}
    for lr in grid:
        ref = sgd_reference(tasks, lr, 15)
        score = float(ref[:, -1].mean() if criterion == "final" else ref[:, 1:].sum(1).mean())
        expected[lr] = score if math.isfinite(score) and score < 1e30 else math.inf
    assert set(tuned.scores) == set(grid)
    assert tuned.scores[1.0] > 1e6  # lr = 1 diverges
    for lr in grid[:3]:
        assert tuned.scores[lr] == pytest.approx(expected[lr], rel=1e-3)
    assert tuned.best_lr == min(expected, key=expected.__getitem__)
    assert tuned.best_lr in (0.01, 0.03) and tuned.name == "SGD" and tuned.criterion == criterion


def test_tune_learning_rate_steps_past_the_grid_edge():
    """A best rate at the end of the grid is extended by the grid's ratio until an interior best (or ``extend``)."""
    problem = QuadraticProblem(dim=4)
    low = tune_learning_rate("sgd", problem, grid=[1e-5, 1e-4], n_tasks=4, steps=15)  # far too small
    assert sorted(low.scores) == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2, 1e-1])  # stepped on by x10 ...
    assert low.best_lr == pytest.approx(1e-2) and low.scores[0.1] > low.scores[low.best_lr]  # ... to an interior best
    capped = tune_learning_rate("sgd", problem, grid=[1e-5, 1e-4], n_tasks=4, steps=15, extend=1)
    assert sorted(capped.scores) == pytest.approx([1e-5, 1e-4, 1e-3]) and capped.best_lr == pytest.approx(1e-3)
    none = tune_learning_rate("sgd", problem, grid=[1e-5, 1e-4], n_tasks=4, steps=15, extend=0)
    assert set(none.scores) == {1e-5, 1e-4}
    with pytest.raises(ValueError, match="extend"):
        tune_learning_rate("sgd", problem, grid=[0.1], extend=-1)


def test_tune_learning_rate_errors():
    """An unknown criterion, an empty grid or an unknown baseline is a ValueError."""
    problem = QuadraticProblem(dim=2)
    with pytest.raises(ValueError, match="criterion"):
        tune_learning_rate("sgd", problem, grid=[0.1], criterion="median")
    with pytest.raises(ValueError, match="grid is empty"):
        tune_learning_rate("sgd", problem, grid=[])
    with pytest.raises(ValueError, match="unknown"):
        tune_learning_rate("newton", problem, grid=[0.1], n_tasks=1, steps=1)
