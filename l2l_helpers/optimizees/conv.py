"""Section 3.3's convolutional networks as optimizees: theta is a small convnet's flat parameters (notebook 10).

The paper's network (Figure 6; sizes from the authors' code): three convolutional layers of 16 channels with 5x5
kernels, each followed by batch normalization, ReLU and 2x2 max pooling; then a fully connected layer of 32 units
with batch normalization and ReLU, and the output layer, one unit per label in use. Batch normalization runs in
training mode (statistics of each minibatch), as in meta-training. :func:`conv_model` is the ``nn.Sequential``
twin; theta lays out the twin's ``parameters()`` in order, so ``torch.cat([p.flatten() for p in
model.parameters()])`` is a theta and a test checks that both compute the same logits.

Every task's network runs on its own minibatches (and copies of a task, for batched evaluation, on the same ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l2l_helpers.kernels.plain import swappable
from l2l_helpers.optimizees.base import HELD_OUT_SPLITS, MinibatchTasks, Problem
from l2l_helpers.optimizees.datasets import CONV_DATASETS, ImageData, load_conv_data

#: Learning rates the baselines are tuned over (half-decades from 0.003 to 0.3; the search steps past either end, so
#: a best rate on an edge is never kept as tuned: measured bests on Fashion-MNIST were 0.003-0.3).
CONV_LR_GRID: tuple[float, ...] = tuple(round(10.0 ** (k / 2), 10) for k in range(-5, 0))

#: The two parameter groups of the paper's two LSTMs: every tensor belongs to a convolutional or a fully connected
#: layer (batch normalization's scale and shift belong to the layer they follow).
GROUPS = ("conv", "fc")


@swappable("conv_block")
def bn_relu_pool(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The end of each convolutional block: batch normalization with the minibatch's own statistics (training mode),
    scale ``gamma`` and shift ``beta`` (C,), then ReLU and 2x2 max pooling; (B, C, S, S) -> (B, C, S // 2, S // 2).
    On CPUs ``kernels/conv_block.py`` swaps in a fused native version (``L2L_PLAIN=conv_block`` pins this one)."""
    h = F.batch_norm(y, None, None, gamma, beta, training=True, eps=eps)
    return F.max_pool2d(F.relu(h), 2)


def conv_model(
    in_channels: int = 1,
    size: int = 28,
    n_classes: int = 10,
    channels: int = 16,
    kernel: int = 5,
    conv_layers: int = 3,
    hidden: int = 32,
) -> nn.Sequential:
    """The paper's convnet as ``nn.Sequential`` (PyTorch's default initialisation; seed it first)."""
    layers: list[nn.Module] = []
    c_in, side = in_channels, size
    for _ in range(conv_layers):
        layers += [nn.Conv2d(c_in, channels, kernel, padding=kernel // 2), nn.BatchNorm2d(channels), nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
        c_in, side = channels, side // 2
    layers += [nn.Flatten(), nn.Linear(c_in * side * side, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, n_classes))
    return nn.Sequential(*layers)


def _parameter_kinds(model: nn.Sequential) -> list[tuple[str, str, tuple[int, ...], int]]:
    """(group, role, shape, fan_in) of every parameter of :func:`conv_model`'s network, in ``parameters()`` order;
    role is ``weight``, ``bias``, ``scale`` or ``shift`` (batch normalization's)."""
    out = []
    group = "conv"
    for module in model:
        if isinstance(module, nn.Linear):
            group = "fc"
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            out.append((group, "weight", tuple(module.weight.shape), fan_in))
            out.append((group, "bias", tuple(module.bias.shape), fan_in))
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            out += [(group, "scale", tuple(module.weight.shape), 0), (group, "shift", tuple(module.bias.shape), 0)]
    return out


class ConvTasks(MinibatchTasks):
    """Cross-entropy of one convnet per task on its own stream of minibatches (uniform, with replacement)."""

    def loss(self, theta: torch.Tensor, step: int = 0) -> torch.Tensor:
        copies = self.copies(theta)
        idx = self.batch_indices(step)  # (T, batch)
        logits = self.problem.forward(theta, self.images[idx])  # (copies * T, batch, classes)
        labels = self.labels[idx].repeat(copies, 1)
        per_example = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none")
        return per_example.view(labels.shape).mean(-1)


class ConvProblem(Problem):
    """The paper's convnet (Section 3.3) on images (n, C, H, W) with labels, optionally a subset of the labels.

    ``data`` holds ``train_images``, ``train_labels`` (meta-training) and ``test_images``, ``test_labels`` (held
    out); by default ``dataset``'s (:func:`~l2l_helpers.optimizees.datasets.load_conv_data`: ``"fashion_mnist"``,
    ``"cifar10"`` or ``"auto"``). ``labels`` keeps only those classes (the paper's CIFAR-5 and CIFAR-2), renumbered
    0..k-1 in the order given, with a k-way output layer.
    """

    lr_grid = CONV_LR_GRID
    #: The convolutions run one row at a time (:meth:`forward`), so larger passes gain nothing: bound them, and grid
    #: searches score one rate past an edge at a time.
    rows_per_pass = 16

    def __init__(
        self,
        data: ImageData | None = None,
        labels: Sequence[int] | None = None,
        channels: int = 16,
        kernel: int = 5,
        conv_layers: int = 3,
        hidden: int = 32,
        batch_size: int = 128,
        dataset: str = "fashion_mnist",
    ) -> None:
        if dataset not in CONV_DATASETS:
            raise ValueError(f"dataset={dataset!r} is unknown; use one of: {', '.join(CONV_DATASETS)}")
        for name, value in (
            ("channels", channels),
            ("kernel", kernel),
            ("conv_layers", conv_layers),
            ("hidden", hidden),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if kernel % 2 == 0:
            raise ValueError(f"kernel={kernel} must be odd: the convolutions keep the image size (the paper's is 5)")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 2:
            raise ValueError(
                f"batch_size={batch_size!r} must be an integer >= 2 (batch normalization needs 2 examples)"
            )
        data = data if data is not None else load_conv_data(dataset)
        if data.train_images.dim() != 4 or data.test_images.dim() != 4:
            raise ValueError(
                f"images of shape {tuple(data.train_images.shape)}: the convnet reads (n, channels, height, width); "
                "reshape flat images, e.g. MNIST's (n, 784), to (n, 1, 28, 28)"
            )
        self.data, self.batch_size = data, batch_size
        classes = int(max(int(data.train_labels.max()), int(data.test_labels.max()))) + 1
        self.labels = check_labels(labels, classes)
        self.subset = labels is not None
        _, c, h, w = data.train_images.shape
        if h != w or h >> conv_layers < 1:
            raise ValueError(
                f"images of {h}x{w} do not take {conv_layers} 2x2 poolings: give square images or fewer layers"
            )
        self.shape = (c, h)
        self.arch = {"channels": channels, "kernel": kernel, "conv_layers": conv_layers, "hidden": hidden}
        model = conv_model(c, h, len(self.labels), **self.arch)
        self.kinds = _parameter_kinds(model)
        self.numels = [math.prod(shape) for _, _, shape, _ in self.kinds]
        self.dim = sum(self.numels)
        self.name = "conv"
        self._on_device: dict[tuple[bool, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def describe(self) -> str:
        a, (c, size) = self.arch, self.shape
        subset = f"labels {list(self.labels)}" if self.subset else "all labels"
        return (
            f"conv: {a['conv_layers']} conv layers ({a['channels']} channels, {a['kernel']}x{a['kernel']}, batch norm, "
            f"ReLU, max pooling), fc {a['hidden']}, {len(self.labels)} outputs on {c}x{size}x{size} images, {subset}, "
            f"batch {self.batch_size}, {self.dim} parameters"
        )

    def model(self) -> nn.Sequential:
        """The ``nn.Sequential`` twin of this problem's network (PyTorch's default initialisation)."""
        c, size = self.shape
        return conv_model(c, size, len(self.labels), **self.arch)

    def groups(self) -> dict[str, torch.Tensor]:
        """Positions in theta of each parameter group's coordinates: ``{"conv": ..., "fc": ...}`` (the routing of the
        paper's two LSTMs)."""
        out: dict[str, list[torch.Tensor]] = {g: [] for g in GROUPS}
        start = 0
        for (group, _, _, _), n in zip(self.kinds, self.numels, strict=True):
            out[group].append(torch.arange(start, start + n))
            start += n
        return {g: torch.cat(parts) for g, parts in out.items()}

    def sample_theta(self, gen: torch.Generator) -> torch.Tensor:
        """One flat initial theta, PyTorch's defaults: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
        batch normalization's scale 1 and shift 0."""
        parts = []
        for (_, role, _, fan_in), n in zip(self.kinds, self.numels, strict=True):
            if role in ("weight", "bias"):
                bound = 1.0 / math.sqrt(fan_in)
                parts.append((torch.rand(n, generator=gen) * 2 - 1) * bound)
            else:
                parts.append(torch.ones(n) if role == "scale" else torch.zeros(n))
        return torch.cat(parts)

    def forward(self, theta: torch.Tensor, x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
        """Logits (rows, batch, classes) of every row's network on its task's images x (tasks, batch, C, H, W); rows
        = copies * tasks, row c * tasks + i reads task i's images. Batch normalization in training mode.

        The convolutions run one row at a time: one grouped convolution over all rows (``groups`` = rows) was
        measured slower on a 2-core CPU (27 ms per task and step for one row, 62 ms each for 16, against 13 ms for
        ``nn.Sequential``, batch 128 of 28x28 images); the fully connected layers run as batched products.
        """
        if theta.dim() != 2 or theta.shape[1] != self.dim or theta.shape[0] % x.shape[0]:
            raise ValueError(f"theta has shape {tuple(theta.shape)}, expected (copies * {x.shape[0]}, {self.dim})")
        rows, tasks = theta.shape[0], x.shape[0]
        a = self.arch
        n_conv = 4 * a["conv_layers"]  # weight, bias, scale, shift per convolutional layer
        params = theta.split(self.numels, dim=1)
        features = []
        for r in range(rows):
            h = x[r % tasks]  # (batch, C, H, W)
            for layer in range(a["conv_layers"]):
                w, b, scale, shift = (params[4 * layer + j][r] for j in range(4))
                h = F.conv2d(h, w.view(a["channels"], -1, a["kernel"], a["kernel"]), b, padding=a["kernel"] // 2)
                h = bn_relu_pool(h, scale, shift, eps)  # batch norm, ReLU, 2x2 max pooling
            features.append(h.flatten(1))  # (batch, C * H * W), as nn.Flatten
        h = torch.stack(features)  # (rows, batch, features)
        w, b, scale, shift, w_out, b_out = params[n_conv:]
        h = torch.baddbmm(b.unsqueeze(1), h, w.view(rows, a["hidden"], -1).transpose(1, 2))  # (rows, batch, hidden)
        mean, var = h.mean(1, keepdim=True), h.var(1, unbiased=False, keepdim=True)
        h = F.relu((h - mean) * torch.rsqrt(var + eps) * scale.unsqueeze(1) + shift.unsqueeze(1))
        return torch.baddbmm(b_out.unsqueeze(1), h, w_out.view(rows, len(self.labels), -1).transpose(1, 2))

    def _make_tasks(self, seeds: list[int], device: torch.device, split: str) -> ConvTasks:
        held_out = split in HELD_OUT_SPLITS
        key = (held_out, str(device))
        if key not in self._on_device:
            images, labels = (
                (self.data.test_images, self.data.test_labels)
                if held_out
                else (self.data.train_images, self.data.train_labels)
            )
            keep = torch.isin(labels, torch.tensor(self.labels))
            lookup = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
            lookup[torch.tensor(self.labels)] = torch.arange(len(self.labels))
            self._on_device[key] = (images[keep].to(device), lookup[labels[keep]].to(device))
        return ConvTasks(self, seeds, *self._on_device[key], device)


def check_labels(labels: Sequence[int] | None, classes: int) -> tuple[int, ...]:
    """The label subset as a tuple (all ``classes`` labels for None); ``ValueError`` saying what to fix."""
    if labels is None:
        return tuple(range(classes))
    found = list(labels)
    if not found:
        raise ValueError(f"labels is empty: give at least two of 0..{classes - 1}, or None for all of them")
    if bad := [x for x in found if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < classes]:
        raise ValueError(f"labels {bad} are unknown: this data has labels 0..{classes - 1}")
    if len(set(found)) != len(found):
        raise ValueError(f"labels {found} repeat a label: give each at most once")
    if len(found) < 2:
        raise ValueError(f"labels {found}: a subset of one label has nothing to classify; give at least two")
    return tuple(found)
