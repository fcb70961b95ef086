"""The meta-gradient of an unroll against finite differences (paper, Section 2 and Figure 2)."""

from __future__ import annotations

import pytest
import torch

from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.meta.meta_training import unroll
from l2l_helpers.optimizees import QuadraticProblem
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, OptimizerConfig

LENGTH = 3
WEIGHTS = [1.0, 1.0, 1.0]
H = 1e-6


def make_setup(preprocessing, num_layers, seed=0):
    """A tiny float64 net with a non-trivial output layer and one 2-d quadratic task."""
    torch.manual_seed(seed)
    cfg = OptimizerConfig(num_layers=num_layers, hidden_size=3, preprocessing=preprocessing, output_scale=0.1)
    net = CoordinatewiseLSTM(cfg).double()
    with torch.no_grad():
        net.output.weight.normal_()
        net.output.bias.normal_(0, 0.5)
    tasks = QuadraticProblem(dim=2).tasks("train", range(1))
    tasks.W, tasks.y, tasks._theta0 = tasks.W.double(), tasks.y.double(), tasks._theta0.double()
    return net, tasks


def f(tasks, theta):
    """||W theta - y||^2 per task, written out independently."""
    r = torch.einsum("bij,bj->bi", tasks.W, theta) - tasks.y
    return (r**2).sum(-1)


def meta_loss(net, tasks, second_order):
    """The meta-loss of a 3-step unroll from theta_0 and a zero state."""
    theta = tasks.init_theta().requires_grad_(True)
    state = net.init_state(theta.numel())
    loss, _, _, _ = unroll(net, tasks, theta, state, 0, LENGTH, WEIGHTS, second_order=second_order)
    return loss


def recorded_gradients(net, tasks):
    """The optimizee gradients along the unperturbed trajectory, computed independently."""
    grads = []
    with torch.no_grad():
        theta = tasks.init_theta()
        state = net.init_state(theta.numel())
        for _ in range(LENGTH):
            # d/dtheta ||W theta - y||^2 = 2 W^T (W theta - y)
            g = 2 * torch.einsum("bji,bj->bi", tasks.W, torch.einsum("bij,bj->bi", tasks.W, theta) - tasks.y)
            grads.append(g)
            update, state = net(g, state)
            theta = theta + update
    return grads


def replay_loss(net, tasks, grads):
    """sum_t w_t f(theta_{t+1}) with theta_{t+1} = theta_t + net(g_t recorded, state): gradients frozen."""
    theta = tasks.init_theta()
    state = net.init_state(theta.numel())
    total = theta.new_zeros(())
    for t in range(LENGTH):
        update, state = net(grads[t], state)
        theta = theta + update
        total = total + WEIGHTS[t] * f(tasks, theta).mean()
    return total


def autograd_meta_gradient(net, tasks, second_order):
    """Gradient of the unroll's meta-loss with respect to every parameter of the net, flattened."""
    loss = meta_loss(net, tasks, second_order)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    return torch.cat([g.reshape(-1) for g in grads])


def finite_differences(net, objective):
    """Central differences of objective() with respect to every parameter of the net, flattened."""
    out = []
    for p in net.parameters():
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + H
            plus = float(objective())
            flat[i] = old - H
            minus = float(objective())
            flat[i] = old
            out.append((plus - minus) / (2 * H))
    return torch.tensor(out, dtype=torch.float64)


def assert_close_rel(actual, expected, rel=1e-6):
    """Norm-wise relative agreement, plus elementwise agreement up to the FD noise level."""
    err = (actual - expected).norm()
    assert err <= rel * expected.norm(), f"relative error {float(err / expected.norm()):.3g}"
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("preprocessing", ["none", "log_sign"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_unroll_meta_loss_is_sum_of_losses(preprocessing, num_layers):
    """The unroll's meta-loss equals the independently computed sum of f along the trajectory."""
    net, tasks = make_setup(preprocessing, num_layers)
    with torch.no_grad():
        expected = replay_loss(net, tasks, recorded_gradients(net, tasks))
    for second_order in (False, True):
        assert float(meta_loss(net, tasks, second_order).detach()) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("preprocessing", ["none", "log_sign"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_second_order_matches_finite_differences(preprocessing, num_layers):
    """second_order=True gives the true meta-gradient: central differences of the full unroll."""
    net, tasks = make_setup(preprocessing, num_layers)
    ad = autograd_meta_gradient(net, tasks, second_order=True)
    fd = finite_differences(net, lambda: meta_loss(net, tasks, second_order=True).detach())
    assert ad.norm() > 1e-3
    assert_close_rel(ad, fd)


@pytest.mark.parametrize("preprocessing", ["none", "log_sign"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_first_order_matches_frozen_gradient_replay(preprocessing, num_layers):
    """second_order=False differentiates the replay in which grad f(theta_t) are constants (Figure 2 dashed edges)."""
    net, tasks = make_setup(preprocessing, num_layers)
    ad = autograd_meta_gradient(net, tasks, second_order=False)
    grads = recorded_gradients(net, tasks)
    with torch.no_grad():
        fd = finite_differences(net, lambda: replay_loss(net, tasks, grads))
    assert ad.norm() > 1e-3
    assert_close_rel(ad, fd)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_first_and_second_order_differ(num_layers):
    """Dropping the second derivatives changes the meta-gradient by far more than the FD tolerance."""
    net, tasks = make_setup("none", num_layers)
    first = autograd_meta_gradient(net, tasks, second_order=False)
    second = autograd_meta_gradient(net, tasks, second_order=True)
    # the FD checks above agree to 1e-6 relative; the two gradients differ by 100x that at least
    assert (first - second).norm() > 1e-4 * second.norm()
    # and the first-order gradient is not the derivative of the true meta-loss
    fd = finite_differences(net, lambda: meta_loss(net, tasks, second_order=True).detach())
    assert (first - fd).norm() > 1e-4 * fd.norm()


def test_unroll_returns_trajectory_and_curve():
    """unroll returns theta_T, the state and the per-step mean losses of the trajectory."""
    net, tasks = make_setup("log_sign", 2)
    theta0 = tasks.init_theta().requires_grad_(True)
    _, theta, state, curve = unroll(net, tasks, theta0, net.init_state(2), 0, LENGTH, WEIGHTS)
    grads = recorded_gradients(net, tasks)
    with torch.no_grad():
        th = tasks.init_theta()
        st = net.init_state(2)
        losses = []
        for g in grads:
            u, st = net(g, st)
            th = th + u
            losses.append(float(f(tasks, th).mean()))
    torch.testing.assert_close(theta.detach(), th, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(state.detach(), st, rtol=1e-12, atol=1e-14)
    assert [float(c) for c in curve] == pytest.approx(losses, rel=1e-12)


def test_unroll_weights_index_by_absolute_step():
    """weights[t] applies to f(theta_{t+1}) with t counted from the start of the trajectory."""
    net, tasks = make_setup("none", 1)
    theta = tasks.init_theta().requires_grad_(True)
    weights = [0.0, 0.0, 0.0, 0.0, 2.0]
    loss, _, _, curve = unroll(net, tasks, theta, net.init_state(2), 2, 3, weights)
    assert float(loss.detach()) == pytest.approx(2.0 * float(curve[-1]), rel=1e-12)


def test_step_weights():
    """'final' puts all weight on the last step; 'ones' weights every step by 1."""
    assert MetaTrainConfig(steps=5, unroll=5, weights="final").step_weights() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert MetaTrainConfig(steps=5, unroll=5, weights="ones").step_weights() == [1.0] * 5
    assert MetaTrainConfig(weights="final").step_weights() == [0.0] * 99 + [1.0]
    assert MetaTrainConfig().step_weights() == [1.0] * 100
