"""Notebooks 07 and 08's helpers: the panels' baselines, the networks table, what the optimizer reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_optimizees import synthetic_data

import l2l_helpers as l2l
from l2l_helpers.optimizees import MNISTProblem


class Frozen:
    """An update rule that never moves theta: every gradient it is given is taken at theta_0."""

    name = "frozen"

    def init_state(self, theta: torch.Tensor) -> None:
        return None

    def step(self, grad: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
        return torch.zeros_like(grad), None


def tiny_problem(activation: str = "sigmoid", hidden: tuple[int, ...] = (4,)) -> MNISTProblem:
    return MNISTProblem(hidden=hidden, activation=activation, batch_size=8, data=synthetic_data())


def curves(finals: list[float], steps: int = 3) -> np.ndarray:
    """Loss curves (tasks, steps + 1) from 1 down to each task's final loss."""
    return np.array([np.linspace(1.0, f, steps + 1) for f in finals])


def test_lstm_vs_baselines_runs_nag_and_adam_on_the_same_tasks():
    """The panels' function: LSTM, NAG and Adam (each at its rate of the grid) on the same held-out networks."""
    net = l2l.CoordinatewiseLSTM()
    results = l2l.lstm_vs_baselines(net, (5,), "relu", n_tasks=2, steps=3, grid=(0.01,))
    assert list(results) == ["LSTM", "NAG", "Adam"]
    assert results["NAG"].lr == results["Adam"].lr == 0.01
    assert all(r.losses.shape == (2, 4) for r in results.values())
    start = results["LSTM"].losses[:, 0]
    assert all(torch.equal(r.losses[:, 0], start) for r in results.values()), "the same initial networks"
    alone = l2l.evaluate(l2l.make_baseline("nag", 0.01), MNISTProblem(hidden=(5,), activation="relu"), 2, 3)
    torch.testing.assert_close(results["NAG"].losses, alone.losses)
    assert list(l2l.lstm_vs_baselines(net, (5,), "relu", n_tasks=2, steps=3, grid=(0.01,), baselines=("Adam",))) == [
        "LSTM",
        "Adam",
    ]


def test_optimizer_inputs_along_a_frozen_rule_are_the_gradients_at_theta_0():
    """A rule that never moves: the gradients sampled at step t are those at theta_0 on step t's minibatch."""
    problem = tiny_problem()
    inputs = l2l.optimizer_inputs(
        l2l.CoordinatewiseLSTM(), problem, n_tasks=2, steps=5, every=2, max_per_step=10**6, rule=Frozen()
    )
    tasks = problem.tasks("dev", range(2))
    theta = tasks.init_theta().requires_grad_(True)
    assert sorted(set(inputs["step"].tolist())) == [0, 2, 4]
    for t in (0, 2, 4):
        (grad,) = torch.autograd.grad(tasks.loss(theta, t).sum(), theta)
        sampled = np.sort(inputs["grad"][inputs["step"] == t])
        assert sampled.size == grad.numel(), "every coordinate of both tasks"
        np.testing.assert_allclose(sampled, np.sort(grad.double().reshape(-1).numpy()), rtol=1e-6, atol=0)


def test_optimizer_inputs_along_adam_differ_from_the_lstm_path_after_step_0():
    """The same coordinates are sampled whatever the rule: equal at theta_0, different once the paths part."""
    net, problem = l2l.CoordinatewiseLSTM(output_scale=0.1), tiny_problem()
    kwargs = {"n_tasks": 2, "steps": 4, "every": 2, "max_per_step": 200}
    own = l2l.optimizer_inputs(net, problem, **kwargs)
    adam = l2l.optimizer_inputs(net, problem, **kwargs, rule=l2l.make_baseline("adam", 0.1))
    first = own["step"] == 0
    np.testing.assert_array_equal(own["step"], adam["step"])
    np.testing.assert_array_equal(own["grad"][first], adam["grad"][first])
    assert not np.allclose(own["grad"][~first], adam["grad"][~first])
    assert net.training, "the network's mode is given back"


def test_input_shift_measures_every_network_and_the_floor_for_every_rule():
    """KS of the log channel against the reference networks, per rule; the floor from a second reference sample."""
    problems = {"sigmoid": tiny_problem(), "relu": tiny_problem("relu"), "wide": tiny_problem(hidden=(6,))}
    rules = {"LSTM": None, "Adam": l2l.make_baseline("adam", 0.01)}
    shift = l2l.input_shift(
        l2l.CoordinatewiseLSTM(), problems, "sigmoid", rules, n_tasks=2, steps=4, every=2, max_per_step=100
    )
    floor = l2l.FLOOR
    assert list(shift.ks) == [floor, "relu", "wide"] and all(list(v) == ["LSTM", "Adam"] for v in shift.ks.values())
    assert set(shift.samples["Adam"]) == {"sigmoid", "relu", "wide", floor}
    adam = shift.samples["Adam"]
    assert shift.ks["relu"]["Adam"] == l2l.ks_distance(adam["sigmoid"]["log_channel"], adam["relu"]["log_channel"])
    assert not np.array_equal(adam[floor]["grad"], adam["sigmoid"]["grad"]), "the floor is another sample"
    table = shift.markdown({"Adam": "along tuned Adam"})
    assert "| along tuned Adam |" in table.splitlines()[0] and "(same distribution: the floor)" in table
    with pytest.raises(ValueError, match="reference"):
        l2l.input_shift(l2l.CoordinatewiseLSTM(), problems, "tanh", rules)


def test_ks_distance_agrees_with_scipy():
    """The two-sample KS statistic of scipy, ties and unequal sizes included."""
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300).round(1), rng.normal(0.3, 1.2, size=170).round(1)
    assert l2l.ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_networks_table_and_best_baseline():
    """One row per network; the lowest final loss in bold; the ratio to the best baseline on each metric."""
    results = {
        "base": l2l.as_eval_results(
            {"LSTM": curves([0.2, 0.3]), "NAG": curves([0.4, 0.5]), "Adam": curves([0.3, 0.4])}
        ),
        "wide": l2l.as_eval_results({"LSTM": curves([0.5, 0.6]), "NAG": curves([0.1, 0.2])}),
    }
    best = l2l.versus_best_baseline(results["base"])
    median = math.exp((math.log(0.2 / 0.3) + math.log(0.3 / 0.4)) / 2)  # the median of the two networks' ratios
    assert (best.a, best.b) == ("LSTM", "Adam") and best.ratio == pytest.approx(median)
    lines = l2l.networks_markdown(results).splitlines()
    assert lines[0].startswith("| network | LSTM | NAG | Adam |") and len(lines) == 4
    assert "| **0.25** |" in lines[2] and "vs Adam" in lines[2]
    assert lines[3].startswith("| wide | 0.55 | **0.15** |  |") and "vs NAG" in lines[3]
    with pytest.raises(ValueError, match="baseline"):
        l2l.versus_best_baseline({"LSTM": results["base"]["LSTM"]})


def test_networks_table_with_several_seeds():
    """Seeds are columns of their own and never a baseline; each gets its ratio to the best baseline, in order."""
    res = l2l.as_eval_results(
        {"LSTM s0": curves([0.1, 0.1]), "LSTM s1": curves([0.6, 0.6]), "NAG": curves([0.2, 0.2]), "SGD": curves([1, 1])}
    )
    seeds = ["LSTM s0", "LSTM s1"]
    lines = l2l.networks_markdown({"base": res}, seeds).splitlines()
    assert lines[0].startswith("| network | LSTM s0 | LSTM s1 | NAG | SGD | LSTM / best baseline, final loss (LSTM s0")
    assert "| 0.5 [0, inf]; 3 [0, inf] vs NAG |" in lines[2]  # 2 networks: no interval; s1 is not a baseline
    assert l2l.versus_best_baseline(res, "LSTM s1", skip=seeds).b == "NAG"
    assert l2l.versus_best_baseline(res, "LSTM s1").b == "LSTM s0"  # without skip, s0 would count
    assert "LSTM" not in l2l.best_baselines_markdown({"100 steps": res}, seeds)
    runs = l2l.by_seed(res, seeds, "LSTM")
    row = l2l.rules.beats_baselines(runs)
    assert row["seeds"] == 2 and row["verdict"] == "too few tasks"  # 2 networks: below the smallest n that decides


def test_statistics_table_and_medians_by_step():
    """One row per sample with input_statistics' numbers; the median log10 |g| of the non-zero ones per step."""
    inputs = {"grad": np.array([0.0, 1e-6, 0.1, 1.0, 1e-2, 1e-4]), "step": np.array([0, 0, 0, 0, 5, 5])}
    lines = l2l.statistics_markdown({"sigmoid": inputs}, p=10.0).splitlines()
    assert len(lines) == 3 and lines[2] == "| sigmoid | 16.7% | 33.3% | -2.00 | -0.40 |"
    medians = l2l.median_log10_by_step(inputs)
    assert list(medians) == [0, 5]
    assert medians[0] == pytest.approx(-1.0) and medians[5] == pytest.approx(-3.0)


def test_best_baselines_markdown_names_the_lowest_baseline_per_setting():
    """The sentence above 06's and 07's claims: per setting the baseline with the lowest mean final loss,
    its learning rate and the runner-up; the learned optimizer never counts; an unrankable input is refused."""
    at_100 = l2l.as_eval_results(
        {"LSTM": curves([0.01, 0.01]), "NAG": curves([0.2, 0.1]), "Adam": curves([0.3, 0.2]), "SGD": curves([1, 1])},
        {"NAG": 1.0, "Adam": 0.03},
    )
    at_200 = l2l.as_eval_results({"LSTM": curves([0.1, 0.1]), "Adam": curves([0.05, 0.07]), "NAG": curves([np.nan, 1])})
    text = l2l.best_baselines_markdown({"100 steps": at_100, "200 steps": at_200})
    assert "100 steps: **NAG** (lr 1, mean final loss 0.15; next Adam, 0.25)" in text
    assert "200 steps: **Adam** (mean final loss 0.06; next NAG, nan)" in text
    assert "LSTM" not in text
    with pytest.raises(ValueError, match="no baseline"):
        l2l.best_baselines_markdown({"x": {"LSTM": at_100["LSTM"]}})
    with pytest.raises(ValueError, match="empty"):
        l2l.best_baselines_markdown({})
