"""Notebook 06's written-out MNIST optimizee and held-out protocol against the package (paper, Section 3.2).

The cell marked ``# mlp_loss_by_hand`` writes the optimizee's loss: a 784-20-10 sigmoid MLP read from a flat theta,
cross-entropy on one minibatch. The cell marked ``# held_out_by_hand`` rebuilds a held-out network from its task's
seed (theta_0, then one minibatch of image indices per step) and runs any optimizer on it with a plain loop: every
optimizer evaluated on task i gets the same start and the same minibatches. These tests run both cells as the notebook
does, on a small case, and their functions on fresh inputs, against :class:`l2l.MNISTProblem`'s tasks, the
``nn.Sequential`` twin :func:`l2l.mlp_model` and :func:`l2l.evaluate_rules`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import cell_functions, teaching_cell

import l2l_helpers as l2l

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_mnist.ipynb"


def by_hand() -> dict[str, Callable]:
    """The functions both cells define, and nothing else of the cells, exec'd in one namespace with only torch."""
    namespace: dict = {"torch": torch, "math": math}
    return cell_functions(NOTEBOOK, "# mlp_loss_by_hand", namespace) | cell_functions(
        NOTEBOOK, "# held_out_by_hand", namespace
    )


@pytest.fixture(scope="module")
def problem() -> l2l.MNISTProblem:
    """The paper's MNIST optimizee (offline: the shipped sample)."""
    return l2l.MNISTProblem()


def random_theta(rows: int, dim: int, scale: float, seed: int) -> torch.Tensor:
    """Points away from theta_0 (where every network's loss is near log 10, whatever the layout)."""
    return scale * torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed))


def test_the_notebook_cells_run_and_agree_with_the_package(problem):
    """Both cells as the notebook runs them: a shipped optimizer and tuned Adam on 2 held-out dev networks, 12 steps."""
    device = torch.device("cpu")
    learned = {"LSTM s0": l2l.load_pretrained("mnist", device)}  # the notebook's seed 0
    tuned_at = l2l.tune_baselines_at(problem, (12,), names=("Adam",), grid=[0.01, 0.1], n_tasks=2, progress=False)
    results = l2l.held_out_comparisons_at(problem, learned, tuned_at, 2, device, progress=False, split="dev")[12]
    namespace = {"torch": torch, "math": math, "l2l": l2l, "problem": problem, "data": problem.data, "SEED": 0}
    namespace |= {"device": device, "SPLIT": "dev", "STEPS": 12, "learned": learned, "tuned": tuned_at[12]}
    namespace["results"] = results
    exec(compile(teaching_cell(NOTEBOOK, "# mlp_loss_by_hand"), str(NOTEBOOK), "exec"), namespace)
    assert namespace["same"] is True
    assert (namespace["package"] - math.log(10)).abs().min() > 0.05  # a point where the layout matters
    exec(
        compile(teaching_cell(NOTEBOOK, "# held_out_by_hand"), str(NOTEBOOK), "exec"), namespace
    )  # its l2l.check decides
    assert namespace["same_draws"] is True and namespace["gap"] < 1e-4


@pytest.mark.parametrize(("split", "step", "scale"), [("train", 0, 0.1), ("dev", 7, 0.3), ("val", 2, 1.0)])
def test_written_out_loss_is_the_package_loss(problem, split, step, scale):
    """mlp_loss on each network's minibatch of step ``step`` is the package's f and its gradient (float64)."""
    mlp_loss = by_hand()["mlp_loss"]
    tasks = problem.tasks(split, [0, 9, 40])
    theta = random_theta(3, problem.dim, scale, seed=step).double().requires_grad_(True)
    idx = tasks.batch_indices(step)
    images, labels = tasks.images.double(), tasks.labels
    mine = torch.stack([mlp_loss(theta[i], images[idx[i]], labels[idx[i]]) for i in range(3)])
    tasks.images = images  # the package's forward in float64 too
    theirs = tasks.loss(theta, step)
    torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)
    mine_grad, their_grad = (torch.autograd.grad(f.sum(), theta)[0] for f in (mine, theirs))
    torch.testing.assert_close(mine_grad, their_grad, rtol=1e-10, atol=1e-12)


def test_written_out_loss_is_the_sequential_twin_with_torch_cross_entropy(problem):
    """Oracle: the same weights in ``nn.Sequential(Linear, Sigmoid, Linear)`` (nn.Linear stores (out, in)) with
    ``F.cross_entropy`` give the same loss; reading the weight as (out, in) instead would not."""
    mlp_loss = by_hand()["mlp_loss"]
    theta = random_theta(1, problem.dim, 0.2, seed=3)[0]
    gen = torch.Generator().manual_seed(4)
    rows = torch.randint(0, len(problem.data.train_labels), (128,), generator=gen)
    images, labels = problem.data.train_images[rows], problem.data.train_labels[rows]
    model = l2l.mlp_model()
    w1, b1, w2, b2 = theta.split([784 * 20, 20, 200, 10])
    with torch.no_grad():
        model[0].weight.copy_(w1.view(784, 20).T)
        model[0].bias.copy_(b1)
        model[2].weight.copy_(w2.view(20, 10).T)
        model[2].bias.copy_(b2)
    oracle = F.cross_entropy(model(images), labels)
    torch.testing.assert_close(mlp_loss(theta, images, labels), oracle, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        model[0].weight.copy_(w1.view(20, 784))  # a wrong layout: (out, in) row by row
    assert (F.cross_entropy(model(images), labels) - oracle).abs() > 1e-3


@pytest.mark.parametrize("split", ["train", "dev"])
def test_a_network_from_its_seed_is_the_package_task(problem, split):
    """From a task's seed: the package's theta_0 and every step's minibatch indices, exactly, in any access order."""
    held_out_network = by_hand()["held_out_network"]
    tasks = problem.tasks(split, [0, 1, 17])
    n_images = len(tasks.labels)
    assert n_images == len(problem.data.test_labels if split == "dev" else problem.data.train_labels)
    for i, seed in enumerate(tasks.seeds):
        theta0, batches = held_out_network(seed, n_images, 9)
        assert torch.equal(theta0, tasks.init_theta()[i])
        assert len(batches) == 10
        for t in reversed(range(10)):
            assert torch.equal(batches[t], tasks.batch_indices(t)[i])
    one_draw = torch.randn(problem.dim, generator=torch.Generator().manual_seed(tasks.seeds[0])) * 0.01
    assert not torch.equal(one_draw, tasks.init_theta()[0])  # the per-layer draws matter: one randn would differ


def test_two_optimizers_on_the_same_task_see_the_same_start_and_minibatches(problem):
    """What the package does, observed: two optimizers evaluated on the same task indices, each in its own
    evaluate_rules call, start from the same theta_0 (recorded where each sets up its state): the written-out one;
    and those tasks' minibatches are the written-out ones."""
    held_out_network = by_hand()["held_out_network"]
    seen: dict[str, list] = {}

    class Recorder:
        """An update rule that records its first theta and wraps a baseline."""

        def __init__(self, rule, name: str) -> None:
            self.rule, self.name = rule, name

        def init_state(self, theta):
            seen[self.name] = [theta.clone()]
            return self.rule.init_state(theta)

        def step(self, grad, state):
            return self.rule.step(grad, state)

    for name, rule in {"SGD": l2l.SGD(0.1), "Adam": l2l.Adam(0.01)}.items():
        l2l.evaluate_rules({name: Recorder(rule, name)}, problem, 3, 4, "dev")
    assert torch.equal(seen["SGD"][0], seen["Adam"][0])
    tasks = problem.tasks("dev", range(3))
    for i, seed in enumerate(tasks.seeds):
        theta0, batches = held_out_network(seed, len(tasks.labels), 4)
        assert torch.equal(seen["SGD"][0][i], theta0)
        assert all(torch.equal(b, tasks.batch_indices(t)[i]) for t, b in enumerate(batches))


@pytest.mark.parametrize("name", ["SGD", "NAG", "Adam"])
def test_written_out_protocol_gives_evaluate_rules_curves(problem, name):
    """Each baseline run by hand on held-out networks rebuilt from their seeds gives the curves evaluate_rules gives
    it, run side by side with another optimizer as a copy of the same tasks; the next task's draws would not."""
    f = by_hand()
    lr = {"SGD": 0.5, "NAG": 0.1, "Adam": 0.01}[name]
    rules = {name: l2l.make_baseline(name, lr), "other": l2l.SGD(0.05)}
    results = l2l.evaluate_rules(rules, problem, 3, 10, "dev", first_index=5)
    tasks = problem.tasks("dev", range(5, 8))
    images, labels = problem.data.test_images, problem.data.test_labels
    for i, seed in enumerate(tasks.seeds):
        theta0, batches = f["held_out_network"](seed, len(labels), 10)
        curve = f["run_by_hand"](l2l.make_baseline(name, lr), theta0, batches, images, labels)
        torch.testing.assert_close(curve, results[name].losses[i], rtol=1e-4, atol=1e-5)
    assert (results[name].losses[:, -1] - results[name].losses[:, 0]).abs().min() > 1e-3  # they really trained
    theta0, batches = f["held_out_network"](tasks.seeds[0] + 1, len(labels), 10)  # the next task's draws instead
    curve = f["run_by_hand"](l2l.make_baseline(name, lr), theta0, batches, images, labels)
    assert (curve - results[name].losses[0]).abs().max() > 1e-3
