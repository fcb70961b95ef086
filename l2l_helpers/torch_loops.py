"""Ordinary PyTorch training loops: ``nn.Module`` models trained with a ``torch.optim.Optimizer``, the learned one
(:class:`~l2l_helpers.learned_optimizer.LearnedOptimizer`) or a hand-designed one (notebook 06).

This is how a user meets the learned optimizer: a plain ``nn.Sequential`` MLP with PyTorch's default
initialisation (:func:`~l2l_helpers.optimizees.mnist.mlp_model`), minibatches drawn with a seed, one
``zero_grad / backward / step`` per minibatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .baselines import DEFAULT_LR_GRID
from .coordinatewise_lstm import CoordinatewiseLSTM
from .evaluation import grid_search
from .learned_optimizer import LearnedOptimizer
from .optimizees.base import task_seeds
from .optimizees.mnist import MNISTProblem, mlp_model
from .runtime import check_positive_int


def torch_training_curve(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
) -> np.ndarray:
    """An ordinary training loop; returns the minibatch loss before each step and after the last, (steps + 1,)."""
    check_positive_int("steps", steps)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for t in range(steps + 1):
        idx = torch.randint(0, len(labels), (batch_size,), generator=gen).to(images.device)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        losses.append(float(loss.detach()))
        if t < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return np.array(losses)


def _torch_curves(
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    problem: MNISTProblem,
    split: str,
    n_models: int,
    steps: int,
    device: torch.device | str,
) -> np.ndarray:
    held_out = split == "test"
    data = problem.data
    images = (data.test_images if held_out else data.train_images).to(device)
    labels = (data.test_labels if held_out else data.train_labels).to(device)
    curves = []
    for seed in task_seeds(split, range(n_models)):
        torch.manual_seed(seed)
        model = mlp_model(problem.hidden, problem.activation).to(device)
        curves.append(
            torch_training_curve(model, make_optimizer(model), images, labels, steps, problem.batch_size, seed)
        )
    return np.stack(curves)


def sequential_comparison(
    net: CoordinatewiseLSTM,
    problem: MNISTProblem | None = None,
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tune: int = 4,
    n_models: int = 20,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """``LearnedOptimizer(net)`` vs ``torch.optim.Adam`` on ``nn.Sequential`` MLPs with PyTorch's init.

    Adam's learning rate is the best of ``grid`` (stepping past its edge, :func:`grid_search`) on ``n_tune``
    models trained on the meta-training images; both optimizers are then run on ``n_models`` fresh models
    (held-out seeds) trained on the held-out images. Returns ``{"adam_lr", "adam_scores", "curves": {"LSTM":
    (n_models, steps + 1), "Adam": ...}}``.
    """
    problem = problem or MNISTProblem()

    def score(lr: float) -> float:  # mean final loss on models trained on the meta-training images
        optimizer = lambda m: torch.optim.Adam(m.parameters(), lr=lr)  # noqa: E731
        return float(_torch_curves(optimizer, problem, "train", n_tune, steps, device)[:, -1].mean())

    scores = grid_search(score, grid, progress=progress, desc="tuning torch.optim.Adam")
    adam_lr = min(scores, key=scores.__getitem__)
    curves = {
        "LSTM": _torch_curves(
            lambda m: LearnedOptimizer(m.parameters(), net), problem, "test", n_models, steps, device
        ),
        "Adam": _torch_curves(
            lambda m: torch.optim.Adam(m.parameters(), lr=adam_lr), problem, "test", n_models, steps, device
        ),
    }
    return {"adam_lr": adam_lr, "adam_scores": scores, "curves": curves}
