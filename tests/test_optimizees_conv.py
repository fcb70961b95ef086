"""The convolutional optimizee (Section 3.3, notebook 10): the batched functional network against its nn twin."""

from __future__ import annotations

import pytest
import torch

from l2l_helpers.optimizees.conv import GROUPS, ConvProblem, check_labels
from l2l_helpers.optimizees.datasets import ImageData


def synthetic(n: int = 64, size: int = 28, channels: int = 1, classes: int = 10, seed: int = 0) -> ImageData:
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n, channels, size, size, generator=gen)
    labels = torch.arange(n) % classes
    names = tuple(map(str, range(classes)))
    return ImageData(images, labels, images.flip(0), labels.flip(0), "synthetic", "synthetic", names)


def _thetas(problem: ConvProblem, seeds: list[int]) -> tuple[torch.Tensor, list[torch.nn.Module]]:
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(problem.model().train())
    return torch.stack([torch.cat([p.detach().flatten() for p in m.parameters()]) for m in models]), models


def test_functional_network_is_the_sequential_twin():
    """Logits and the gradient of the loss equal nn.Sequential's in training mode (batch statistics), per task."""
    problem = ConvProblem(synthetic(), batch_size=8)
    theta, models = _thetas(problem, [0, 1])
    x = torch.rand(2, 8, 1, 28, 28)
    y = torch.randint(0, 10, (2, 8))
    theta.requires_grad_(True)
    logits = problem.forward(theta, x)  # (2, 8, 10)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum")
    (grad,) = torch.autograd.grad(loss, theta)
    for i, model in enumerate(models):
        out = model(x[i])
        torch.testing.assert_close(logits[i], out, rtol=1e-4, atol=1e-5)
        torch.nn.functional.cross_entropy(out, y[i], reduction="sum").backward()
        expected = torch.cat([p.grad.flatten() for p in model.parameters()])
        # (a bias followed by batch normalization has no gradient: both sides are rounding noise there)
        torch.testing.assert_close(grad[i], expected, rtol=1e-3, atol=1e-4)


def test_copies_read_their_tasks_images():
    problem = ConvProblem(synthetic(), batch_size=4)
    theta, _ = _thetas(problem, [0, 1, 2])
    x = torch.rand(3, 4, 1, 28, 28)
    single = problem.forward(theta, x)
    double = problem.forward(theta.repeat(2, 1), x)
    torch.testing.assert_close(double[:3], single)
    torch.testing.assert_close(double[3:], single)


def test_groups_route_every_coordinate_to_its_layer_type():
    problem = ConvProblem(synthetic())
    groups = problem.groups()
    assert tuple(groups) == GROUPS
    everything = torch.cat(list(groups.values()))
    assert len(everything) == problem.dim and len(torch.unique(everything)) == problem.dim
    model = problem.model()
    sizes = {"conv": 0, "fc": 0}
    for name, p in model.named_parameters():
        index = int(name.split(".")[0])
        sizes["fc" if index >= 13 else "conv"] += p.numel()  # 3 x (conv, bn, relu, pool), flatten: Linear from 13
    assert {g: len(idx) for g, idx in groups.items()} == sizes


def test_initial_theta_is_pytorchs_default_and_seeded():
    problem = ConvProblem(synthetic())
    a = problem.sample_theta(torch.Generator().manual_seed(5))
    b = problem.sample_theta(torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    parts = a.split(problem.numels)
    for (_, role, _, fan_in), part in zip(problem.kinds, parts, strict=True):
        if role == "scale":
            assert torch.equal(part, torch.ones_like(part))
        elif role == "shift":
            assert torch.equal(part, torch.zeros_like(part))
        else:
            assert float(part.abs().max()) <= fan_in**-0.5


def test_label_subsets_keep_and_renumber_their_classes():
    data = synthetic(n=100)
    problem = ConvProblem(data, labels=[7, 3], batch_size=16)
    tasks = problem.tasks("train", [0, 1])
    assert set(tasks.labels.tolist()) == {0, 1}
    assert len(tasks.labels) == 20  # 10 images each of classes 7 and 3
    originals = data.train_labels[torch.isin(data.train_labels, torch.tensor([7, 3]))]
    assert torch.equal(tasks.labels, (originals == 3).long())  # 7 -> 0, 3 -> 1: the order given
    assert problem.forward(tasks.init_theta(), torch.rand(2, 16, 1, 28, 28)).shape == (2, 16, 2)
    loss = tasks.loss(tasks.init_theta(), 0)
    assert loss.shape == (2,) and torch.isfinite(loss).all()


@pytest.mark.parametrize(
    ("labels", "match"),
    [([10], "unknown"), ([], "empty"), ([1, 1, 2], "repeat"), ([4], "one label"), ([1.5, 2], "unknown")],
)
def test_bad_label_subsets_say_what_to_fix(labels, match):
    with pytest.raises(ValueError, match=match):
        check_labels(labels, 10)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="poolings"):
        ConvProblem(synthetic(size=4))
    with pytest.raises(ValueError, match="batch_size"):
        ConvProblem(synthetic(), batch_size=1)
    with pytest.raises(ValueError, match="channels"):
        ConvProblem(synthetic(), channels=0)
    with pytest.raises(ValueError, match="must be odd"):
        ConvProblem(synthetic(), kernel=4)
    flat = synthetic()
    flat.train_images = flat.train_images.flatten(1)
    with pytest.raises(ValueError, match="reshape flat images"):
        ConvProblem(flat)
