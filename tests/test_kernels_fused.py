"""The fused LSTM step (l2l_helpers.kernels.fused) against the plain nn.LSTMCell stack: outputs, states, gradients."""

from __future__ import annotations

import pytest
import torch

from l2l_helpers import kernels
from l2l_helpers.kernels.fused import FusedLSTMStep
from l2l_helpers.meta.meta_training import unroll
from l2l_helpers.optimizees import MNISTProblem, QuadraticProblem
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, OptimizerConfig

CONFIGS = [
    OptimizerConfig(num_layers=2, hidden_size=5, preprocessing="log_sign", output_scale=0.7),
    OptimizerConfig(num_layers=1, hidden_size=4, preprocessing="none", output_scale=2.0),
    OptimizerConfig(num_layers=3, hidden_size=3, preprocessing="log_sign_smooth", p=5.0, output_scale=0.1),
]
IDS = ["2x5-log_sign", "1x4-none", "3x3-smooth"]


def lively(config, dtype, seed=0):
    """A random net whose output layer is not near zero."""
    torch.manual_seed(seed)
    net = CoordinatewiseLSTM(config).to(dtype)
    with torch.no_grad():
        net.output.weight.normal_()
        net.output.bias.normal_()
    return net


def run_steps(net, fused, dtype, n=40, steps=4):
    """Several steps from a random state; returns the last update, state and the gradients of a loss of all."""
    with kernels.forced("fused" if fused else "cells"):
        return _run_steps(net, dtype, n, steps)


def _run_steps(net, dtype, n, steps):
    gen = torch.Generator().manual_seed(1)
    state0 = torch.randn(net.config.num_layers, 2, n, net.config.hidden_size, generator=gen, dtype=dtype)
    state0.requires_grad_(True)
    state, loss = state0, 0.0
    weights = torch.randn(n, generator=gen, dtype=dtype)
    for _ in range(steps):
        scale = 10.0 ** torch.randint(-7, 2, (n,), generator=gen).to(dtype)
        grad = torch.randn(n, generator=gen, dtype=dtype) * scale
        update, state = net(grad, state)
        loss = loss + (update * weights).sum()
    loss = loss + (state**2).sum()  # the carried state gets a gradient too
    grads = torch.autograd.grad(loss, [state0, *net.parameters()])
    return update.detach(), state.detach(), grads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_fused_step_matches_lstm_cells(config, dtype):
    """Updates, states and gradients (to phi and to the initial state) equal the nn.LSTMCell path's."""
    net = lively(config, dtype)
    fused = run_steps(net, True, dtype)
    plain = run_steps(net, False, dtype)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(fused[0], plain[0], **tol)
    torch.testing.assert_close(fused[1], plain[1], **tol)
    for a, b in zip(fused[2], plain[2], strict=True):
        torch.testing.assert_close(a / b.abs().max(), b / b.abs().max(), **tol)


def test_fused_is_used_and_inference_keeps_no_graph():
    """With phi trainable the step is one FusedLSTMStep node; under no_grad nothing is recorded."""
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=4)
    grad, state = torch.randn(7), net.init_state(7)
    update, new_state = net(grad, state)
    assert update.grad_fn is not None
    assert new_state.grad_fn is not None and FusedLSTMStep.__name__ in type(new_state.grad_fn).__name__
    with torch.no_grad():
        update, new_state = net(grad, state)
    assert update.grad_fn is None and new_state.grad_fn is None and not new_state.requires_grad


def test_second_order_input_uses_the_cells_path():
    """A gradient input that itself needs a gradient (second order) goes through nn.LSTMCell, twice differentiable."""
    net = CoordinatewiseLSTM(num_layers=1, hidden_size=3).double()
    grad = torch.randn(5, dtype=torch.float64, requires_grad=True)
    update, _ = net(grad, net.init_state(5))
    (g,) = torch.autograd.grad(update.sum(), grad, create_graph=True)
    assert g.requires_grad  # a graph to differentiate again


@pytest.mark.parametrize("problem", ["quadratic", "mnist"])
def test_unroll_meta_gradient_matches_lstm_cells(problem):
    """The meta-gradient of an unroll (first order, the paper's) is the same with the fused step."""
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=6)
    with torch.no_grad():
        net.output.weight.normal_(0, 0.3)
    tasks = (QuadraticProblem() if problem == "quadratic" else MNISTProblem(hidden=(4,))).tasks("train", range(2))
    results = []
    for backend in ("fused", "cells"):
        theta = tasks.init_theta()
        with kernels.forced(backend):
            meta_loss, _, _, _ = unroll(net, tasks, theta, net.init_state(theta.numel()), 0, 5, [1.0] * 5)
        results.append((meta_loss.detach(), torch.autograd.grad(meta_loss, list(net.parameters()))))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        scale = b.abs().max().clamp_min(1e-12)
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-5, atol=1e-6)


def test_state_dict_keys_unchanged():
    """The checkpoint format: the same keys as the nn.LSTMCell modules always had."""
    keys = set(CoordinatewiseLSTM(num_layers=2).state_dict())
    expected = {f"cells.{i}.{k}" for i in range(2) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    assert keys == expected | {"output.weight", "output.bias"}
