"""Notebook 04's written-out meta-step against the package's unroll, and what second derivatives change.

The notebook's cell marked ``# meta_step_by_hand`` writes one truncated-BPTT meta-step in plain PyTorch
(gradients of f detached, the weighted losses summed on the graph, one backward pass). The package gets the
same meta-gradient from a surrogate (:func:`l2l_helpers.meta.meta_training.unroll`); these tests run the cell as the
notebook does and its function on fresh cases, in float64, mid-trajectory.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.meta.meta_training import unroll

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_meta_training.ipynb"
MARKER = "# meta_step_by_hand"


def teaching_cell() -> str:
    """The source of the notebook's cell that writes the meta-step out."""
    cells = [c.source for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]
    found = [s for s in cells if s.startswith(MARKER)]
    assert len(found) == 1, f"{NOTEBOOK.name} needs exactly one code cell starting with {MARKER!r}"
    return found[0]


def meta_step_by_hand():
    """The function the cell defines, and nothing else of the cell."""
    tree = ast.parse(teaching_cell())
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "meta_step_by_hand"]
    assert len(defs) == 1
    namespace = {"torch": torch}
    exec(compile(ast.Module(body=defs, type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return namespace["meta_step_by_hand"]


def double_case(preprocessing: str, num_layers: int, n_tasks: int = 3, seed: int = 1):
    """A float64 net with a lively output layer and float64 quadratics."""
    torch.manual_seed(seed)
    cfg = l2l.OptimizerConfig(num_layers=num_layers, hidden_size=4, preprocessing=preprocessing, output_scale=0.1)
    net = l2l.CoordinatewiseLSTM(cfg).double()
    with torch.no_grad():
        net.output.weight.normal_()
        net.output.bias.normal_(0, 0.1)
    tasks = l2l.QuadraticProblem(dim=3).tasks("train", range(n_tasks))
    tasks.W, tasks.y, tasks._theta0 = tasks.W.double(), tasks.y.double(), tasks._theta0.double()
    return net, tasks


def package_gradient(net, tasks, theta, state, start, length, weights, second_order=False):
    """The package's meta-gradient of one unroll (what meta_train steps phi with), and its theta and state."""
    loss, theta_out, state_out, _ = unroll(net, tasks, theta, state, start, length, weights, second_order)
    return torch.autograd.grad(loss, list(net.parameters())), theta_out, state_out


def flat(grads) -> torch.Tensor:
    return torch.cat([g.reshape(-1) for g in grads])


def test_the_notebook_cell_runs_and_agrees_with_the_package():
    """The cell as the notebook runs it (its own check included), with the notebook's defaults."""
    namespace = {"torch": torch, "l2l": l2l, "SEED": 0, "UNROLL": 20, "device": torch.device("cpu")}
    exec(compile(teaching_cell(), str(NOTEBOOK), "exec"), namespace)
    assert namespace["same"] is True
    assert flat(namespace["package"]).norm() > 0  # a real gradient, not two zeros agreeing


@pytest.mark.parametrize("preprocessing", ["none", "log_sign"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("weighting", ["ones", "linear", "final"])
def test_written_out_step_gives_the_package_meta_gradient(preprocessing, num_layers, weighting):
    """Mid-trajectory (theta and h carried from a first unroll), any w_t: the same meta-gradient, theta and h."""
    by_hand = meta_step_by_hand()
    net, tasks = double_case(preprocessing, num_layers)
    length = 4
    weights = l2l.MetaTrainConfig(steps=2 * length, unroll=length, weights=weighting).step_weights()
    theta0 = tasks.init_theta()
    state0 = net.init_state(theta0.numel())
    _, theta, state, _ = unroll(net, tasks, theta0, state0, 0, length, weights)  # still on the graph back to phi
    _, my_theta, my_state = by_hand(net, tasks, theta0, state0, 0, weights[:length])
    torch.testing.assert_close(my_theta, theta.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(my_state, state.detach(), rtol=1e-12, atol=1e-12)
    assert theta.requires_grad and state.requires_grad and state.abs().sum() > 0  # a real carry-over
    mine, my_theta, my_state = by_hand(net, tasks, theta, state, length, weights[length:])  # cuts the history itself
    theirs, their_theta, their_state = package_gradient(net, tasks, theta, state.detach(), length, length, weights)
    assert flat(theirs).norm() > 1e-3
    torch.testing.assert_close(flat(mine), flat(theirs), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(my_theta, their_theta.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(my_state, their_state.detach(), rtol=1e-12, atol=1e-12)


def test_written_out_step_reads_the_minibatch_of_each_step():
    """On MNIST (a new minibatch every step) the step index reaches f as in the package: same meta-gradient."""
    by_hand = meta_step_by_hand()
    torch.manual_seed(0)
    net = l2l.CoordinatewiseLSTM()
    tasks = l2l.MNISTProblem().tasks("train", range(2))
    theta = tasks.init_theta()
    state = net.init_state(theta.numel())
    weights = [1.0] * 6
    mine, _, _ = by_hand(net, tasks, theta, state, 3, weights[3:])
    theirs, _, _ = package_gradient(net, tasks, theta, state, 3, 3, weights)
    assert flat(theirs).norm() > 0
    torch.testing.assert_close(flat(mine), flat(theirs), rtol=1e-4, atol=1e-6)


def test_first_and_second_order_meta_gradients_differ_but_are_finite():
    """Keeping f's second derivatives changes the meta-gradient of the same unroll; both are finite."""
    net, tasks = double_case("log_sign", 2, n_tasks=4)
    theta = tasks.init_theta()
    state = net.init_state(theta.numel())
    weights = [1.0] * 6
    first, _, _ = package_gradient(net, tasks, theta, state, 0, 6, weights, second_order=False)
    second, _, _ = package_gradient(net, tasks, theta, state, 0, 6, weights, second_order=True)
    first, second = flat(first), flat(second)
    assert torch.isfinite(first).all() and torch.isfinite(second).all()
    assert second.norm() > 1e-3
    assert (first - second).norm() > 1e-4 * second.norm()
