"""Run any optimizer on held-out tasks and summarise its loss curves (paper, Figures 4-5; notebooks 05-08).

The numbers reported are the two the literature uses: the sum of the losses over the trajectory
(the meta-objective with w_t = 1) and the log10 of the mean final loss (what the authors' code prints).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .baselines import DEFAULT_LR_GRID, UpdateRule, make_baseline
from .optimizees import Problem, TaskBatch


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is a positive integer, else raise ``ValueError`` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return value


def trajectory(rule: UpdateRule, tasks: TaskBatch, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimize ``tasks`` for ``steps`` steps keeping every iterate (for small problems and pictures).

    Returns (losses (n_tasks, steps + 1), thetas (steps + 1, n_tasks, dim)).
    """
    thetas: list[torch.Tensor] = []
    losses = _optimize(rule, tasks, steps, thetas)
    return losses, torch.stack(thetas)


def run_rule(rule: UpdateRule, tasks: TaskBatch, steps: int) -> torch.Tensor:
    """Optimize every task of ``tasks`` for ``steps`` steps; losses at theta_0..theta_T, shape (n_tasks, steps + 1).

    No graph is kept: the optimizer runs under ``torch.no_grad`` and only the optimizee's gradient is
    computed by autograd.
    """
    return _optimize(rule, tasks, steps, None)


def _optimize(rule: UpdateRule, tasks: TaskBatch, steps: int, thetas: list[torch.Tensor] | None) -> torch.Tensor:
    theta = tasks.init_theta()
    state = rule.init_state(theta)
    losses = []
    for t in range(steps):
        if thetas is not None:
            thetas.append(theta.detach().cpu())
        theta.requires_grad_(True)
        with torch.enable_grad():
            loss = tasks.loss(theta, t)
            (grad,) = torch.autograd.grad(loss.sum(), theta)
        losses.append(loss.detach())
        with torch.no_grad():
            update, state = rule.step(grad, state)
            theta = (theta + update).detach()
    if thetas is not None:
        thetas.append(theta.cpu())
    with torch.no_grad():
        losses.append(tasks.loss(theta, steps))
    return torch.stack(losses, dim=1)


@dataclass
class EvalResult:
    """Loss curves of one optimizer on ``n_tasks`` tasks: ``losses[i, t]`` = f_i(theta_t), t = 0..T."""

    name: str
    losses: torch.Tensor
    lr: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """The horizon T."""
        return self.losses.shape[1] - 1

    @property
    def mean(self) -> torch.Tensor:
        """Mean loss over tasks at each step, shape (T + 1,)."""
        return self.losses.mean(0)

    @property
    def std(self) -> torch.Tensor:
        """Standard deviation over tasks at each step, shape (T + 1,)."""
        return self.losses.std(0) if self.losses.shape[0] > 1 else torch.zeros_like(self.mean)

    def quantile(self, q: float) -> torch.Tensor:
        """The q-quantile over tasks at each step, shape (T + 1,)."""
        return torch.quantile(self.losses.double(), q, dim=0).to(self.losses.dtype)

    @property
    def final(self) -> torch.Tensor:
        """Final loss of each task, shape (n_tasks,)."""
        return self.losses[:, -1]

    @property
    def mean_final(self) -> float:
        """Mean final loss over tasks (NaN or inf if some task diverged)."""
        return float(self.final.mean())

    @property
    def log10_mean_final(self) -> float:
        """log10 of the mean final loss, as the authors' code reports it."""
        m = self.mean_final
        return math.log10(m) if m > 0 else -math.inf

    @property
    def mean_sum(self) -> float:
        """Mean over tasks of sum_{t=1..T} f(theta_t): the meta-objective with w_t = 1."""
        return float(self.losses[:, 1:].sum(1).mean())

    def summary(self) -> dict[str, Any]:
        """Plain numbers for tables, JSON and results files."""
        return {
            "name": self.name,
            "lr": self.lr,
            "tasks": self.losses.shape[0],
            "steps": self.steps,
            "mean_final": self.mean_final,
            "std_final": float(self.final.std()) if self.losses.shape[0] > 1 else 0.0,
            "log10_mean_final": self.log10_mean_final,
            "mean_sum": self.mean_sum,
        }


def evaluate(
    rule: UpdateRule,
    problem: Problem,
    n_tasks: int = 20,
    steps: int = 100,
    split: str = "test",
    device: torch.device | str = "cpu",
    first_index: int = 0,
    batch_tasks: int | None = None,
    name: str | None = None,
) -> EvalResult:
    """Run ``rule`` on tasks ``first_index .. first_index + n_tasks - 1`` of ``split`` for ``steps`` steps.

    ``batch_tasks`` bounds how many tasks are optimized at once (all by default).
    """
    check_positive_int("n_tasks", n_tasks)
    check_positive_int("steps", steps)
    chunk = check_positive_int("batch_tasks", batch_tasks) if batch_tasks is not None else n_tasks
    net = getattr(rule, "net", None)
    was_training = net.training if net is not None else False
    if net is not None:
        net.eval()
    try:
        curves = []
        for start in range(first_index, first_index + n_tasks, chunk):
            stop = min(start + chunk, first_index + n_tasks)
            curves.append(run_rule(rule, problem.tasks(split, range(start, stop), device), steps))
    finally:
        if net is not None:
            net.train(was_training)
    return EvalResult(name or rule.name, torch.cat(curves).cpu(), lr=getattr(rule, "lr", None))


@dataclass
class TuningResult:
    """Outcome of a learning-rate grid search: score (lower is better) of every learning rate tried."""

    name: str
    best_lr: float
    scores: dict[float, float]
    criterion: str


def tune_learning_rate(
    name: str,
    problem: Problem,
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tasks: int = 8,
    steps: int = 100,
    criterion: str = "final",
    device: torch.device | str = "cpu",
    extend: int = 4,
    **rule_kwargs: Any,
) -> TuningResult:
    """Pick a baseline's learning rate by grid search on *training* tasks, as the paper tuned its baselines.

    ``criterion`` is ``final`` (mean final loss) or ``sum`` (mean sum of losses); a diverged run scores inf.
    A rate at an end of the grid is not a tuned one: while the best rate is the largest (or smallest) tried,
    the search steps on past it by the grid's ratio at that end, up to ``extend`` more rates.
    """
    if criterion not in ("final", "sum"):
        raise ValueError(f"criterion={criterion!r} is unknown; use 'final' or 'sum'")
    if not grid:
        raise ValueError("grid is empty: give at least one learning rate")
    if not isinstance(extend, int) or isinstance(extend, bool) or extend < 0:
        raise ValueError(f"extend={extend!r} must be a non-negative integer")

    def score(lr: float) -> float:
        result = evaluate(make_baseline(name, lr, **rule_kwargs), problem, n_tasks, steps, "train", device)
        value = result.mean_final if criterion == "final" else result.mean_sum
        return value if math.isfinite(value) else math.inf

    scores = {float(lr): score(lr) for lr in grid}
    for _ in range(extend if len(scores) > 1 else 0):
        rates, best = sorted(scores), min(scores, key=scores.__getitem__)
        if best == rates[-1]:
            beyond = best * rates[-1] / rates[-2]
        elif best == rates[0] and math.isfinite(scores[best]):
            beyond = best * rates[0] / rates[1]
        else:
            break
        beyond = float(f"{beyond:.10g}")
        scores[beyond] = score(beyond)
    best = min(scores, key=scores.__getitem__)
    return TuningResult(make_baseline(name, best).name, best, scores, criterion)


def compare(
    rules: dict[str, UpdateRule],
    problem: Problem,
    n_tasks: int = 20,
    steps: int = 100,
    split: str = "test",
    device: torch.device | str = "cpu",
) -> dict[str, EvalResult]:
    """Evaluate several optimizers on the same tasks; returns results by the given names."""
    return {label: evaluate(rule, problem, n_tasks, steps, split, device, name=label) for label, rule in rules.items()}
