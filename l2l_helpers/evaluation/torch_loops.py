"""Ordinary PyTorch training loops: ``nn.Module`` models trained with a ``torch.optim.Optimizer``, the learned one
(:class:`~l2l_helpers.optimizer.learned_optimizer.LearnedOptimizer`) or a hand-designed one (notebook 06).

This is how a user meets the learned optimizer: a plain ``nn.Sequential`` MLP with PyTorch's default
initialisation (:func:`~l2l_helpers.optimizees.mnist.mlp_model`), minibatches drawn with a seed, one
``zero_grad / backward / step`` per minibatch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from l2l_helpers.evaluation.step_cost import timed_training_curve
from l2l_helpers.evaluation.tuning import grid_search
from l2l_helpers.optimizees.base import HELD_OUT_SPLITS, task_seeds
from l2l_helpers.optimizees.mnist import MNISTProblem, mlp_model
from l2l_helpers.optimizer.baselines import DEFAULT_LR_GRID
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM
from l2l_helpers.optimizer.learned_optimizer import LearnedOptimizer
from l2l_helpers.runtime import check_positive_int


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
    return np.array(timed_training_curve(model, optimizer, images, labels, steps, batch_size, seed)[0])


def _torch_curves(
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    problem: MNISTProblem,
    split: str,
    n_models: int,
    steps: int,
    device: torch.device | str,
) -> np.ndarray:
    held_out = split in HELD_OUT_SPLITS
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


#: ``torch.optim`` counterparts of the package's baselines (:mod:`~l2l_helpers.optimizer.baselines`), as a user
#: writes them.
TORCH_BASELINES: dict[str, Callable[[Any, float], torch.optim.Optimizer]] = {
    "SGD": lambda params, lr: torch.optim.SGD(params, lr=lr),
    "NAG": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "RMSprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr),
    "Adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
}


def sequential_comparison(
    nets: CoordinatewiseLSTM | Mapping[str, CoordinatewiseLSTM],
    problem: MNISTProblem | None = None,
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tune: int = 4,
    n_models: int = 20,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
    baselines: Sequence[str] = tuple(TORCH_BASELINES),
    split: str = "dev",
) -> dict[str, Any]:
    """``LearnedOptimizer`` vs tuned ``torch.optim`` SGD, NAG (Nesterov, momentum 0.9), RMSprop and Adam on
    ``nn.Sequential`` MLPs with PyTorch's default init: what a user does (notebook 06).

    ``nets``: one learned optimizer (named ``"LSTM"``) or several by name (e.g. one per meta-training seed). Each
    baseline's learning rate is the best of ``grid`` (stepping past its edge, :func:`grid_search`) by the mean
    final loss of ``n_tune`` models trained on the meta-training images; every optimizer then trains the same
    ``n_models`` fresh models (held-out seeds of ``split``: same initialisations, same minibatches) on the held-out
    images.
    Returns ``{"lrs": {baseline: lr}, "scores": {baseline: {lr: score}}, "curves": {name: (n_models, steps + 1)}}``
    (learned optimizers first).
    """
    problem = problem or MNISTProblem()
    learned = {"LSTM": nets} if isinstance(nets, CoordinatewiseLSTM) else dict(nets)
    if not learned:
        raise ValueError("nets is empty: give a CoordinatewiseLSTM or a mapping name -> network")
    if unknown := [b for b in baselines if b not in TORCH_BASELINES]:
        raise ValueError(f"baselines {unknown} are unknown; use some of: {', '.join(TORCH_BASELINES)}")
    if clash := sorted(set(learned) & set(baselines)):
        raise ValueError(f"learned optimizers named {clash} clash with the baselines' names: rename them")
    check_positive_int("n_tune", n_tune)
    lrs, scores = {}, {}
    for name in baselines:
        make = TORCH_BASELINES[name]

        def score(lr: float, make: Callable[[Any, float], torch.optim.Optimizer] = make) -> float:
            curves = _torch_curves(lambda m: make(m.parameters(), lr), problem, "train", n_tune, steps, device)
            return float(curves[:, -1].mean())

        scores[name] = grid_search(score, grid, progress=progress, desc=f"tuning torch.optim {name}")
        lrs[name] = min(scores[name], key=scores[name].__getitem__)
    curves = {
        name: _torch_curves(
            lambda m, net=net: LearnedOptimizer(m.parameters(), net), problem, split, n_models, steps, device
        )
        for name, net in learned.items()
    }
    for name in baselines:
        make, lr = TORCH_BASELINES[name], lrs[name]
        curves[name] = _torch_curves(
            lambda m, make=make, lr=lr: make(m.parameters(), lr), problem, split, n_models, steps, device
        )
    return {"lrs": lrs, "scores": scores, "curves": curves}
