"""Notebook 10's written-out convnet and two-LSTM routing (paper, Section 3.3) against the package.

The cell marked ``# convnet_by_hand`` writes the convnet optimizee out in plain PyTorch: a flat theta cut into the
layers' tensors, convolutions each followed by batch normalization (minibatch statistics), ReLU and 2x2 max pooling,
then the fully connected layer, and the cross-entropy of one minibatch. The cell marked ``# routing_by_hand`` sends
the coordinates of the convolutional layers to one LSTM and those of the fully connected layers to the other. These
tests run both cells as the notebook does, and their functions on fresh networks, minibatches, gradients and states:
the loss equals the package's ``ConvProblem`` tasks' (float rounding) and ``nn.Sequential``'s twin's, the routing is
``problem.groups()``'s, and the update and state equal ``GroupedLSTM``'s.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import helpers
import pytest
import torch
import torch.nn.functional as F

import l2l_helpers as l2l

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "10_convnets.ipynb"
NET_MARKER, ROUTE_MARKER = "# convnet_by_hand", "# routing_by_hand"

#: Architectures to check: the paper's (Section 3.3) and a small one on 3-channel 16x16 images with fewer layers.
ARCHS = {
    "paper": {"in_channels": 1, "size": 28, "arch": {}},
    "small": {"in_channels": 3, "size": 16, "arch": {"channels": 4, "kernel": 3, "conv_layers": 2, "hidden": 8}},
}


def cell_functions(marker: str) -> dict[str, Callable]:
    """The functions the cell defines, and nothing else of the cell, exec'd with only torch and F."""
    return helpers.cell_functions(NOTEBOOK, marker, {"torch": torch, "F": F})


def synthetic(n: int = 96, size: int = 28, channels: int = 1, classes: int = 10, seed: int = 0) -> l2l.ImageData:
    """Random images with cycling labels, train and held-out sets."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, channels, size, size, generator=gen)
    labels = torch.arange(n) % classes
    names = tuple(map(str, range(classes)))
    return l2l.ImageData(images, labels, images.flip(0), labels.flip(0), "synthetic", "synthetic", names)


def make_problem(name: str, labels: list[int] | None = None, batch_size: int = 16) -> l2l.ConvProblem:
    spec = ARCHS[name]
    data = synthetic(size=spec["size"], channels=spec["in_channels"])
    return l2l.ConvProblem(data, labels=labels, batch_size=batch_size, **spec["arch"])


def shapes_of(problem: l2l.ConvProblem) -> list[tuple[int, ...]]:
    """The cell's layout of theta for this problem."""
    return cell_functions(NET_MARKER)["convnet_shapes"](*problem.shape, len(problem.labels), **problem.arch)


def lively_grouped_net(seed: int, hidden: int = 6) -> l2l.GroupedLSTM:
    """Two LSTMs with different, non-trivial output layers, so a coordinate sent to the wrong one moves elsewhere."""
    torch.manual_seed(seed)
    config = l2l.GroupedConfig.same(l2l.OptimizerConfig(num_layers=2, hidden_size=hidden, output_scale=0.1), l2l.GROUPS)
    net = l2l.GroupedLSTM(config)
    with torch.no_grad():
        for lstm in net.nets.values():
            lstm.output.weight.normal_()
            lstm.output.bias.normal_(0, 0.1)
    return net


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize("labels", [None, [7, 2, 5]])
def test_the_layout_is_the_sequential_twins(name, labels):
    """theta's tensors in the cell's order are those of nn.Sequential's parameters(): shapes and total size."""
    problem = make_problem(name, labels)
    shapes = shapes_of(problem)
    assert shapes == [tuple(p.shape) for p in problem.model().parameters()]
    assert sum(torch.Size(s).numel() for s in shapes) == problem.dim


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize("labels", [None, [7, 2, 5]])
def test_written_out_loss_is_the_package_loss_in_float64(name, labels):
    """Each task's loss and its gradient on several steps' minibatches equal ConvTasks.loss (float64: to rounding)."""
    problem = make_problem(name, labels)
    shapes, loss_by_hand = shapes_of(problem), cell_functions(NET_MARKER)["convnet_loss_by_hand"]
    tasks = problem.tasks("train", range(3))
    tasks.images = tasks.images.double()
    gen = torch.Generator().manual_seed(1)
    theta = tasks.init_theta().double()
    theta = (theta + 0.1 * torch.randn(theta.shape, generator=gen, dtype=theta.dtype)).requires_grad_(True)
    for step in (0, 2):
        package = tasks.loss(theta, step)  # (3,)
        (their_grad,) = torch.autograd.grad(package.sum(), theta)
        batch = tasks.batch_indices(step)  # (3, batch)
        for i in range(3):
            point = theta[i].detach().requires_grad_(True)
            mine = loss_by_hand(point, tasks.images[batch[i]], tasks.labels[batch[i]], shapes)
            (my_grad,) = torch.autograd.grad(mine, point)
            torch.testing.assert_close(mine, package[i].detach(), rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(my_grad, their_grad[i], rtol=1e-9, atol=1e-11)


def test_written_out_loss_is_the_sequential_twins_and_the_float32_package():
    """An independent oracle, nn.Sequential in training mode with theta's values; and the package in float32 (its
    fused native block on CPUs) to float rounding."""
    problem = make_problem("paper", batch_size=32)
    shapes, loss_by_hand = shapes_of(problem), cell_functions(NET_MARKER)["convnet_loss_by_hand"]
    tasks = problem.tasks("train", range(2))
    theta = tasks.init_theta()
    for i in range(2):
        batch = tasks.batch_indices(1)[i]
        x, y = tasks.images[batch], tasks.labels[batch]
        mine = loss_by_hand(theta[i], x, y, shapes)
        model = problem.model().train()
        torch.nn.utils.vector_to_parameters(theta[i], model.parameters())
        torch.testing.assert_close(mine, F.cross_entropy(model(x), y), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mine, tasks.loss(theta, 1)[i], rtol=1e-4, atol=1e-5)


def test_a_wrong_batch_norm_is_caught():
    """The check can fail: batch statistics with the unbiased variance (or none at all) move the loss."""
    problem = make_problem("small")
    shapes, loss_by_hand = shapes_of(problem), cell_functions(NET_MARKER)["convnet_loss_by_hand"]
    tasks = problem.tasks("train", range(1))
    theta, batch = tasks.init_theta().double(), tasks.batch_indices(0)[0]
    x, y = tasks.images[batch].double(), tasks.labels[batch]
    right = loss_by_hand(theta[0], x, y, shapes)
    tasks.images = tasks.images.double()
    torch.testing.assert_close(right, tasks.loss(theta, 0)[0], rtol=1e-12, atol=1e-12)
    namespace = {"torch": torch, "F": F}
    defs = [
        node
        for node in ast.parse(helpers.teaching_cell(NOTEBOOK, NET_MARKER)).body
        if isinstance(node, ast.FunctionDef)
    ]
    source = ast.unparse(ast.Module(body=defs, type_ignores=[]))
    assert "unbiased=False" in source
    exec(source.replace("unbiased=False", "unbiased=True"), namespace)
    wrong = namespace["convnet_loss_by_hand"](theta[0], x, y, shapes)
    assert not torch.allclose(wrong, right, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(ARCHS))
def test_the_mask_is_the_problems_groups(name):
    """Coordinates the cell sends to the fc LSTM are groups()['fc'], the others groups()['conv'] (BN included)."""
    problem = make_problem(name)
    is_fc = cell_functions(ROUTE_MARKER)["fc_mask"](shapes_of(problem))
    groups = problem.groups()
    assert is_fc.dtype == torch.bool and is_fc.shape == (problem.dim,)
    assert torch.equal(torch.nonzero(is_fc).flatten(), groups["fc"].sort().values)
    assert torch.equal(torch.nonzero(~is_fc).flatten(), groups["conv"].sort().values)


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize("rows", [1, 3])
def test_written_out_routing_gives_grouped_lstms_update_and_state(name, rows):
    """Three steps on fresh gradients from a nonzero state: the same updates and states as GroupedLSTM routed by
    route_for; sending the coordinates to the wrong LSTMs gives another update (the check can fail)."""
    fns = cell_functions(ROUTE_MARKER)
    problem = make_problem(name)
    is_fc = fns["fc_mask"](shapes_of(problem))
    net = lively_grouped_net(seed=rows)
    l2l.route_for(net, problem)
    gen = torch.Generator().manual_seed(2)
    state = 0.5 * torch.randn(net.init_state(rows * problem.dim).shape, generator=gen)
    my_state = state.clone()
    conv_lstm, fc_lstm = net.nets["conv"], net.nets["fc"]
    with torch.no_grad():
        for _ in range(3):
            grad = torch.randn(rows, problem.dim, generator=gen) * 0.01
            theirs, state = net(grad, state)
            mine, my_state = fns["two_lstms_step_by_hand"](conv_lstm, fc_lstm, is_fc, grad, my_state)
            torch.testing.assert_close(mine, theirs)
            torch.testing.assert_close(my_state, state)
            swapped, _ = fns["two_lstms_step_by_hand"](fc_lstm, conv_lstm, is_fc, grad, my_state)
            assert not torch.allclose(swapped, theirs, rtol=1e-3, atol=1e-6)
    assert theirs[:, is_fc].abs().max() > 0 and theirs[:, ~is_fc].abs().max() > 0


def test_the_notebook_cells_run_and_agree_with_the_package():
    """Both cells as the notebook runs them (their own checks included) on a synthetic convnet problem."""
    namespace = {
        "torch": torch,
        "F": F,
        "l2l": l2l,
        "device": torch.device("cpu"),
        "problems": {"all 10 labels": make_problem("paper", batch_size=32)},
        "learned": {"LSTM": {"LSTM s0": lively_grouped_net(seed=0)}},
    }
    exec(compile(helpers.teaching_cell(NOTEBOOK, NET_MARKER), str(NOTEBOOK), "exec"), namespace)
    torch.testing.assert_close(namespace["by_hand"], namespace["package"], rtol=1e-4, atol=1e-5)
    exec(compile(helpers.teaching_cell(NOTEBOOK, ROUTE_MARKER), str(NOTEBOOK), "exec"), namespace)
    torch.testing.assert_close(namespace["by_hand"], namespace["package"])
    assert namespace["package"].abs().max() > 0  # a real update, not two zeros agreeing
