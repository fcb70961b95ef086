"""The batched evaluator: a grid of learning rates, or several optimizers, as copies of one task batch give the
curves of running each alone (on every problem family), and the batched grid search takes the same steps."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import lively_net

import l2l_helpers as l2l
from l2l_helpers.evaluation.loops import RuleStack, evaluate, evaluate_grid, evaluate_rules, optimize
from l2l_helpers.evaluation.tuning import grid_search
from l2l_helpers.optimizer.baselines import BASELINES, make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import LearnedRule

#: A small member of every problem family, and rates at which every baseline is stable on it for STEPS steps (RMSprop
#: at 0.1 on the MLP takes steps of about 1 per coordinate from the first, where float rounding decides signs).
FAMILIES = {
    "quadratic": (lambda: l2l.QuadraticProblem(dim=5), (1e-3, 1e-2, 3e-2)),
    "mnist": (lambda: l2l.MNISTProblem(hidden=(6,), batch_size=16), (1e-3, 1e-2, 3e-2)),
    "neural_art": (lambda: l2l.NeuralArtProblem(size=16), (1e-3, 1e-2, 1e-1)),
}
STEPS = 12


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    make, rates = FAMILIES[request.param]
    return request.param, make(), rates


@pytest.mark.parametrize("name", list(BASELINES))
def test_a_grid_in_one_batch_equals_each_rate_alone(family, name):
    """evaluate_grid (theta (rates x tasks, dim), a column of rates) == evaluate at each rate, to float rounding."""
    label, problem, rates = family
    grid = evaluate_grid(name, problem, rates, n_tasks=3, steps=STEPS, split="train")
    assert list(grid) == list(rates)
    for lr in rates:
        alone = evaluate(make_baseline(name, lr), problem, 3, STEPS, "train")
        assert grid[lr].lr == lr and grid[lr].name == alone.name and torch.isfinite(alone.losses).all()
        torch.testing.assert_close(grid[lr].losses, alone.losses, rtol=1e-4, atol=1e-6, msg=f"{label} {name} {lr}")
    # the rates really differ: one batch is not the same curve repeated
    assert not torch.allclose(grid[rates[0]].losses[:, -1], grid[rates[-1]].losses[:, -1])


def test_optimizers_side_by_side_equal_each_alone(family):
    """evaluate_rules: a learned optimizer and baselines on copies of the same tasks == each evaluated alone."""
    label, problem, rates = family
    rules = {
        "LSTM": LearnedRule(lively_net(3)),
        "SGD": make_baseline("sgd", rates[1]),
        "Adam": make_baseline("adam", rates[0]),
    }
    together = evaluate_rules(rules, problem, n_tasks=2, steps=STEPS)
    assert list(together) == ["LSTM", "SGD", "Adam"]
    for name, rule in rules.items():
        alone = evaluate(rule, problem, 2, STEPS, name=name)
        torch.testing.assert_close(together[name].losses, alone.losses, rtol=1e-4, atol=1e-6, msg=f"{label} {name}")
        assert together[name].lr == alone.lr
    assert together["LSTM"].lr is None and together["SGD"].lr == rates[1]


class Functional:
    """A rule with ``step`` only: evaluation's loop cannot write its state in place."""

    def __init__(self, rule) -> None:
        self.rule, self.name = rule, rule.name

    def init_state(self, theta):
        return self.rule.init_state(theta)

    def step(self, grad, state):
        return self.rule.step(grad, state)


def test_evaluation_writes_the_lstm_state_in_place_with_the_same_losses(monkeypatch):
    """optimize() drops each old state, so a learned rule's ``step_`` may write the new one over it (the native step
    does): the losses are those of the functional ``step``, bit for bit, alone and side by side with a baseline."""
    from l2l_helpers import kernels

    calls = []
    real = kernels.native_step
    monkeypatch.setattr(kernels, "native_step", lambda *a, **k: calls.append(k.get("in_place")) or real(*a, **k))
    problem = l2l.MNISTProblem(hidden=(6,), batch_size=16)
    net = lively_net(3, hidden=20)  # paper-sized cells: the native step where this CPU has it
    tasks = problem.tasks("dev", range(2))
    alone = optimize(LearnedRule(net), tasks, STEPS)
    assert torch.equal(alone, optimize(Functional(LearnedRule(net)), tasks, STEPS)) and torch.isfinite(alone).all()
    adam = make_baseline("adam", 1e-2)
    side = optimize(RuleStack([LearnedRule(net), adam], 2), tasks, STEPS, copies=2)
    assert torch.equal(side, optimize(RuleStack([Functional(LearnedRule(net)), adam], 2), tasks, STEPS, copies=2))
    torch.testing.assert_close(side[:2], alone, rtol=1e-4, atol=1e-6)
    if kernels.native.load() is not None and kernels.backend_for(torch.zeros(1, 2), net.init_state(1)) == "native":
        assert True in calls and False in calls  # both paths really ran the native step


def test_a_column_of_rates_follows_each_rates_arithmetic_exactly():
    """Row k of a baseline with a column of rates is bit for bit the baseline with rate k (every baseline)."""
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(6, 7, generator=gen) * 10.0 ** (t % 3 - 1) for t in range(6)]
    rates = [1e-3, 0.05, 0.7]
    column = torch.tensor(rates, dtype=torch.float64).repeat_interleave(2).unsqueeze(1)  # rows 2 per rate
    for name in BASELINES:
        batched, state = make_baseline(name, column), None
        singles = [make_baseline(name, lr) for lr in rates]
        state = batched.init_state(grads[0])
        states = [rule.init_state(grads[0][2 * k : 2 * k + 2]) for k, rule in enumerate(singles)]
        for g in grads:
            update, state = batched.step(g, state)
            for k, rule in enumerate(singles):
                mine, states[k] = rule.step(g[2 * k : 2 * k + 2], states[k])
                assert torch.equal(update[2 * k : 2 * k + 2], mine), f"{name} rate {rates[k]}"


@pytest.mark.parametrize(
    "lr",
    [
        torch.ones(3),
        torch.ones(2, 2),
        torch.tensor([[0.1], [-1.0]]),
        torch.tensor([[math.inf]]),
        torch.ones(3, 1, dtype=torch.int64),
    ],
)
def test_bad_learning_rate_columns_are_refused(lr):
    with pytest.raises(ValueError, match=r"learning-rate tensor|every learning rate"):
        make_baseline("adam", lr)


def test_batched_inputs_are_checked():
    """Wrong theta shapes, empty or repeated grids and mismatched stacks get errors that say what is expected."""
    problem = l2l.QuadraticProblem(dim=3)
    tasks = problem.tasks("dev", range(2))
    for bad in (torch.zeros(3, 3), torch.zeros(4, 2), torch.zeros(4)):
        with pytest.raises(ValueError, match=r"expected \(copies \* 2, 3\)"):
            tasks.loss(bad)
    assert tasks.loss(torch.zeros(6, 3)).shape == (6,)
    with pytest.raises(ValueError, match="lrs is empty"):
        evaluate_grid("sgd", problem, [])
    with pytest.raises(ValueError, match="repeats"):
        evaluate_grid("sgd", problem, [0.1, 0.1])
    with pytest.raises(ValueError, match="rules is empty"):
        evaluate_rules({}, problem)
    stack = RuleStack([make_baseline("sgd", 0.1), make_baseline("adam", 0.1)], n_tasks=2)
    with pytest.raises(ValueError, match="2 x 2 rows"):
        stack.init_state(torch.zeros(6, 3))
    with pytest.raises(ValueError, match="copies"):
        optimize(make_baseline("sgd", 0.1), tasks, 2, copies=0)


def _sequential_reference(score, grid, extend):
    """The grid search as it stepped before batching: one rate at a time (a copy of the old loop)."""
    scores = {float(lr): score(lr) for lr in grid}
    for _ in range(extend if len(scores) > 1 else 0):
        rates, best = sorted(scores), min(scores, key=scores.__getitem__)
        if best == rates[-1]:
            beyond = best * rates[-1] / rates[-2]
        elif best == rates[0] and math.isfinite(scores[best]):
            beyond = best * rates[0] / rates[1]
        else:
            break
        beyond = float(f"{beyond:.10g}")
        scores[beyond] = score(beyond)
    return scores


@pytest.mark.parametrize(
    "shape",
    [
        lambda lr: (math.log10(lr) + 1) ** 2,  # best 0.1: interior
        lambda lr: -math.log10(lr),  # best at the top, forever
        lambda lr: math.log10(lr),  # best at the bottom, forever
        lambda lr: (math.log10(lr) - 1.7) ** 2,  # past the top edge, then interior
        lambda lr: (math.log10(lr) + 5.2) ** 2,  # past the bottom edge, then interior
        lambda lr: math.inf,  # everything diverges
        lambda lr: math.inf if lr > 0.02 else -math.log10(lr),  # best just below a cliff
    ],
)
@pytest.mark.parametrize("extend", [0, 1, 4])
def test_the_batched_grid_search_takes_the_same_steps(shape, extend):
    """batched=True scores the grid in one call and the steps past an edge in one more; the rates tried and their
    scores are those of stepping one rate at a time."""
    grid = [1e-3, 1e-2, 1e-1, 1.0]
    calls = []

    def batch(lrs):
        calls.append(list(lrs))
        return [shape(lr) for lr in lrs]

    got = grid_search(batch, grid, extend, batched=True)
    want = _sequential_reference(shape, grid, extend)
    assert got == want and list(got) == list(want)
    assert calls[0] == grid and len(calls) <= 2
    assert grid_search(shape, grid, extend) == want  # the one-rate-at-a-time path agrees
    calls.clear()
    assert grid_search(batch, grid, extend, batched=True, lookahead=1) == want  # one rate past the edge per call
    assert calls[0] == grid and all(len(c) == 1 for c in calls[1:])
    assert sum(map(len, calls)) == len(want)  # no rate scored that the search did not take


def test_lookahead_must_be_a_positive_integer():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="lookahead"):
            grid_search(lambda lrs: [0.0] * len(lrs), [0.1, 1.0], batched=True, lookahead=bad)


def test_a_batched_score_must_answer_every_rate():
    with pytest.raises(ValueError, match="returned 1 values for 2"):
        grid_search(lambda lrs: [0.0], [0.1, 1.0], batched=True)


def test_tuning_is_batched_and_agrees_with_rate_by_rate_tuning():
    """tune_learning_rate (one batch per grid) picks the rate a one-at-a-time search over evaluate picks."""
    problem = l2l.MNISTProblem(hidden=(6,), batch_size=16)
    grid = [1e-3, 1e-2, 1e-1, 1.0]
    tuned = l2l.tune_learning_rate("nag", problem, grid=grid, n_tasks=2, steps=15)
    alone = grid_search(lambda lr: evaluate(make_baseline("nag", lr), problem, 2, 15, "train").mean_final, grid)
    assert list(tuned.scores) == list(alone)
    for lr, score in alone.items():
        assert tuned.scores[lr] == pytest.approx(score, rel=1e-3)
    assert tuned.best_lr == min(alone, key=alone.__getitem__)


def test_tuning_at_several_horizons_equals_tuning_at_each():
    """tune_at_horizons runs every rate once to the longest horizon; each horizon's scores and best rate are those
    of tuning at that horizon alone, and each steps past the grid's edge on its own."""
    problem = l2l.QuadraticProblem(dim=4)
    grid = [1e-3, 3e-3, 1e-2]  # the best rate is past the top edge, further at short horizons
    both = l2l.tune_at_horizons("sgd", problem, (5, 40), grid=grid, n_tasks=3)
    for horizon in (5, 40):
        alone = l2l.tune_learning_rate("sgd", problem, grid=grid, n_tasks=3, steps=horizon)
        assert list(both[horizon].scores) == list(alone.scores) and both[horizon].best_lr == alone.best_lr
        for lr, score in alone.scores.items():
            assert both[horizon].scores[lr] == pytest.approx(score, rel=1e-5)
    assert len(both[5].scores) > len(grid)  # stepped past the edge
    tuned = l2l.tune_baselines_at(problem, (5, 40), ("SGD", "Adam"), grid, n_tasks=3, progress=False)
    assert list(tuned) == [5, 40] and list(tuned[40]) == ["SGD", "Adam"]
    assert tuned[40]["SGD"].best_lr == both[40].best_lr
    with pytest.raises(ValueError, match="horizons is empty"):
        l2l.tune_at_horizons("sgd", problem, ())
    with pytest.raises(ValueError, match="horizon=0"):
        l2l.tune_at_horizons("sgd", problem, (0, 5))


def test_a_bound_on_rows_per_pass_changes_nothing_but_the_passes(monkeypatch):
    """A problem's rows_per_pass splits grids and side-by-side runs into several passes: same curves."""
    problem = l2l.NeuralArtProblem(size=16)
    rates = [1e-2, 1e-1, 1.0]
    rules = {"SGD": make_baseline("sgd", 0.1), "Adam": make_baseline("adam", 0.01)}
    whole = evaluate_grid("adam", problem, rates, n_tasks=2, steps=5), evaluate_rules(rules, problem, 3, 5)
    calls = []
    real = optimize

    def counted(*args, **kwargs):
        calls.append(kwargs.get("copies", 1))
        return real(*args, **kwargs)

    monkeypatch.setattr("l2l_helpers.evaluation.loops.optimize", counted)
    monkeypatch.setattr(problem, "rows_per_pass", 2)
    split = evaluate_grid("adam", problem, rates, n_tasks=2, steps=5), evaluate_rules(rules, problem, 3, 5)
    assert calls == [1, 1, 1, 2, 2, 2]  # a rate per pass; a task (both rules) per pass
    for a, b in zip(whole, split, strict=True):
        for key in a:
            torch.testing.assert_close(a[key].losses, b[key].losses, rtol=1e-5, atol=1e-7)


def test_a_run_reuses_a_tuning_it_already_did(tmp_path, monkeypatch):
    """Under make run (a run cache is set) notebook 08 reads notebook 06's tuning of the same baseline, problem,
    grid and tasks; a different problem or grid tunes anew; outside a run nothing is kept."""
    from l2l_helpers.evaluation import tuning as evaluation

    problem = l2l.MNISTProblem(hidden=(6,), batch_size=16)
    grid = [1e-2, 1e-1, 1.0]
    outside = l2l.tune_baselines_at(problem, (5, 10), ("Adam",), grid, n_tasks=2, progress=False)
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv("L2L_RETRAIN_DIR", str(tmp_path))
    first = l2l.tune_baselines_at(problem, (5, 10), ("Adam",), grid, n_tasks=2, progress=False)
    assert len(list((tmp_path / "tuning").iterdir())) == 2  # one file per horizon
    for h in (5, 10):
        assert first[h]["Adam"].scores == pytest.approx(outside[h]["Adam"].scores, rel=1e-5)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("the tuning should have been read, not run")

    monkeypatch.setattr(evaluation, "evaluate_grid", no_evaluation)
    again = l2l.tune_baselines(problem, ("Adam",), grid, n_tasks=2, steps=10, progress=False)
    assert again["Adam"] == first[10]["Adam"]
    for other, other_grid in (
        (l2l.MNISTProblem(hidden=(6,), batch_size=16, activation="relu"), grid),
        (problem, grid[:2]),
    ):
        with pytest.raises(AssertionError, match="should have been read"):
            l2l.tune_baselines(other, ("Adam",), other_grid, n_tasks=2, steps=10, progress=False)
