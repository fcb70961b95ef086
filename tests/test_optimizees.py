"""Optimizee families: task seeds, the quadratic loss and the MNIST MLP against independent code."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import l2l_helpers as l2l
from l2l_helpers.optimizees import SPLIT_SIZE, MNISTProblem, QuadraticProblem, QuadraticTasks, make_problem, task_seeds
from l2l_helpers.optimizees.data import MNISTData, load_mnist


def synthetic_data(n_train=300, n_test=100, seed=0):
    """A small random stand-in for MNIST, with distinguishable train and held-out images."""
    gen = torch.Generator().manual_seed(seed)
    return MNISTData(
        train_images=torch.rand(n_train, 784, generator=gen),
        train_labels=torch.randint(0, 10, (n_train,), generator=gen),
        test_images=torch.rand(n_test, 784, generator=gen) + 10.0,  # offset: test images are recognisable
        test_labels=torch.randint(0, 10, (n_test,), generator=gen),
        source="offline-sample",
    )


# ------------------------------------------------------------------ seeds


def test_split_seeds_disjoint(monkeypatch):
    """train, val, dev and test never share a seed, even at the edges of their index ranges."""
    monkeypatch.delenv("L2L_LOCK_TEST")  # seeds only: no task of the locked split is drawn or evaluated
    idx = [0, 1, 2, 17, SPLIT_SIZE - 1]
    names = ("train", "val", "dev", "test")
    seeds = {s: set(task_seeds(s, idx)) for s in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not seeds[a] & seeds[b], (a, b)
    assert len(task_seeds("train", range(100))) == len(set(task_seeds("train", range(100)))) == 100


@pytest.mark.parametrize("split", ["Train", "validation", "", "tests"])
def test_unknown_split(split):
    """An unknown split is a ValueError naming it."""
    with pytest.raises(ValueError, match="split="):
        task_seeds(split, [0])
    with pytest.raises(ValueError, match="split="):
        QuadraticProblem().tasks(split, [0])


def test_empty_and_out_of_range_indices():
    """No indices, a negative index or one past the split size is a ValueError."""
    with pytest.raises(ValueError, match="empty"):
        task_seeds("train", [])
    with pytest.raises(ValueError, match="empty"):
        QuadraticProblem().tasks("dev", range(0))
    for bad in (-1, SPLIT_SIZE):
        with pytest.raises(ValueError, match="out of range"):
            task_seeds("val", [bad])


def test_same_index_same_task():
    """The same (split, index) gives the same task whatever batch it is drawn in; splits differ."""
    prob = QuadraticProblem(dim=4)
    a = prob.tasks("train", [3, 5])
    b = prob.tasks("train", [5, 9, 3])
    assert torch.equal(a.W[0], b.W[2]) and torch.equal(a.W[1], b.W[0])
    assert torch.equal(a.y[1], b.y[0]) and torch.equal(a.init_theta()[0], b.init_theta()[2])
    c = prob.tasks("dev", [3])
    assert not torch.equal(a.W[0], c.W[0])
    assert not torch.equal(a.W[0], a.W[1])


# ------------------------------------------------------------------ quadratics


def test_quadratic_loss_matches_formula():
    """loss(theta) = ||W theta - y||^2 per task, shape (n_tasks,)."""
    prob = QuadraticProblem(dim=10)
    tasks = prob.tasks("val", range(4))
    assert isinstance(tasks, QuadraticTasks)
    assert tasks.W.shape == (4, 10, 10) and tasks.y.shape == (4, 10)
    theta = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    loss = tasks.loss(theta)
    assert loss.shape == (4,)
    for i in range(4):
        expected = sum(
            (sum(tasks.W[i, r, c].item() * theta[i, c].item() for c in range(10)) - tasks.y[i, r].item()) ** 2
            for r in range(10)
        )
        assert loss[i].item() == pytest.approx(expected, rel=1e-5)
    assert torch.equal(tasks.loss(theta, 0), tasks.loss(theta, 7))  # no data stream: step is irrelevant


def test_quadratic_draws_are_gaussian_and_scaled():
    """W, y ~ N(0, 1); theta_0 = init_scale * N(0, 1), drawn in that order from the task's seed."""
    tasks = QuadraticProblem(dim=3, init_scale=0.5).tasks("train", [11])
    gen = torch.Generator().manual_seed(task_seeds("train", [11])[0])
    W, y, th = torch.randn(3, 3, generator=gen), torch.randn(3, generator=gen), torch.randn(3, generator=gen)
    assert torch.equal(tasks.W[0], W) and torch.equal(tasks.y[0], y)
    torch.testing.assert_close(tasks.init_theta()[0], th * 0.5)
    big = QuadraticProblem(dim=10).tasks("train", range(64))
    assert abs(big.W.mean().item()) < 0.05 and abs(big.W.std().item() - 1) < 0.05


def test_quadratic_scale_and_init_theta_copy():
    """scale multiplies f; init_theta returns a fresh copy each time."""
    t1 = QuadraticProblem(dim=3).tasks("train", range(2))
    t2 = QuadraticProblem(dim=3, scale=0.25).tasks("train", range(2))
    theta = t1.init_theta()
    torch.testing.assert_close(t2.loss(theta), 0.25 * t1.loss(theta))
    theta.add_(1.0)
    assert not torch.equal(theta, t1.init_theta())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"dim": 0}, "dim"), ({"dim": 2.0}, "dim"), ({"init_scale": -1.0}, "init_scale"), ({"scale": 0.0}, "scale")],
)
def test_quadratic_validation(kwargs, name):
    """Bad quadratic settings are a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=rf"\b{name}="):
        QuadraticProblem(**kwargs)


# ------------------------------------------------------------------ MNIST MLP


def test_mnist_dim():
    """The paper's MLP 784-20-10 has 15,910 parameters; deeper nets add up layer by layer."""
    data = synthetic_data()
    assert MNISTProblem(hidden=(20,), data=data).dim == 784 * 20 + 20 + 20 * 10 + 10 == 15910
    assert MNISTProblem(hidden=(20, 20), data=data).dim == 784 * 20 + 20 + 20 * 20 + 20 + 20 * 10 + 10
    assert MNISTProblem(hidden=(), data=data).dim == 7850


def reference_mlp(problem, theta_row, activation):
    """An nn.Sequential with the weights copied out of one flat theta (weights stored as (n_in, n_out))."""
    layers, start = [], 0
    for i, (n_in, n_out) in enumerate(problem.layer_shapes):
        lin = nn.Linear(n_in, n_out).double()
        with torch.no_grad():
            lin.weight.copy_(theta_row[start : start + n_in * n_out].reshape(n_in, n_out).T)
            start += n_in * n_out
            lin.bias.copy_(theta_row[start : start + n_out])
            start += n_out
        layers.append(lin)
        if i < len(problem.layer_shapes) - 1:
            layers.append(activation())
    assert start == problem.dim
    return nn.Sequential(*layers)


@pytest.mark.parametrize(
    ("hidden", "activation", "module"),
    [((20,), "sigmoid", nn.Sigmoid), ((7, 5), "relu", nn.ReLU), ((6,), "tanh", nn.Tanh)],
)
def test_mnist_forward_matches_sequential(hidden, activation, module):
    """forward(theta, x) equals nn.Sequential with each task's weights, for every task of the batch."""
    prob = MNISTProblem(hidden=hidden, activation=activation, init="pytorch", data=synthetic_data())
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(3, prob.dim, generator=gen, dtype=torch.float64) * 0.1
    x = torch.rand(3, 6, 784, generator=gen, dtype=torch.float64)
    logits = prob.forward(theta, x)
    assert logits.shape == (3, 6, 10)
    for b in range(3):
        torch.testing.assert_close(logits[b], reference_mlp(prob, theta[b], module)(x[b]), rtol=1e-10, atol=1e-12)


def test_mnist_loss_is_cross_entropy_on_its_minibatch():
    """loss(theta, step) is the mean cross-entropy of each task's MLP on that step's minibatch."""
    data = synthetic_data()
    prob = MNISTProblem(hidden=(5,), batch_size=16, data=data)
    tasks = prob.tasks("train", range(2))
    theta = torch.randn(2, prob.dim, generator=torch.Generator().manual_seed(1)) * 0.1
    loss = tasks.loss(theta, 3)
    assert loss.shape == (2,)
    idx = tasks.batch_indices(3)
    assert idx.shape == (2, 16)
    for b in range(2):
        net = reference_mlp(prob, theta[b].double(), nn.Sigmoid)
        expected = nn.functional.cross_entropy(net(data.train_images[idx[b]].double()), data.train_labels[idx[b]])
        assert loss[b].item() == pytest.approx(expected.item(), rel=1e-5)


def test_mnist_minibatches_reproducible_in_any_order():
    """Batch indices depend only on (seed, step), not on the order in which steps are asked for."""
    prob = MNISTProblem(hidden=(4,), batch_size=8, data=synthetic_data())
    a = prob.tasks("train", range(3))
    b = prob.tasks("train", range(3))
    late = b.batch_indices(5).clone()
    early = [a.batch_indices(s).clone() for s in range(6)]
    assert torch.equal(early[5], late)
    assert torch.equal(early[0], b.batch_indices(0))
    assert not torch.equal(early[0], early[1])
    assert not torch.equal(early[0][0], early[0][1])  # each task has its own stream
    single = prob.tasks("train", [1])
    assert torch.equal(single.batch_indices(2)[0], early[2][1])  # same task in another batch: same stream
    with pytest.raises(ValueError, match="step"):
        a.batch_indices(-1)


def test_mnist_init_theta():
    """init 'normal' draws N(0, init_scale^2); 'pytorch' draws within +-1/sqrt(fan_in); same seed same theta."""
    data = synthetic_data()
    prob = MNISTProblem(hidden=(20,), init="normal", init_scale=0.01, data=data)
    theta = prob.tasks("train", range(2)).init_theta()
    assert theta.shape == (2, 15910)
    assert abs(theta.std().item() - 0.01) < 5e-4 and abs(theta.mean().item()) < 5e-4
    assert torch.equal(theta, prob.tasks("train", range(2)).init_theta())
    prob = MNISTProblem(hidden=(20,), init="pytorch", data=data)
    theta = prob.tasks("train", [0]).init_theta()[0]
    first = theta[: 784 * 20 + 20]
    second = theta[784 * 20 + 20 :]
    assert first.abs().max() <= 1 / 784**0.5 and first.abs().max() > 0.9 / 784**0.5
    assert second.abs().max() <= 1 / 20**0.5 and second.abs().max() > 0.9 / 20**0.5


def test_mnist_splits_use_the_right_images():
    """test tasks draw from the held-out images, train and val from the meta-training images."""
    data = synthetic_data()
    prob = MNISTProblem(hidden=(3,), batch_size=4, data=data)
    test_tasks = prob.tasks("dev", range(2))
    assert torch.equal(test_tasks.images, data.test_images) and torch.equal(test_tasks.labels, data.test_labels)
    for split in ("train", "val"):
        tasks = prob.tasks(split, range(2))
        assert torch.equal(tasks.images, data.train_images) and torch.equal(tasks.labels, data.train_labels)
    # and the loss really reads them: the test images are offset by 10, so the logits differ
    theta = test_tasks.init_theta()
    idx = test_tasks.batch_indices(0)
    logits = prob.forward(theta, data.test_images[idx])
    expected = nn.functional.cross_entropy(logits.reshape(-1, 10), data.test_labels[idx].reshape(-1), reduction="none")
    torch.testing.assert_close(test_tasks.loss(theta, 0), expected.view(2, 4).mean(-1))


def test_mnist_unflatten_shape_check():
    """unflatten rejects a theta of the wrong shape."""
    prob = MNISTProblem(hidden=(3,), data=synthetic_data())
    with pytest.raises(ValueError, match="expected"):
        prob.unflatten(torch.zeros(prob.dim))
    with pytest.raises(ValueError, match="expected"):
        prob.unflatten(torch.zeros(2, prob.dim + 1))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"activation": "softplus"}, "activation"),
        ({"hidden": (0,)}, "hidden"),
        ({"hidden": (20, -1)}, "hidden"),
        ({"hidden": (2.5,)}, "hidden"),
        ({"init": "xavier"}, "init"),
        ({"batch_size": 0}, "batch_size"),
        ({"init_scale": 0.0}, "init_scale"),
    ],
)
def test_mnist_validation(kwargs, name):
    """Bad MLP settings are a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=rf"\b{name}="):
        MNISTProblem(data=synthetic_data(), **kwargs)


def test_make_problem():
    """make_problem builds either family by name and rejects others."""
    assert isinstance(make_problem("quadratic", dim=3), QuadraticProblem)
    assert make_problem("quadratic", dim=3).dim == 3
    prob = make_problem("mnist", hidden=(4,), data=synthetic_data())
    assert isinstance(prob, MNISTProblem) and prob.dim == 784 * 4 + 4 + 40 + 10
    with pytest.raises(ValueError, match="problem='cifar'"):
        make_problem("cifar")


def test_mnist_on_shipped_data():
    """With the shipped offline data, test tasks use the 2,000 held-out images and losses start near log 10."""
    data = load_mnist(verbose=False)
    prob = MNISTProblem(data=data)
    assert prob.data is data
    tasks = prob.tasks("dev", range(2))
    assert tasks.images.shape == (2000, 784) and torch.equal(tasks.images, data.test_images)
    assert prob.tasks("train", [0]).images.shape == (8000, 784)
    loss = tasks.loss(tasks.init_theta(), 0)
    assert loss.shape == (2,)
    assert torch.allclose(loss, torch.full((2,), 2.302585), atol=0.05)  # tiny init weights: near-uniform logits


def test_quadratic_loss_at_many_points_matches_loss():
    """loss_at evaluates each task at many points with the same formula as loss."""
    tasks = QuadraticProblem(dim=3, scale=2.0).tasks("dev", range(2))
    points = torch.randn(2, 5, 3)
    many = tasks.loss_at(points)
    one_by_one = torch.stack([tasks.loss(points[:, k]) for k in range(5)], dim=1)
    torch.testing.assert_close(many, one_by_one)


def test_mlp_model_is_pytorch_default():
    """Layer sizes follow ``hidden``; weights are within nn.Linear's default bound 1/sqrt(fan_in)."""
    torch.manual_seed(0)
    model = l2l.mlp_model((30, 7), "relu")
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 30), (30, 7), (7, 10)]
    assert isinstance(model[1], torch.nn.ReLU) and len(model) == 5
    assert linears[0].weight.abs().max() <= 1 / math.sqrt(784)
    with pytest.raises(ValueError, match="activation='gelu'"):
        l2l.mlp_model((20,), "gelu")
