"""The MNIST optimizees: an MLP whose flattened weights and biases are theta (paper, Section 3.2, Figures 4-5).

:class:`MNISTProblem` holds the batched, functional form the optimizers are meta-trained and evaluated on;
:func:`mlp_model` is its ``nn.Sequential`` twin, the model a user trains with ``LearnedOptimizer``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l2l_helpers.optimizees.base import HELD_OUT_SPLITS, MinibatchTasks, Problem
from l2l_helpers.optimizees.data import MNISTData, load_mnist

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}
INITS = ("normal", "pytorch", "mixed")


class MLPTasks(MinibatchTasks):
    """Cross-entropy of one MLP per task on its own stream of minibatches (uniform, with replacement)."""

    def loss(self, theta: torch.Tensor, step: int = 0) -> torch.Tensor:
        copies = self.copies(theta)
        idx = self.batch_indices(step)  # (B, 128)
        if copies == 1:
            logits = self.problem.forward(theta, self.images[idx])  # (B, 128, 10)
        else:
            logits = self.problem.forward_copies(theta, self.images[idx])  # (copies * B, 128, 10)
        labels = self.labels[idx].repeat(copies, 1)  # (copies * B, 128)
        per_example = F.cross_entropy(logits.reshape(-1, 10), labels.reshape(-1), reduction="none")
        return per_example.view(labels.shape).mean(-1)


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
        sizes = [size for n_in, n_out in self.layer_shapes for size in (n_in * n_out, n_out)]
        parts = theta.split(sizes, dim=1)  # one split, not a slice per piece: its gradient is a single cat
        return [
            (parts[2 * i].view(-1, n_in, n_out), parts[2 * i + 1].view(-1, 1, n_out))
            for i, (n_in, n_out) in enumerate(self.layer_shapes)
        ]

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n, 10) of each task's MLP on its own inputs x (B, n, 784)."""
        act = ACTIVATIONS[self.activation]
        layers = self.unflatten(theta)
        for i, (w, b) in enumerate(layers):
            x = torch.baddbmm(b, x, w)  # (B, n, n_out)
            if i < len(layers) - 1:
                x = act(x)
        return x

    def forward_copies(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits (copies * B, n, 10) of copies of B tasks' MLPs, theta (copies * B, dim), on the tasks' inputs x
        (B, n, 784): row c * B + i reads task i's inputs.

        The first layer reads each task's inputs once for all its copies: the copies' weights side by side,
        (B, 784, copies * n_out), in one batched product, instead of copying the inputs for every copy.
        """
        batch = x.shape[0]
        copies = theta.shape[0] // batch
        layers = self.unflatten(theta)
        w, b = layers[0]  # (copies * B, 784, n_out), (copies * B, 1, n_out)
        n_in, n_out = w.shape[1:]
        side_by_side = w.view(copies, batch, n_in, n_out).permute(1, 2, 0, 3).reshape(batch, n_in, copies * n_out)
        h = torch.bmm(x, side_by_side)  # (B, n, copies * n_out)
        h = h.view(batch, -1, copies, n_out).permute(2, 0, 1, 3).reshape(copies * batch, -1, n_out) + b
        act = ACTIVATIONS[self.activation]
        for w, b in layers[1:]:
            h = torch.baddbmm(b, act(h), w)  # (copies * B, n, n_out)
        return h

    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> MLPTasks:
        held_out = split in HELD_OUT_SPLITS  # held-out images: never seen in meta-training
        key = (held_out, str(device))
        if key not in self._on_device:  # copy the images to the device once, not for every task batch
            data = self.data
            images, labels = (
                (data.test_images, data.test_labels) if held_out else (data.train_images, data.train_labels)
            )
            self._on_device[key] = (images.to(device), labels.to(device))
        return MLPTasks(self, seeds, *self._on_device[key], device)


def mlp_model(hidden: Sequence[int] = (20,), activation: str = "sigmoid") -> nn.Sequential:
    """The ``nn.Sequential`` twin of :class:`MNISTProblem`'s MLP, PyTorch's default initialisation (seed it first)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is unknown; use one of: {', '.join(ACTIVATIONS)}")
    acts = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
    sizes = (784, *hidden, 10)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(acts[activation]())
    return nn.Sequential(*layers)
