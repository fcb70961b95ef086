"""LearnedOptimizer (torch.optim interface) against the functional update theta += net(grad, state)."""

from __future__ import annotations

import pytest
import torch
from helpers import fresh_net
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import l2l_helpers as l2l
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule
from l2l_helpers.optimizer.learned_optimizer import LearnedOptimizer


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


def assert_reload_takes_the_same_step(net, model, opt, x, y) -> None:
    """A second optimizer on a copy of the model, loaded from ``opt.state_dict()``, takes the same next step."""
    model2, _, _ = make_model_and_batch()
    model2.load_state_dict(model.state_dict())
    opt2 = LearnedOptimizer(model2.parameters(), net)
    opt2.load_state_dict(opt.state_dict())
    for m, o in ((model, opt), (model2, opt2)):
        o.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


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
    assert_reload_takes_the_same_step(net, model, opt, x, y)


@pytest.mark.parametrize("net", [nn.LSTM(2, 3), None, "lstm", nn.Linear(1, 1)])
def test_rejects_other_nets(net):
    """net must be a CoordinatewiseLSTM."""
    with pytest.raises(ValueError, match="CoordinatewiseLSTM"):
        LearnedOptimizer([nn.Parameter(torch.zeros(2))], net)


def test_sparse_gradient_is_a_clear_error():
    """A sparse gradient (nn.Embedding(sparse=True)) is refused, naming the parameter, before anything changes."""
    net = make_net()
    dense = nn.Linear(3, 2).double()
    embedding = nn.Embedding(10, 3, sparse=True).double()
    opt = LearnedOptimizer([{"params": [dense.weight]}, {"params": [dense.bias, embedding.weight]}], net)
    dense(embedding(torch.tensor([1, 4]))).sum().backward()
    assert embedding.weight.grad.is_sparse
    before = [p.detach().clone() for p in (*dense.parameters(), embedding.weight)]
    with pytest.raises(RuntimeError, match=r"sparse gradient.*parameter 1 of param group 1.*\(10, 3\).*sparse=False"):
        opt.step()
    assert all(torch.equal(a, p) for a, p in zip(before, (*dense.parameters(), embedding.weight), strict=True))
    assert len(opt.state) == 0


def test_finite_gradients_match_functional_rule_exactly():
    """With finite gradients, opt.step() gives bit for bit what LearnedRule(net).step gives on the flat gradient."""
    net = make_net()
    rule = LearnedRule(net)
    torch.manual_seed(2)
    a = nn.Parameter(torch.randn(4, dtype=torch.float64))
    b = nn.Parameter(torch.randn(2, 3, dtype=torch.float64))
    opt = LearnedOptimizer([a, b], net)
    theta = torch.cat([a.detach().reshape(-1), b.detach().reshape(-1)])
    state = rule.init_state(theta)
    for _ in range(6):
        a.grad, b.grad = torch.randn(4, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
        opt.step()
        update, state = rule.step(torch.cat([a.grad.reshape(-1), b.grad.reshape(-1)]), state)
        theta = torch.cat([theta[:4] + update[:4], theta[4:] + update[4:]])
        assert torch.equal(torch.cat([a.detach().reshape(-1), b.detach().reshape(-1)]), theta)
        assert torch.equal(torch.cat([opt.state[a]["lstm"], opt.state[b]["lstm"]], dim=2), state)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_gradient_skips_that_coordinate(bad):
    """A NaN/inf gradient coordinate keeps its value and LSTM state for that step; the others step as without it."""
    net = make_net()
    torch.manual_seed(3)
    init = [torch.randn(4, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)]
    grads = [[torch.randn(4, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)] for _ in range(6)]
    ours = [nn.Parameter(t.clone()) for t in init]
    twin = [nn.Parameter(t.clone()) for t in init]  # the same run without the bad gradient
    opt, twin_opt = LearnedOptimizer(ours, net), LearnedOptimizer(twin, net)
    k = 2
    for step, (ga, gb) in enumerate(grads):
        for p, g in zip(twin, (ga, gb), strict=True):
            p.grad = g.clone()
        twin_opt.step()
        ours[0].grad, ours[1].grad = ga.clone(), gb.clone()
        if step == k:
            ours[0].grad[1] = bad
            value, lstm = ours[0].detach()[1].clone(), opt.state[ours[0]]["lstm"][:, :, 1].clone()
        opt.step()
        others = torch.arange(4) != 1
        if step >= k:
            assert torch.equal(ours[0].detach()[others], twin[0].detach()[others])
            assert torch.equal(opt.state[ours[0]]["lstm"][:, :, others], twin_opt.state[twin[0]]["lstm"][:, :, others])
        else:
            assert torch.equal(ours[0].detach(), twin[0].detach())
        assert torch.equal(ours[1].detach(), twin[1].detach())
        assert torch.equal(opt.state[ours[1]]["lstm"], twin_opt.state[twin[1]]["lstm"])
        if step == k:
            assert torch.equal(ours[0].detach()[1], value)
            assert torch.equal(opt.state[ours[0]]["lstm"][:, :, 1], lstm)
        assert all(torch.isfinite(p).all() for p in ours)
        assert all(torch.isfinite(opt.state[p]["lstm"]).all() for p in ours)
    # the skipped coordinate went on as if step k had not happened for it
    state, x = net.init_state(1), init[0][1].clone()
    for step, (ga, _) in enumerate(grads):
        if step != k:
            update, state = net(ga[1].reshape(1), state)
            x = x + update[0]
    torch.testing.assert_close(ours[0].detach()[1], x, rtol=1e-12, atol=1e-12)


def test_state_dict_after_skipped_coordinate():
    """The LSTM state after a step with a NaN gradient round-trips through state_dict() like any other."""
    net = make_net()
    model, x, y = make_model_and_batch()
    opt = LearnedOptimizer(model.parameters(), net)
    for step in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        if step == 1:
            model[0].weight.grad[2, 3] = float("nan")
        opt.step()
    sd = opt.state_dict()
    for i, p in enumerate(model.parameters()):
        assert torch.equal(sd["state"][i]["lstm"], opt.state[p]["lstm"])
    assert_reload_takes_the_same_step(net, model, opt, x, y)
    assert all(torch.isfinite(a).all() for a in model.parameters())


shapes = st.lists(st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(shapes=shapes, with_grad=st.lists(st.booleans(), min_size=5, max_size=5), seed=st.integers(0, 2**16))
def test_learned_optimizer_on_any_parameter_shapes(shapes, with_grad, seed):
    """Empty, scalar and n-d parameters, with and without gradients: each updated coordinatewise, or left alone."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    for p, g in zip(params, with_grad, strict=False):
        if g:
            p.grad = torch.randn(p.shape, generator=gen)
    before = [p.detach().clone() for p in params]
    net = fresh_net(output_scale=1.0)
    opt = l2l.LearnedOptimizer(params, net)
    opt.step()
    for p, b in zip(params, before, strict=True):
        if p.grad is None or p.numel() == 0:
            assert torch.equal(p.detach(), b)
            assert "lstm" not in opt.state[p]
        else:
            # coordinatewise: the update of each parameter depends only on its own gradient
            with torch.no_grad():
                expected, _ = net(p.grad.reshape(-1), net.init_state(p.numel()))
            torch.testing.assert_close(p.detach() - b, expected.view_as(p), atol=1e-6, rtol=1e-5)
            assert opt.state[p]["lstm"].shape == (2, 2, p.numel(), 20)
