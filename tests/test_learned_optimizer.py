"""LearnedOptimizer (torch.optim interface) against the functional update theta += net(grad, state)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from l2l_helpers.coordinatewise_lstm import CoordinatewiseLSTM
from l2l_helpers.learned_optimizer import LearnedOptimizer


def make_net(seed=0):
    """A random float64 optimizer network whose updates are not tiny."""
    torch.manual_seed(seed)
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=6, output_scale=1.0).double()
    with torch.no_grad():
        net.output.weight.normal_()
        net.output.bias.normal_(0, 0.1)
    return net


def make_model_and_batch(seed=1):
    """A small MLP and a fixed batch of inputs and targets."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 3)).double()
    x = torch.randn(8, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (8,))
    return model, x, y


def flat_loss(model, theta, x, y):
    """The model's loss as a function of its flattened parameters (in model.parameters() order)."""
    params, start = {}, 0
    for name, p in model.named_parameters():
        params[name] = theta[start : start + p.numel()].view_as(p)
        start += p.numel()
    logits = torch.func.functional_call(model, params, (x,))
    return nn.functional.cross_entropy(logits, y)


def test_matches_functional_loop():
    """Several opt.step() calls give the same parameters as theta = theta + net(grad_flat, state)."""
    net = make_net()
    model, x, y = make_model_and_batch()
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()
    state = net.init_state(theta.numel())
    opt = LearnedOptimizer(model.parameters(), net)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        t = theta.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(flat_loss(model, t, x, y), t)
        with torch.no_grad():
            update, state = net(g, state)
        assert update.abs().max() > 1e-2
        theta = theta + update
        ours = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        torch.testing.assert_close(ours, theta, rtol=1e-10, atol=1e-12)
    for p, n in zip(model.parameters(), [20, 4, 12, 3], strict=True):
        assert opt.state[p]["lstm"].shape == (2, 2, n, 6)


def test_closure_returns_loss():
    """step(closure) evaluates the closure with grad enabled and returns its loss."""
    net = make_net()
    model, x, y = make_model_and_batch()
    opt = LearnedOptimizer(model.parameters(), net)

    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    before = [p.detach().clone() for p in model.parameters()]
    loss = opt.step(closure)
    assert torch.is_tensor(loss) and loss.item() > 0
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def test_parameters_without_grad_untouched():
    """A parameter with no gradient keeps its value and gets no LSTM state."""
    net = make_net()
    a = nn.Parameter(torch.randn(3, dtype=torch.float64))
    b = nn.Parameter(torch.randn(2, 2, dtype=torch.float64))
    opt = LearnedOptimizer([a, b], net)
    b_before = b.detach().clone()
    a.grad = torch.randn(3, dtype=torch.float64)
    expected, _ = net(a.grad, net.init_state(3))
    a_before = a.detach().clone()
    opt.step()
    assert torch.equal(b.detach(), b_before)
    assert b not in opt.state or "lstm" not in opt.state[b]
    torch.testing.assert_close(a.detach(), a_before + expected.detach())


def test_no_grads_at_all_is_a_no_op():
    """With no gradients step() changes nothing and returns None."""
    net = make_net()
    a = nn.Parameter(torch.randn(3, dtype=torch.float64))
    opt = LearnedOptimizer([a], net)
    before = a.detach().clone()
    assert opt.step() is None
    assert torch.equal(a.detach(), before)
    assert len(opt.state) == 0


def test_empty_and_scalar_parameters():
    """A zero-size parameter is skipped; a scalar parameter gets the net's scalar update."""
    net = make_net()
    empty = nn.Parameter(torch.zeros(0, 4, dtype=torch.float64))
    scalar = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))
    vec = nn.Parameter(torch.randn(4, dtype=torch.float64))
    opt = LearnedOptimizer([empty, scalar, vec], net)
    empty.grad = torch.zeros(0, 4, dtype=torch.float64)
    scalar.grad = torch.tensor(-0.3, dtype=torch.float64)
    vec.grad = torch.randn(4, dtype=torch.float64)
    state = net.init_state(5)
    s0, v0 = scalar.detach().clone(), vec.detach().clone()
    for _ in range(3):
        opt.step()
        update, state = net(torch.cat([scalar.grad.reshape(1), vec.grad]), state)
        s0, v0 = s0 + update[0], v0 + update[1:]
        torch.testing.assert_close(scalar.detach(), s0.detach())
        torch.testing.assert_close(vec.detach(), v0.detach())
    assert scalar.shape == () and empty.shape == (0, 4)
    assert opt.state[scalar]["lstm"].shape == (2, 2, 1, 6)


def test_float32_model_with_float64_net():
    """Gradients are cast to the net's dtype and updates back to the parameter's dtype."""
    net = make_net()
    p = nn.Parameter(torch.randn(5))
    p.grad = torch.randn(5)
    before = p.detach().clone()
    LearnedOptimizer([p], net).step()
    update, _ = net(p.grad.double(), net.init_state(5))
    assert p.dtype == torch.float32
    torch.testing.assert_close(p.detach(), before + update.float())


def test_state_dict_holds_lstm_state():
    """opt.state_dict() contains every parameter's LSTM state; loading it continues identically."""
    net = make_net()
    model, x, y = make_model_and_batch()
    opt = LearnedOptimizer(model.parameters(), net)
    for _ in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1, 2, 3}
    for i, p in enumerate(model.parameters()):
        assert torch.equal(sd["state"][i]["lstm"], opt.state[p]["lstm"])
        assert sd["state"][i]["lstm"].abs().sum() > 0
    # a second optimizer on a copy of the model, loaded from the state dict, takes the same next step
    model2, _, _ = make_model_and_batch()
    model2.load_state_dict(model.state_dict())
    opt2 = LearnedOptimizer(model2.parameters(), net)
    opt2.load_state_dict(sd)
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("net", [nn.LSTM(2, 3), None, "lstm", nn.Linear(1, 1)])
def test_rejects_other_nets(net):
    """net must be a CoordinatewiseLSTM."""
    with pytest.raises(ValueError, match="CoordinatewiseLSTM"):
        LearnedOptimizer([nn.Parameter(torch.zeros(2))], net)
