"""The optimizee interface: a :class:`Problem` is a family of functions f(theta) sampled by seed (paper, Section 3).

A :class:`Problem` is a family of functions. ``problem.tasks(split, indices)`` draws a batch of
``n_tasks`` functions, each with its own random seed, as a :class:`TaskBatch`:

* ``theta = tasks.init_theta()`` has shape ``(n_tasks, dim)``: one row of parameters per task;
* ``tasks.loss(theta, step)`` has shape ``(n_tasks,)`` and is an explicit, differentiable function of
  ``theta``, so the unrolled optimization graph reaches the optimizer's parameters phi.

Tasks are independent, so the gradient of ``loss.sum()`` with respect to ``theta`` holds every task's
own gradient. ``tasks.loss`` also takes *copies* of the batch, theta of shape ``(copies * n_tasks, dim)``
where row ``c * n_tasks + i`` is a copy of task i (same function, same minibatches): how several optimizers
or a whole grid of learning rates run on the same tasks as one batch (:mod:`~l2l_helpers.evaluation.loops`).
The splits ``train``, ``val``, ``dev`` and ``test`` use disjoint seed ranges: meta-training draws ``train``
tasks and selects on ``val``; every development look (choosing a recipe, a task count, a rule) evaluates
``dev`` tasks; ``test`` is the locked range the notebooks' claims are measured on, opened only for them
(:func:`check_unlocked`). ``dev`` and ``test`` both draw from the held-out data (MNIST's test images, the
held-out photos of :mod:`~l2l_helpers.optimizees.neural_art`). The families live one per module beside
this one (``quadratic``, ``mnist``, ``neural_art``); :func:`make_problem` builds one by name.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from l2l_helpers.optimizer.baselines import DEFAULT_LR_GRID

#: First seed of each split; a split holds SPLIT_SIZE seeds, so the splits are disjoint.
SPLIT_OFFSETS: dict[str, int] = {"train": 0, "val": 1_000_000_000, "dev": 2_000_000_000, "test": 3_000_000_000}
SPLIT_SIZE = 1_000_000_000
#: The splits that evaluate on held-out data (images or photos never used in meta-training).
HELD_OUT_SPLITS = ("dev", "test")
#: The locked split: the claims' tasks. Development (tuning recipes, task counts, rules) uses ``dev``.
LOCKED_SPLIT = "test"
#: Set to 1 (the test suite does) to make any use of the locked split an error.
LOCK_ENV = "L2L_LOCK_TEST"


class LockedSplitError(RuntimeError):
    """The locked ``test`` split was asked for while it is locked (``L2L_LOCK_TEST=1``, as in ``make test``)."""


def check_unlocked(split: str) -> None:
    """Raise :class:`LockedSplitError` if ``split`` is the locked one and ``$L2L_LOCK_TEST`` locks it."""
    import os

    if split == LOCKED_SPLIT and os.environ.get(LOCK_ENV, "").strip() == "1":
        raise LockedSplitError(
            f"the {LOCKED_SPLIT!r} split is locked ({LOCK_ENV}=1): development and tests evaluate on split='dev'"
        )


def task_seeds(split: str, indices: Iterable[int]) -> list[int]:
    """Seeds of the tasks ``indices`` of ``split``; different splits never share a seed."""
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split={split!r} is unknown; use one of: {', '.join(SPLIT_OFFSETS)}")
    check_unlocked(split)
    seeds = []
    for i in indices:
        if not 0 <= int(i) < SPLIT_SIZE:
            raise ValueError(f"task index {i} is out of range [0, {SPLIT_SIZE})")
        seeds.append(SPLIT_OFFSETS[split] + int(i))
    if not seeds:
        raise ValueError("indices is empty: ask for at least one task")
    return seeds


class TaskBatch(ABC):
    """A batch of sampled functions, optimized together but independently."""

    seeds: list[int]
    dim: int
    device: torch.device

    @property
    def n_tasks(self) -> int:
        """Number of tasks in the batch."""
        return len(self.seeds)

    @abstractmethod
    def init_theta(self) -> torch.Tensor:
        """Initial parameters, shape (n_tasks, dim); the same for the same seeds."""

    @abstractmethod
    def loss(self, theta: torch.Tensor, step: int = 0) -> torch.Tensor:
        """Loss of each row of ``theta`` on step ``step``'s data: shape (rows,).

        ``theta`` is (n_tasks, dim), or (copies * n_tasks, dim) for copies of the batch: row ``c * n_tasks + i``
        is evaluated on task i (:meth:`copies`).
        """

    def copies(self, theta: torch.Tensor) -> int:
        """How many copies of the batch ``theta`` holds (rows / n_tasks); a clear error for a wrong shape."""
        rows = theta.shape[0] if theta.dim() == 2 else 0
        if theta.dim() != 2 or theta.shape[1] != self.dim or rows == 0 or rows % self.n_tasks:
            raise ValueError(
                f"theta has shape {tuple(theta.shape)}, expected (copies * {self.n_tasks}, {self.dim}): "
                "one row per task, or per task and copy"
            )
        return rows // self.n_tasks


class MinibatchTasks(TaskBatch):
    """Tasks that train a network on their own stream of minibatches (uniform, with replacement): the MNIST MLPs and
    the convnets. ``problem`` gives ``dim``, ``batch_size`` and ``sample_theta(generator)``; each task's seed sets its
    initial theta and then its minibatches. Subclasses define the loss."""

    def __init__(
        self, problem: Any, seeds: list[int], images: torch.Tensor, labels: torch.Tensor, device: torch.device
    ) -> None:
        self.problem, self.seeds, self.dim, self.device = problem, seeds, problem.dim, device
        self.images, self.labels = images.to(device), labels.to(device)
        self._gens = [torch.Generator().manual_seed(seed) for seed in seeds]
        self._theta0 = torch.stack([problem.sample_theta(gen) for gen in self._gens]).to(device)
        self._batches: list[torch.Tensor] = []  # step -> (B, batch_size) example indices

    def init_theta(self) -> torch.Tensor:
        return self._theta0.clone()

    def batch_indices(self, step: int) -> torch.Tensor:
        """Indices of step ``step``'s minibatch for every task: shape (n_tasks, batch_size)."""
        if step < 0:
            raise ValueError(f"step={step} must be >= 0")
        n, size = len(self.labels), self.problem.batch_size
        while len(self._batches) <= step:  # drawn in order, so any access order gives the same batches
            rows = [torch.randint(0, n, (size,), generator=gen) for gen in self._gens]
            self._batches.append(torch.stack(rows).to(self.device))
        return self._batches[step]


class Problem(ABC):
    """A family of optimizees."""

    name: str
    dim: int
    #: Learning rates the baselines are tuned over on this family's training tasks.
    lr_grid: tuple[float, ...] = DEFAULT_LR_GRID
    #: At most this many rows of theta (tasks x copies) per batched pass, or None for no bound: a family whose
    #: cost per row is large and compute-bound gains nothing from larger batches and loses cache (neural art).
    rows_per_pass: int | None = None

    def tasks(self, split: str, indices: Sequence[int] | range, device: torch.device | str = "cpu") -> TaskBatch:
        """Draw the tasks ``indices`` of ``split`` (``train``, ``val``, ``dev`` or ``test``)."""
        return self._make_tasks(task_seeds(split, indices), torch.device(device), split)

    @abstractmethod
    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> TaskBatch: ...

    def describe(self) -> str:
        """One line for logs and checkpoints."""
        return f"{self.name} (dim {self.dim})"


#: The problem families by name, and the module:class that builds each (imported on first use: no cycle).
REGISTRY: dict[str, str] = {
    "quadratic": "quadratic:QuadraticProblem",
    "mnist": "mnist:MNISTProblem",
    "neural_art": "neural_art:NeuralArtProblem",
    "conv": "conv:ConvProblem",
}
PROBLEMS = tuple(REGISTRY)


def make_problem(name: str, **kwargs: Any) -> Problem:
    """Build a problem family by name: ``quadratic``, ``mnist``, ``neural_art`` or ``conv`` (kwargs go to its class)."""
    if name not in REGISTRY:
        raise ValueError(f"problem={name!r} is unknown; use one of: {', '.join(PROBLEMS)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)(**kwargs)
