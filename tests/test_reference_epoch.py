"""The unit of speed: the plain reference epoch computes what the trainer computes, the same way in every run."""

from __future__ import annotations

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.meta.meta_training import unroll


@pytest.fixture(scope="module")
def reference():
    """benchmarks/reference.py, the clock every timing is stated in."""
    from conftest import _load_benchmark

    return _load_benchmark("reference")


def copy_weights(net: l2l.CoordinatewiseLSTM, ref) -> None:
    """The reference optimizer with the package net's weights."""
    with torch.no_grad():
        for mine, theirs in zip(ref.cells, net.cells, strict=True):
            mine.load_state_dict(theirs.state_dict())
        ref.out.load_state_dict(net.output.state_dict())


def test_reference_step_equals_the_package_step(reference):
    """Same weights, same gradient and state: the same update and state (native or PyTorch step alike)."""
    torch.manual_seed(0)
    net = l2l.CoordinatewiseLSTM()
    with torch.no_grad():
        net.output.weight.normal_()
    ref = reference.ReferenceOptimizer()
    copy_weights(net, ref)
    grad = torch.randn(300) * 10.0 ** torch.randint(-8, 1, (300,)).float()
    state = torch.randn(2, 2, 300, 20)
    with torch.no_grad():
        update, new_state = net(grad, state)
        ref_update, hs, cs = ref(grad, [state[0, 0], state[1, 0]], [state[0, 1], state[1, 1]])
    torch.testing.assert_close(update, ref_update, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(new_state[:, 0], torch.stack(hs), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(new_state[:, 1], torch.stack(cs), rtol=1e-5, atol=1e-6)


def test_reference_meta_gradient_equals_the_trainers(reference):
    """One unroll of the reference (optimizee in the graph, first order) and of the trainer: same meta-gradient."""
    torch.manual_seed(1)
    net = l2l.CoordinatewiseLSTM()
    ref = reference.ReferenceOptimizer()
    copy_weights(net, ref)
    tasks = l2l.QuadraticProblem().tasks("train", range(2))
    theta = tasks.init_theta()
    meta_loss, _, _, _ = unroll(net, tasks, theta, net.init_state(theta.numel()), 0, 5, [1.0] * 5)
    ours = torch.autograd.grad(meta_loss, list(net.parameters()))
    # the reference's unroll, as reference_epoch writes it, for 5 steps
    point = theta.detach().requires_grad_(True)
    hs = [point.new_zeros(point.numel(), 20) for _ in range(2)]
    cs = [point.new_zeros(point.numel(), 20) for _ in range(2)]
    loss, total, current = tasks.loss(point, 0), point.new_zeros(()), point
    for t in range(5):
        (grad,) = torch.autograd.grad(loss.sum(), current, retain_graph=True)
        update, hs, cs = ref(grad.reshape(-1), hs, cs)
        current = current + update.view_as(current)
        loss = tasks.loss(current, t + 1)
        total = total + loss.mean()
    theirs = torch.autograd.grad(total, list(ref.parameters()))
    torch.testing.assert_close(meta_loss.detach(), total.detach(), rtol=1e-5, atol=1e-6)
    for a, b in zip(ours, theirs, strict=True):
        scale = b.abs().max().clamp_min(1e-12)
        torch.testing.assert_close(a.reshape(b.shape) / scale, b / scale, rtol=1e-4, atol=1e-5)


def test_the_reference_epoch_flushes_subnormals_only_inside(reference, monkeypatch):
    """Subnormal floats are flushed during a reference epoch (their slow path made the unit depend on the
    random init) and IEEE arithmetic is back afterwards."""
    tiny = torch.tensor([1e-39])
    seen = []
    monkeypatch.setattr(reference, "_reference_epoch", lambda *args: seen.append((tiny * 1.0).item()))
    reference.reference_epoch(None, None, None)
    assert seen == [0.0]
    assert (tiny * 1.0).item() == pytest.approx(1e-39, rel=1e-3)


def test_the_reference_net_is_the_same_in_every_run(reference):
    a, b = reference.reference_net(torch.device("cpu")), reference.reference_net(torch.device("cpu"))
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y)
