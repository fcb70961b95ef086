"""Optimizees f(theta): families of problems sampled by seed (paper, Section 3; notebooks 05-08).

A :class:`Problem` is a family of functions. ``problem.tasks(split, indices)`` draws a batch of
``n_tasks`` functions, each with its own random seed, as a :class:`TaskBatch`:

* ``theta = tasks.init_theta()`` has shape ``(n_tasks, dim)``: one row of parameters per task;
* ``tasks.loss(theta, step)`` has shape ``(n_tasks,)`` and is an explicit, differentiable function of
  ``theta``, so the unrolled optimization graph reaches the optimizer's parameters phi.

Tasks are independent, so the gradient of ``loss.sum()`` with respect to ``theta`` holds every task's
own gradient. The splits ``train``, ``val`` and ``test`` use disjoint seed ranges.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

from .baselines import DEFAULT_LR_GRID
from .data import MNISTData, load_mnist

#: First seed of each split; a split holds SPLIT_SIZE seeds, so the splits are disjoint.
SPLIT_OFFSETS: dict[str, int] = {"train": 0, "val": 1_000_000_000, "test": 2_000_000_000}
SPLIT_SIZE = 1_000_000_000

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}
INITS = ("normal", "pytorch", "mixed")


def task_seeds(split: str, indices: Iterable[int]) -> list[int]:
    """Seeds of the tasks ``indices`` of ``split``; different splits never share a seed."""
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split={split!r} is unknown; use one of: {', '.join(SPLIT_OFFSETS)}")
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
        """Loss of each task at ``theta`` (n_tasks, dim) on step ``step``'s data: shape (n_tasks,)."""


class Problem(ABC):
    """A family of optimizees."""

    name: str
    dim: int
    #: Learning rates the baselines are tuned over on this family's training tasks.
    lr_grid: tuple[float, ...] = DEFAULT_LR_GRID

    def tasks(self, split: str, indices: Sequence[int] | range, device: torch.device | str = "cpu") -> TaskBatch:
        """Draw the tasks ``indices`` of ``split`` (``train``, ``val`` or ``test``)."""
        return self._make_tasks(task_seeds(split, indices), torch.device(device), split)

    @abstractmethod
    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> TaskBatch: ...

    def describe(self) -> str:
        """One line for logs and checkpoints."""
        return f"{self.name} (dim {self.dim})"


# --------------------------------------------------------------------------------------------
# 10-d quadratics (paper, Section 3.1, Figure 4 left)


class QuadraticTasks(TaskBatch):
    """f(theta) = ||W theta - y||^2 for each task's own W (d x d) and y (d)."""

    def __init__(self, seeds: list[int], dim: int, init_scale: float, device: torch.device, scale: float = 1.0) -> None:
        self.seeds, self.dim, self.device, self.scale = seeds, dim, device, scale
        ws, ys, thetas = [], [], []
        for seed in seeds:  # drawn on the CPU so that every device sees the same functions
            gen = torch.Generator().manual_seed(seed)
            ws.append(torch.randn(dim, dim, generator=gen))
            ys.append(torch.randn(dim, generator=gen))
            thetas.append(torch.randn(dim, generator=gen) * init_scale)
        self.W = torch.stack(ws).to(device)  # (B, d, d)
        self.y = torch.stack(ys).to(device)  # (B, d)
        self._theta0 = torch.stack(thetas).to(device)  # (B, d)

    def init_theta(self) -> torch.Tensor:
        return self._theta0.clone()

    def loss(self, theta: torch.Tensor, step: int = 0) -> torch.Tensor:
        return self.loss_at(theta.unsqueeze(1)).squeeze(1)

    def loss_at(self, points: torch.Tensor) -> torch.Tensor:
        """f_b at many points per task: points (B, N, d) -> losses (B, N) (e.g. a grid for a contour plot)."""
        residual = points @ self.W.transpose(1, 2).to(points.dtype) - self.y.unsqueeze(1).to(points.dtype)
        return self.scale * (residual * residual).sum(-1)


class QuadraticProblem(Problem):
    """The paper's synthetic family: f(theta) = ||W theta - y||^2, W and y i.i.d. standard Gaussian.

    ``scale`` multiplies f (1 in the paper): a way to change the gradients' magnitude (notebook 03).
    """

    def __init__(self, dim: int = 10, init_scale: float = 0.01, scale: float = 1.0) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim={dim!r} must be a positive integer (the paper uses 10)")
        if not (init_scale >= 0 and math.isfinite(init_scale)):
            raise ValueError(f"init_scale={init_scale!r} must be a non-negative finite number")
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale={scale!r} must be a positive finite number")
        self.name, self.dim, self.init_scale, self.scale = "quadratic", dim, float(init_scale), float(scale)

    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> QuadraticTasks:
        return QuadraticTasks(seeds, self.dim, self.init_scale, device, self.scale)

    def describe(self) -> str:
        factor = "" if self.scale == 1 else f"{self.scale:g} * "
        return f"quadratic: {factor}||W theta - y||^2 with W {self.dim}x{self.dim}, y {self.dim}-d, i.i.d. N(0, 1)"


# --------------------------------------------------------------------------------------------
# MLP on MNIST (paper, Section 3.2, Figures 4 and 5)


class MLPTasks(TaskBatch):
    """Cross-entropy of one MLP per task on its own stream of minibatches (uniform, with replacement)."""

    def __init__(
        self, problem: MNISTProblem, seeds: list[int], images: torch.Tensor, labels: torch.Tensor, device: torch.device
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

    def loss(self, theta: torch.Tensor, step: int = 0) -> torch.Tensor:
        idx = self.batch_indices(step)  # (B, 128)
        logits = self.problem.forward(theta, self.images[idx])  # (B, 128, 10)
        per_example = F.cross_entropy(logits.reshape(-1, 10), self.labels[idx].reshape(-1), reduction="none")
        return per_example.view(idx.shape).mean(-1)


class MNISTProblem(Problem):
    """An MLP classifying MNIST digits; its flattened weights and biases are theta.

    Paper default: one hidden layer of 20 sigmoid units, minibatches of 128. Initialisation
    ``normal`` draws every weight and bias from N(0, init_scale^2) (authors' code: 0.01);
    ``pytorch`` uses ``nn.Linear``'s default U(-1/sqrt(fan_in), 1/sqrt(fan_in)); ``mixed`` picks one
    of the two per task (a coin flip from the task's seed): a training curriculum for an optimizer that
    must also work on networks built with PyTorch defaults.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (20,),
        activation: str = "sigmoid",
        batch_size: int = 128,
        init: str = "normal",
        init_scale: float = 0.01,
        data: MNISTData | None = None,
    ) -> None:
        hidden = tuple(hidden)
        if any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in hidden):
            raise ValueError(f"hidden={hidden!r} must be a sequence of positive layer sizes, e.g. (20,)")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is unknown; use one of: {', '.join(ACTIVATIONS)}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be a positive integer (the paper uses 128)")
        if init not in INITS:
            raise ValueError(f"init={init!r} is unknown; use one of: {', '.join(INITS)}")
        if not (init_scale > 0 and math.isfinite(init_scale)):
            raise ValueError(f"init_scale={init_scale!r} must be a positive finite number")
        self.hidden, self.activation, self.batch_size = hidden, activation, batch_size
        self.init, self.init_scale = init, float(init_scale)
        self._data = data
        self._on_device: dict[tuple[bool, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.sizes = (784, *hidden, 10)
        self.layer_shapes = [(self.sizes[i], self.sizes[i + 1]) for i in range(len(self.sizes) - 1)]
        self.dim = sum(n_in * n_out + n_out for n_in, n_out in self.layer_shapes)
        self.name = "mnist"

    @property
    def data(self) -> MNISTData:
        """The MNIST data, loaded on first use."""
        if self._data is None:
            self._data = load_mnist()
        return self._data

    def describe(self) -> str:
        layers = "x".join(map(str, self.hidden))
        return f"mnist: MLP 784-{layers}-10, {self.activation}, batch {self.batch_size}, {self.dim} parameters"

    def sample_theta(self, gen: torch.Generator) -> torch.Tensor:
        """One flat initial theta, layer by layer: weight (n_in * n_out, row-major (in, out)), bias."""
        init = self.init
        if init == "mixed":
            init = "normal" if torch.rand((), generator=gen) < 0.5 else "pytorch"
        parts = []
        for n_in, n_out in self.layer_shapes:
            if init == "normal":
                parts.append(torch.randn(n_in * n_out + n_out, generator=gen) * self.init_scale)
            else:
                bound = 1.0 / math.sqrt(n_in)
                parts.append((torch.rand(n_in * n_out + n_out, generator=gen) * 2 - 1) * bound)
        return torch.cat(parts)

    def unflatten(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Views (weight (B, n_in, n_out), bias (B, 1, n_out)) of a batch of flat thetas (B, dim)."""
        if theta.dim() != 2 or theta.shape[1] != self.dim:
            raise ValueError(f"theta has shape {tuple(theta.shape)}, expected (n_tasks, {self.dim})")
        layers, start = [], 0
        for n_in, n_out in self.layer_shapes:
            w = theta[:, start : start + n_in * n_out].view(-1, n_in, n_out)
            start += n_in * n_out
            b = theta[:, start : start + n_out].view(-1, 1, n_out)
            start += n_out
            layers.append((w, b))
        return layers

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n, 10) of each task's MLP on its own inputs x (B, n, 784)."""
        act = ACTIVATIONS[self.activation]
        layers = self.unflatten(theta)
        for i, (w, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w)  # (B, n, n_out)
            if i < len(layers) - 1:
                x = act(x)
        return x

    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> MLPTasks:
        held_out = split == "test"  # held-out images: never seen in meta-training
        key = (held_out, str(device))
        if key not in self._on_device:  # copy the images to the device once, not for every task batch
            data = self.data
            images, labels = (
                (data.test_images, data.test_labels) if held_out else (data.train_images, data.train_labels)
            )
            self._on_device[key] = (images.to(device), labels.to(device))
        return MLPTasks(self, seeds, *self._on_device[key], device)


PROBLEMS = ("quadratic", "mnist", "neural_art")


def make_problem(name: str, **kwargs) -> Problem:
    """Build a problem family by name: ``quadratic``, ``mnist`` or ``neural_art`` (kwargs go to its class)."""
    if name == "quadratic":
        return QuadraticProblem(**kwargs)
    if name == "mnist":
        return MNISTProblem(**kwargs)
    if name == "neural_art":
        from .neural_art import NeuralArtProblem

        return NeuralArtProblem(**kwargs)
    raise ValueError(f"problem={name!r} is unknown; use one of: {', '.join(PROBLEMS)}")
