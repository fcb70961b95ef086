"""Hand-designed optimizers as update rules (paper, Section 3: the baselines; notebook 01).

Every rule, hand-designed or learned, has the same functional interface::

    state = rule.init_state(theta)
    update, state = rule.step(grad, state)
    theta = theta + update

so that hand-designed optimizers are special cases of the paper's update rule
theta_{t+1} = theta_t + g_t(grad f(theta_t), phi). The formulas follow ``torch.optim`` exactly
(tests compare them step by step).

A learning rate is a number or a column of them, one per row of theta (shape (rows, 1), float64): how a whole
grid of learning rates runs as one batch (:func:`~l2l_helpers.evaluation.loops.evaluate_grid`). The column is kept
in double precision and every product with it is rounded to theta's dtype at the end, as Python does with a
number, so a row of the batch follows the same arithmetic as the rule with that row's number.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch


class UpdateRule(Protocol):
    """What evaluation and meta-training need from an optimizer."""

    name: str

    def init_state(self, theta: torch.Tensor) -> Any:
        """State before the first step, for parameters ``theta``."""
        ...

    def step(self, grad: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Return (update, new state) for gradient ``grad``; theta becomes theta + update."""
        ...


#: A learning rate: one number, or a column (rows, 1) of them, one per row of theta.
LearningRate = float | torch.Tensor


def _check_lr(lr: LearningRate) -> LearningRate:
    if isinstance(lr, torch.Tensor):
        if lr.dim() != 2 or lr.shape[1] != 1 or not lr.is_floating_point() or lr.numel() == 0:
            raise ValueError(f"a learning-rate tensor must be a float column (rows, 1), got shape {tuple(lr.shape)}")
        if not bool(((lr > 0) & torch.isfinite(lr)).all()):
            raise ValueError("every learning rate of the column must be a positive finite number")
        return lr.double()
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (0 < lr < math.inf):
        raise ValueError(f"lr={lr!r} must be a positive finite number")
    return float(lr)


def _step_size(lr: LearningRate, like: torch.Tensor, divisor: float = 1.0) -> float | torch.Tensor:
    """-lr / divisor in double precision, then in ``like``'s dtype: a number, or a column for per-row rates."""
    if isinstance(lr, torch.Tensor):
        return (-lr / divisor).to(device=like.device, dtype=like.dtype)
    return -lr / divisor


def _check_fraction(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not (0 <= value < 1):
        raise ValueError(f"{name}={value!r} must be in [0, 1)")
    return float(value)


class SGD:
    """Plain gradient descent: update = -lr * grad."""

    def __init__(self, lr: LearningRate) -> None:
        self.lr = _check_lr(lr)
        self.name = "SGD"

    def init_state(self, theta: torch.Tensor) -> None:
        return None

    def step(self, grad: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
        return _step_size(self.lr, grad) * grad, None


class NAG:
    """Nesterov momentum, as ``torch.optim.SGD(nesterov=True)``: b = mu b + g; update = -lr (g + mu b)."""

    def __init__(self, lr: LearningRate, momentum: float = 0.9) -> None:
        self.lr = _check_lr(lr)
        self.momentum = _check_fraction("momentum", momentum)
        self.name = "NAG"

    def init_state(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(theta)

    def step(self, grad: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        buf = self.momentum * state + grad
        return _step_size(self.lr, grad) * (grad + self.momentum * buf), buf


class RMSprop:
    """RMSprop, as ``torch.optim.RMSprop``: v = a v + (1 - a) g^2; update = -lr g / (sqrt(v) + eps)."""

    def __init__(self, lr: LearningRate, alpha: float = 0.99, eps: float = 1e-8) -> None:
        self.lr = _check_lr(lr)
        self.alpha = _check_fraction("alpha", alpha)
        self.eps = eps
        self.name = "RMSprop"

    def init_state(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(theta)

    def step(self, grad: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.alpha * state + (1 - self.alpha) * grad * grad
        return _step_size(self.lr, grad) * grad / (v.sqrt() + self.eps), v


class Adam:
    """Adam (Kingma and Ba), as ``torch.optim.Adam``, with bias correction."""

    def __init__(self, lr: LearningRate, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr = _check_lr(lr)
        self.betas = (_check_fraction("beta1", betas[0]), _check_fraction("beta2", betas[1]))
        self.eps = eps
        self.name = "Adam"

    def init_state(self, theta: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
        return 0, torch.zeros_like(theta), torch.zeros_like(theta)

    def step(
        self, grad: torch.Tensor, state: tuple[int, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[int, torch.Tensor, torch.Tensor]]:
        t, m, v = state
        t += 1
        b1, b2 = self.betas
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        denom = v.sqrt() / math.sqrt(1 - b2**t) + self.eps
        return _step_size(self.lr, grad, 1 - b1**t) * m / denom, (t, m, v)


#: The baselines by the names the CLI and notebooks use.
BASELINES: dict[str, type] = {"sgd": SGD, "nag": NAG, "rmsprop": RMSprop, "adam": Adam}

#: Default learning-rate grid for tuning: 1e-4 ... 10 in half decades.
DEFAULT_LR_GRID: tuple[float, ...] = tuple(round(10.0 ** (k / 2), 10) for k in range(-8, 3))


def make_baseline(name: str, lr: LearningRate, **kwargs: Any) -> UpdateRule:
    """Build a baseline by name (``sgd``, ``nag``, ``rmsprop``, ``adam``; any case); ``lr`` a number or a column."""
    key = name.lower()
    if key not in BASELINES:
        raise ValueError(f"baseline {name!r} is unknown; use one of: {', '.join(BASELINES)}")
    return BASELINES[key](lr, **kwargs)
