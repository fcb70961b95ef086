"""A meta-training recipe (paper, Section 2): epochs, horizon T, unroll length, the loss weights w_t, Adam's learning
rate, validation; and which training tasks an epoch draws."""

from __future__ import annotations

import math
from dataclasses import dataclass

from l2l_helpers.optimizees.base import SPLIT_SIZE
from l2l_helpers.runtime import check_positive_int

WEIGHTINGS = ("ones", "final", "linear")


#: What validation keeps: the lowest sum of losses (the meta-loss) or the lowest mean final loss.
SELECTIONS = ("sum", "final")


@dataclass
class MetaTrainConfig:
    """Settings of meta-training; paper values in the comments."""

    epochs: int = 100  # authors' code: 10,000
    steps: int = 100  # T, the optimizee horizon; paper: 100
    unroll: int = 20  # truncation length; paper: 20
    lr: float = 1e-3  # Adam on phi; authors' code: 1e-3
    tasks_per_epoch: int = 1  # optimizees per trajectory batch; authors: 128 quadratics, 1 MNIST net
    weights: str = "ones"  # w_t: "ones" (paper), "final" (w_t = 1[t = T]) or "linear" (w_t = 2t / (T + 1))
    second_order: bool = False  # paper: False (gradients of f treated as constants)
    grad_clip: float | None = None  # max norm of the meta-gradient; None = no clipping
    skip_grad_norm: float = 1e6  # a meta-gradient norm above this (or not finite) is an explosion: step skipped
    val_every: int = 10  # epochs between validations on held-out tasks; 0 = never
    val_tasks: int = 8
    select: str = "sum"  # what validation minimises: "sum" of losses (the meta-loss) or the "final" loss
    checkpoint_every: int = 0  # epochs between checkpoints; 0 = only at the end
    seed: int = 0  # selects the training tasks

    def __post_init__(self) -> None:
        for name in ("epochs", "steps", "unroll", "tasks_per_epoch", "val_tasks"):
            check_positive_int(name, getattr(self, name))
        for name in ("val_every", "checkpoint_every", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}={value!r} must be a non-negative integer")
        if self.unroll > self.steps:
            raise ValueError(f"unroll={self.unroll} is longer than the horizon steps={self.steps}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < math.inf):
            raise ValueError(f"lr={self.lr!r} must be a positive finite number")
        if self.weights not in WEIGHTINGS:
            raise ValueError(f"weights={self.weights!r} is unknown; use one of: {', '.join(WEIGHTINGS)}")
        if self.select not in SELECTIONS:
            raise ValueError(f"select={self.select!r} is unknown; use one of: {', '.join(SELECTIONS)}")
        if self.grad_clip is not None and not (self.grad_clip > 0):
            raise ValueError(f"grad_clip={self.grad_clip!r} must be positive or None")
        if not (self.skip_grad_norm > 0):
            raise ValueError(f"skip_grad_norm={self.skip_grad_norm!r} must be positive")

    def step_weights(self) -> list[float]:
        """w_t for t = 1..T."""
        if self.weights == "ones":
            return [1.0] * self.steps
        if self.weights == "linear":  # later steps count more; the mean weight is 1
            return [2.0 * t / (self.steps + 1) for t in range(1, self.steps + 1)]
        return [0.0] * (self.steps - 1) + [1.0]


def training_indices(config: MetaTrainConfig, epoch: int) -> range:
    """Training-task indices of ``epoch``: new tasks every epoch, the same ones for the same seed."""
    n = config.tasks_per_epoch
    first = (config.seed * 10_000_019 + epoch * n) % (SPLIT_SIZE - n)
    return range(first, first + n)
