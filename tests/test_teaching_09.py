"""Notebook 09's written-out neural-art loss against the package's (paper, Section 3.4, after Gatys et al.).

The notebook's cell marked ``# neural_art_loss_by_hand`` writes the Gram matrix of a layer's feature maps, the
style, content and total-variation terms and their weighted sum in plain PyTorch; the cell marked
``# image_step_by_hand`` takes one step of gradient descent on the pixels with autograd's gradient of that loss.
The package computes the same loss with a hand-written image gradient (:mod:`l2l_helpers.kernels.style_loss`), and
its Gram matrix (``l2l.gram``) reads channels-last maps without a copy. These tests run the cells' functions on
fresh small tasks in float64 and compare them with the package, with an einsum and a loop over pixels, with the
Gram matrix's gradient by formula, and with finite differences.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
from helpers import cell_functions, teaching_cell

import l2l_helpers as l2l

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "09_neural_art.ipynb"
MARKERS = ("# neural_art_loss_by_hand", "# image_step_by_hand")
#: float64 agreement: the package and the cells add the same terms in different orders
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def by_hand() -> types.SimpleNamespace:
    """The functions the two cells define (gram_by_hand, loss_by_hand, image_step_by_hand), and nothing else."""
    namespace: dict[str, object] = {"torch": torch}
    for marker in MARKERS:
        cell_functions(NOTEBOOK, marker, namespace)
    names = ("gram_by_hand", "loss_by_hand", "image_step_by_hand")
    return types.SimpleNamespace(**{name: namespace[name] for name in names})


@pytest.fixture(scope="module")
def cells() -> types.SimpleNamespace:
    return by_hand()


def double_tasks(
    size: int = 16,
    n_tasks: int = 2,
    split: str = "dev",
    style: str = "starry_night",
    weights: tuple[float, float, float] = (1.0, 1e6, 0.2),
    seed: int = 0,
    first: int = 0,
) -> l2l.TaskBatch:
    """Fresh neural-art tasks with random features, in float64: the package's targets recomputed in double."""
    a, b, c = weights
    problem = l2l.NeuralArtProblem(size=size, style=style, content_weight=a, style_weight=b, tv_weight=c, seed=seed)
    tasks = problem.tasks(split, range(first, first + n_tasks))
    problem.features.double()
    with torch.no_grad():  # what NeuralArtTasks computes at construction, in float64
        tasks.content = tasks.content.double()
        tasks.style_grams = [l2l.gram(f) for f in problem.features(problem.style_image().double().unsqueeze(0))]
        tasks.content_feat = problem.features(tasks.content)[problem.content_layer]
    return tasks


def mid_trajectory(tasks: l2l.TaskBatch, seed: int = 0, scale: float = 0.05) -> torch.Tensor:
    """theta away from the content photos (where the content term's gradient is zero): photos plus local noise."""
    gen = torch.Generator().manual_seed(seed)
    theta = tasks.init_theta()
    return theta + scale * torch.randn(theta.shape, generator=gen, dtype=theta.dtype)


def package_loss_and_grad(tasks: l2l.TaskBatch, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The package's loss and its image gradient (the hand-written backward for random features)."""
    point = theta.detach().clone().requires_grad_(True)
    loss = tasks.loss(point)
    (grad,) = torch.autograd.grad(loss.sum(), point)
    return loss.detach(), grad


def gram_by_loop(feat: torch.Tensor) -> torch.Tensor:
    """G[c, d] = sum over pixels of F_c F_d / (C H W), one pixel at a time: the definition, no matrix product."""
    b, c, h, w = feat.shape
    out = torch.zeros(b, c, c, dtype=feat.dtype)
    for i in range(h):
        for j in range(w):
            v = feat[:, :, i, j]  # (B, C): every feature at this pixel
            out += v[:, :, None] * v[:, None, :]
    return out / (c * h * w)


# -- the cells as the notebook runs them ------------------------------------------------------------------------


def test_the_notebook_cells_run_and_agree_with_the_package(capsys):
    """Both cells as the notebook runs them (their own checks included), on fresh held-out tasks in float32."""
    problem = l2l.NeuralArtProblem(size=16)
    namespace = {"torch": torch, "l2l": l2l, "held_out": problem.tasks("dev", range(2)), "device": "cpu"}
    state = torch.get_rng_state()
    for marker in MARKERS:
        exec(compile(teaching_cell(NOTEBOOK, marker), str(NOTEBOOK), "exec"), namespace)
    assert torch.equal(torch.get_rng_state(), state), "the cells must not draw from the global random generator"
    out = capsys.readouterr().out
    for name in ("loss", "gradient", "step"):
        assert f"{name}: max |by hand - package|" in out
        assert f"the written-out {name} is the package's: holds" in out
    assert namespace["grad"].abs().max() > 0  # a real gradient, not two zeros agreeing
    assert not torch.equal(namespace["theta1"], namespace["theta0"])


# -- the Gram matrix --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 8, 6, 6), (3, 16, 2, 7)])
def test_gram_is_the_packages_and_the_definition(cells, shape, channels_last):
    """The cell's Gram matrix equals l2l.gram, an einsum and a loop over pixels, in both memory layouts."""
    gen = torch.Generator().manual_seed(sum(shape))
    feat = torch.randn(shape, generator=gen, dtype=torch.float64).relu()
    if channels_last:
        feat = feat.contiguous(memory_format=torch.channels_last)  # the layout RandomFeatures computes in
    c, h, w = shape[1:]
    g = cells.gram_by_hand(feat)
    assert g.shape == (shape[0], c, c)
    torch.testing.assert_close(g, l2l.gram(feat), **TIGHT)
    torch.testing.assert_close(g, torch.einsum("bchw,bdhw->bcd", feat, feat) / (c * h * w), **TIGHT)
    torch.testing.assert_close(g, gram_by_loop(feat), **TIGHT)
    torch.testing.assert_close(g, g.transpose(1, 2), **TIGHT)


def test_gram_gradient_is_the_packages_one_product_backward(cells):
    """Autograd through the cell's Gram matrix gives l2l.gram's gradient and the formula dF = (dG + dG^T) F / n."""
    gen = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 5, 4, 3, generator=gen, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(2, 5, 5, generator=gen, dtype=torch.float64)  # not symmetric: dG + dG^T matters
    grads = []
    for gram in (cells.gram_by_hand, l2l.gram):
        point = feat.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad((gram(point) * weight).sum(), point)
        grads.append(grad)
    torch.testing.assert_close(grads[0], grads[1], **TIGHT)
    flat = feat.reshape(2, 5, 12)  # (B, C, HW)
    by_formula = ((weight + weight.transpose(1, 2)) @ flat / (5 * 12)).reshape(feat.shape)
    torch.testing.assert_close(grads[0], by_formula, **TIGHT)


# -- the loss ---------------------------------------------------------------------------------------------------

CASES = [  # size, split, style, weights, feature seed, first task
    (16, "dev", "starry_night", (1.0, 1e6, 0.2), 0, 0),
    (24, "train", "the_scream", (0.5, 1e5, 0.0), 1, 5),
    (16, "val", "shipwreck", (2.0, 3e6, 1.5), 2, 2),
]


@pytest.mark.parametrize(("size", "split", "style", "weights", "seed", "first"), CASES)
def test_loss_is_the_packages(cells, size, split, style, weights, seed, first):
    """On fresh tasks: the cell's loss equals the package's, with and without the hand-written gradient's path."""
    tasks = double_tasks(size, 2, split, style, weights, seed, first)
    for theta in (tasks.init_theta(), mid_trajectory(tasks, seed)):
        ours = cells.loss_by_hand(tasks, theta)
        assert ours.shape == (2,) and ours.dtype == torch.float64
        with torch.no_grad():  # the package's autograd loss
            torch.testing.assert_close(ours, tasks.loss(theta), **TIGHT)
        loss, _ = package_loss_and_grad(tasks, theta)  # the package's kernel with its own forward
        torch.testing.assert_close(ours, loss, **TIGHT)


def test_loss_terms_are_the_packages(cells):
    """Term by term: weights (1, 0, 0) is the content term, (0, 0, 1) is l2l.total_variation, (0, 1, 0) the style
    loss the package reports (``tasks.style_loss``)."""
    terms = {(1.0, 0.0, 0.0): "content", (0.0, 1.0, 0.0): "style", (0.0, 0.0, 1.0): "tv"}
    for weights, term in terms.items():
        tasks = double_tasks(weights=weights)
        theta = mid_trajectory(tasks)
        ours = cells.loss_by_hand(tasks, theta)
        if term == "content":
            feats = tasks.problem.features(tasks.images(theta))[tasks.problem.content_layer]
            expected = ((feats - tasks.content_feat) ** 2).mean(dim=(1, 2, 3))
        elif term == "style":
            expected = tasks.style_loss(theta)
        else:
            expected = l2l.total_variation(tasks.images(theta))
        assert float(expected.min()) > 0, term  # a term that is there, so a dropped term would be caught
        torch.testing.assert_close(ours, expected.detach(), **TIGHT)


def test_the_content_photo_has_no_content_loss(cells):
    """The content term alone (weights 1, 0, 0) is exactly zero at theta = the content photo."""
    tasks = double_tasks(weights=(1.0, 0.0, 0.0))
    assert torch.equal(cells.loss_by_hand(tasks, tasks.init_theta()), torch.zeros(2, dtype=torch.float64))


# -- the image gradient and one step ----------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "split", "style", "weights", "seed", "first"), CASES)
def test_image_gradient_is_the_packages(cells, size, split, style, weights, seed, first):
    """The cell's autograd gradient equals the package's hand-written one (and the package's autograd one)."""
    tasks = double_tasks(size, 2, split, style, weights, seed, first)
    theta = mid_trajectory(tasks, seed)
    _, loss, grad = cells.image_step_by_hand(tasks, theta, 1.0)
    package_loss, package_grad = package_loss_and_grad(tasks, theta)
    torch.testing.assert_close(loss, package_loss, **TIGHT)
    assert grad.abs().max() > 0
    torch.testing.assert_close(grad, package_grad, **TIGHT)
    with l2l.kernels.plain.plain_only():  # the package's plain path: autograd through its own loss
        _, plain_grad = package_loss_and_grad(tasks, theta)
    torch.testing.assert_close(grad, plain_grad, **TIGHT)


def test_image_gradient_matches_finite_differences(cells):
    """An oracle without autograd: the directional derivative of the cell's loss by central differences."""
    tasks = double_tasks(n_tasks=1)
    theta = mid_trajectory(tasks, 4)
    _, _, grad = cells.image_step_by_hand(tasks, theta, 1.0)
    gen = torch.Generator().manual_seed(5)
    for _ in range(3):
        direction = torch.randn(theta.shape, generator=gen, dtype=theta.dtype)
        eps = 1e-6
        with torch.no_grad():
            plus = cells.loss_by_hand(tasks, theta + eps * direction)
            minus = cells.loss_by_hand(tasks, theta - eps * direction)
        numeric = (plus - minus) / (2 * eps)
        torch.testing.assert_close((grad * direction).sum(dim=1), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("lr", [0.3, 10.0])
def test_one_image_step_is_the_packages_sgd_step(cells, lr):
    """theta - lr * grad f(theta) is the package's first step of SGD (l2l.trajectory), and lowers the loss."""
    tasks = double_tasks(n_tasks=3, first=7)
    theta1, loss0, _ = cells.image_step_by_hand(tasks, tasks.init_theta(), lr)
    losses, thetas = l2l.trajectory(l2l.make_baseline("SGD", lr), tasks, 1)
    torch.testing.assert_close(theta1, thetas[1], **TIGHT)
    torch.testing.assert_close(loss0, losses[:, 0], **TIGHT)
    with torch.no_grad():
        after = cells.loss_by_hand(tasks, theta1)
    torch.testing.assert_close(after, losses[:, 1], **TIGHT)
    assert bool((after < loss0).all())


def test_vgg_features_give_the_same_loss_and_gradient(cells):
    """With VGG-19's layers (random weights, offline) the package differentiates its loss by autograd; the cell's
    loss and gradient are the same there too (maps in the default layout, not channels-last)."""
    pytest.importorskip("torchvision")
    tasks = double_tasks()
    problem = tasks.problem
    problem.features = l2l.optimizees.neural_art.VGGFeatures(pretrained=False).double()
    with torch.no_grad():
        tasks.style_grams = [l2l.gram(f) for f in problem.features(problem.style_image().double().unsqueeze(0))]
        tasks.content_feat = problem.features(tasks.content)[problem.content_layer]
    theta = mid_trajectory(tasks, 6)
    _, loss, grad = cells.image_step_by_hand(tasks, theta, 1.0)
    package_loss, package_grad = package_loss_and_grad(tasks, theta)
    torch.testing.assert_close(loss, package_loss, **TIGHT)
    torch.testing.assert_close(grad, package_grad, **TIGHT)
