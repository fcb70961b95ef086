"""The convnet's fused block (l2l_helpers.kernels.conv_block), swapped in for the optimizee's plain bn_relu_pool."""

from __future__ import annotations

import pytest
import torch

from l2l_helpers import kernels
from l2l_helpers.kernels import conv_block
from l2l_helpers.optimizees.conv import ConvProblem, bn_relu_pool


@pytest.fixture(scope="module")
def module():
    built = conv_block.load()
    if built is None:
        pytest.skip("the convnet's native block cannot be built here")
    return built


def both(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, d_out: torch.Tensor, native: bool):
    """Output and the gradients of <output, d_out> with respect to y, gamma and beta, by one path."""
    y, gamma, beta = (t.detach().clone().requires_grad_(True) for t in (y, gamma, beta))
    if native:
        out = conv_block.NativeBNReLUPool.apply(y, gamma, beta, 1e-5)
    else:
        out = bn_relu_pool.plain(y, gamma, beta, 1e-5)
    grads = torch.autograd.grad((out * d_out).sum(), (y, gamma, beta))
    return out.detach(), grads


@pytest.mark.parametrize(
    ("shape", "integers"),
    [((8, 16, 28, 28), False), ((4, 3, 7, 7), False), ((2, 5, 2, 2), False), ((6, 4, 6, 6), True)],
    ids=["first-block", "odd-size", "one-window", "ties"],
)
def test_native_block_matches_pytorch(module, shape, integers):
    """Outputs and gradients equal PyTorch's to float rounding: odd maps (the last row and column in no window),
    one window per map, and ties (integer maps: both take the first maximum of a window)."""
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, shape, generator=gen).float() if integers else torch.randn(shape, generator=gen) * 3 + 1
    gamma, beta = torch.rand(shape[1], generator=gen) + 0.5, torch.randn(shape[1], generator=gen) * 0.5
    d_out = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2, generator=gen)
    fast, slow = both(y, gamma, beta, d_out, True), both(y, gamma, beta, d_out, False)
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-5, atol=1e-5)
    assert (fast[0] == 0).any() and (fast[0] > 0).any()  # the ReLU both cuts and passes
    for a, b in zip(fast[1], slow[1], strict=True):
        scale = b.abs().max()
        torch.testing.assert_close(a / scale, b / scale, rtol=1e-4, atol=1e-5)


def test_bad_inputs_are_refused_by_the_module(module):
    """The C++ code checks shapes and types instead of reading past a tensor's end."""
    y = torch.randn(2, 3, 4, 4)
    with pytest.raises(RuntimeError, match="one value per channel"):
        module.forward(y, torch.ones(2), torch.zeros(3), 1e-5)
    with pytest.raises(RuntimeError, match="shape \\(B, C, S, S\\)"):
        module.forward(torch.randn(2, 3, 4, 5), torch.ones(3), torch.zeros(3), 1e-5)
    with pytest.raises(RuntimeError, match="float32"):
        module.forward(y.double(), torch.ones(3), torch.zeros(3), 1e-5)
    out, mean, invstd, idx = module.forward(y, torch.ones(3), torch.zeros(3), 1e-5)
    with pytest.raises(RuntimeError, match="pooled shape"):
        module.backward(torch.ones(2, 3, 3, 3), y, torch.ones(3), mean, invstd, idx, out)


def test_the_plain_path_runs_where_the_native_block_does_not(module, monkeypatch):
    """float64, L2L_NATIVE=0 and second-order graphs (plain_only) take PyTorch's operators; float32 CPU the native
    block. Twice-differentiated, the plain path works."""
    y, gamma, beta = torch.randn(2, 3, 4, 4, requires_grad=True), torch.ones(3), torch.zeros(3)
    assert conv_block.supported(y, gamma, beta)
    assert type(bn_relu_pool(y, gamma, beta).grad_fn).__name__.startswith("NativeBNReLUPool")
    assert not conv_block.supported(y.double(), gamma.double(), beta.double())
    with kernels.plain_only():
        out = bn_relu_pool(y, gamma, beta)
        assert not type(out.grad_fn).__name__.startswith("NativeBNReLUPool")
        (g,) = torch.autograd.grad(out.square().sum(), y, create_graph=True)
        assert g.requires_grad
    monkeypatch.setenv("L2L_NATIVE", "0")
    assert not conv_block.supported(y, gamma, beta)


def test_convnet_losses_and_gradients_agree_with_and_without_the_native_block(module, monkeypatch):
    """The paper's convnet (3 blocks, 28 -> 14 -> 7 -> 3) on Fashion-MNIST: the same losses and theta-gradients."""
    problem = ConvProblem(batch_size=32)
    tasks = problem.tasks("train", range(2))
    theta = tasks.init_theta().repeat(2, 1)  # two copies of each task, as evaluation batches them

    def loss_and_grad() -> tuple[torch.Tensor, torch.Tensor]:
        t = theta.clone().requires_grad_(True)
        loss = tasks.loss(t, 3)
        return loss.detach(), torch.autograd.grad(loss.sum(), t)[0]

    fast = loss_and_grad()
    monkeypatch.setenv("L2L_NATIVE", "0")
    slow = loss_and_grad()
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-5, atol=1e-6)
    scale = slow[1].abs().max()
    torch.testing.assert_close(fast[1] / scale, slow[1] / scale, rtol=1e-4, atol=1e-5)
