"""Neural art's loss with a hand-written gradient (l2l_helpers.kernels.style_loss) against autograd's."""

from __future__ import annotations

import pytest
import torch

from l2l_helpers.kernels import style_loss
from l2l_helpers.kernels.plain import plain_only
from l2l_helpers.optimizees.neural_art import NeuralArtProblem, RandomFeatures


def loss_and_grad(tasks, theta: torch.Tensor, weights: torch.Tensor, plain: bool):
    """Per-image losses and the gradient of their weighted sum (weights per image: not only loss.sum())."""
    theta = theta.detach().clone().requires_grad_(True)
    if plain:
        with plain_only():
            loss = tasks.loss(theta)
    else:
        loss = tasks.loss(theta)
    (grad,) = torch.autograd.grad((loss * weights).sum(), theta)
    return loss.detach(), grad


@pytest.mark.parametrize("content_layer", [0, 1, 2])
@pytest.mark.parametrize(("size", "copies", "tv_weight"), [(16, 1, 0.2), (32, 3, 0.2), (24, 2, 0.0)])
def test_same_loss_and_gradient_as_autograd(size, copies, tv_weight, content_layer):
    """The loss is equal bit for bit (the same operations), the gradient to float rounding: every content layer,
    copies of the batch (a learning-rate grid), with and without total variation, odd pooled sizes (24 -> 12 -> 6)."""
    problem = NeuralArtProblem(size=size, tv_weight=tv_weight)
    problem.content_layer = content_layer
    tasks = problem.tasks("train", range(2))
    gen = torch.Generator().manual_seed(size + content_layer)
    theta = tasks.init_theta().repeat(copies, 1)
    theta = theta + 0.05 * torch.randn(theta.shape, generator=gen)
    weights = torch.rand(theta.shape[0], generator=gen) + 0.5
    fast_loss, fast_grad = loss_and_grad(tasks, theta, weights, plain=False)
    plain_loss, plain_grad = loss_and_grad(tasks, theta, weights, plain=True)
    assert torch.equal(fast_loss, plain_loss)
    scale = plain_grad.abs().max()
    assert scale > 0
    torch.testing.assert_close(fast_grad / scale, plain_grad / scale, rtol=0, atol=2e-6)
    assert fast_grad.is_contiguous()


def test_the_hand_written_gradient_runs_where_it_applies_and_only_there():
    problem = NeuralArtProblem(size=16)
    tasks = problem.tasks("train", range(2))
    theta = tasks.init_theta().requires_grad_(True)
    assert type(tasks.loss(theta).grad_fn).__name__ == "StyleContentLossBackward"
    with plain_only():  # second-order meta-training: autograd's graph, differentiable twice
        assert type(tasks.loss(theta).grad_fn).__name__ != "StyleContentLossBackward"
    assert not style_loss.supported(theta.detach())  # no gradient wanted
    with torch.no_grad():
        assert not style_loss.supported(theta)


def test_only_features_whose_forward_it_repeats_take_the_hand_written_gradient():
    """The kernel repeats RandomFeatures' forward; a feature network that does not say so (VGG-19, a subclass with
    another forward) keeps autograd."""
    images = torch.rand(1, 3, 8, 8, requires_grad=True)

    class OtherForward(RandomFeatures):
        style_loss_kernel = False

    assert style_loss.supported(images, RandomFeatures(channels=(4,)))
    assert not style_loss.supported(images, OtherForward(channels=(4,)))
    assert not style_loss.supported(images, torch.nn.Identity())


def test_second_derivatives_need_plain_only():
    """Differentiating the hand-written gradient again is a clear error; inside plain_only it works."""
    problem = NeuralArtProblem(size=16)
    tasks = problem.tasks("train", range(1))
    theta = tasks.init_theta().requires_grad_(True)
    with pytest.raises(RuntimeError, match="cannot be differentiated again: compute the loss inside"):
        torch.autograd.grad(tasks.loss(theta).sum(), theta, create_graph=True)
    with plain_only():
        (grad,) = torch.autograd.grad(tasks.loss(theta).sum(), theta, create_graph=True)
        (second,) = torch.autograd.grad(grad.square().sum(), theta)
    assert second.abs().sum() > 0
