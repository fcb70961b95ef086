"""Run any optimizer on tasks, summarise its loss curves, tune baselines' learning rates (paper, Section 3).

The numbers reported are the two the literature uses: the sum of the losses over the trajectory
(the meta-objective with w_t = 1) and the log10 of the mean final loss (what the authors' code prints).
Baselines get their learning rate from a grid search on *training* tasks (:func:`tune_learning_rate`,
:func:`tune_baselines`), as the paper tuned them; :mod:`.comparison` runs everyone on the same held-out tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .baselines import DEFAULT_LR_GRID, UpdateRule, make_baseline
from .optimizees.base import Problem, TaskBatch
from .runtime import check_positive_int, progress_bar


def optimize(
    rule: UpdateRule,
    tasks: TaskBatch,
    steps: int,
    on_step: Callable[[int, torch.Tensor, torch.Tensor | None], None] | None = None,
) -> torch.Tensor:
    """The optimization loop every evaluation runs: ``steps`` steps of ``rule`` on every task of ``tasks``.

    Returns the losses at theta_0..theta_T, shape (n_tasks, steps + 1). No graph is kept: the optimizer runs
    under ``torch.no_grad`` and only the optimizee's gradient is computed by autograd. ``on_step(t, theta,
    grad)`` is called at every step before the update (theta (n_tasks, dim), detached) and once more after the
    last one with ``t = steps`` and ``grad = None``: what notebooks record along the way.
    """
    theta = tasks.init_theta()
    state = rule.init_state(theta)
    losses = []
    for t in range(steps):
        theta.requires_grad_(True)
        with torch.enable_grad():
            loss = tasks.loss(theta, t)
            (grad,) = torch.autograd.grad(loss.sum(), theta)
        losses.append(loss.detach())
        if on_step is not None:
            on_step(t, theta.detach(), grad)
        with torch.no_grad():
            update, state = rule.step(grad, state)
            theta = (theta + update).detach()
    with torch.no_grad():
        losses.append(tasks.loss(theta, steps))
    if on_step is not None:
        on_step(steps, theta, None)
    return torch.stack(losses, dim=1)


def run_rule(rule: UpdateRule, tasks: TaskBatch, steps: int) -> torch.Tensor:
    """Optimize every task of ``tasks`` for ``steps`` steps; losses at theta_0..theta_T, shape (n_tasks, steps + 1)."""
    return optimize(rule, tasks, steps)


def trajectory(rule: UpdateRule, tasks: TaskBatch, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimize ``tasks`` for ``steps`` steps keeping every iterate (for small problems and pictures).

    Returns (losses (n_tasks, steps + 1), thetas (steps + 1, n_tasks, dim)).
    """
    thetas: list[torch.Tensor] = []
    losses = optimize(rule, tasks, steps, lambda t, theta, grad: thetas.append(theta.cpu()))
    return losses, torch.stack(thetas)


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


def grid_search(
    score: Callable[[float], float],
    grid: Sequence[float],
    extend: int = 4,
    progress: bool = False,
    desc: str = "learning rates",
) -> dict[float, float]:
    """Score every learning rate of ``grid`` (lower is better; not finite counts as inf), stepping past its edge.

    A rate at an end of the grid is not a tuned one: while the best rate is the largest (or smallest) tried,
    the search steps on past it by the grid's ratio at that end, up to ``extend`` more rates. Returns every
    rate tried with its score; the best is ``min(scores, key=scores.get)``. The one grid search of the package:
    baselines (:func:`tune_learning_rate`), ``torch.optim`` optimizers (notebook 06) and notebook 01 use it.
    """
    if not grid:
        raise ValueError("grid is empty: give at least one learning rate")
    if not isinstance(extend, int) or isinstance(extend, bool) or extend < 0:
        raise ValueError(f"extend={extend!r} must be a non-negative integer")

    def finite(lr: float) -> float:
        value = float(score(lr))
        return value if math.isfinite(value) else math.inf

    scores = {float(lr): finite(lr) for lr in progress_bar(grid, progress, desc)}
    for _ in range(extend if len(scores) > 1 else 0):
        rates, best = sorted(scores), min(scores, key=scores.__getitem__)
        if best == rates[-1]:
            beyond = best * rates[-1] / rates[-2]
        elif best == rates[0] and math.isfinite(scores[best]):
            beyond = best * rates[0] / rates[1]
        else:
            break
        beyond = float(f"{beyond:.10g}")
        scores[beyond] = finite(beyond)
    return scores


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
    The search steps past the grid's edge while the best rate is on it (:func:`grid_search`).
    """
    if criterion not in ("final", "sum"):
        raise ValueError(f"criterion={criterion!r} is unknown; use 'final' or 'sum'")

    def score(lr: float) -> float:
        result = evaluate(make_baseline(name, lr, **rule_kwargs), problem, n_tasks, steps, "train", device)
        return result.mean_final if criterion == "final" else result.mean_sum

    scores = grid_search(score, grid, extend)
    best = min(scores, key=scores.__getitem__)
    return TuningResult(make_baseline(name, best).name, best, scores, criterion)


#: The paper's hand-designed baselines, in the order the figures list them.
BASELINE_NAMES = ("SGD", "NAG", "RMSprop", "Adam")


def tune_baselines(
    problem: Problem,
    names: Sequence[str] = BASELINE_NAMES,
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tasks: int = 8,
    steps: int = 100,
    device: torch.device | str = "cpu",
    criterion: str = "final",
    progress: bool = True,
) -> dict[str, TuningResult]:
    """Grid-search every baseline's learning rate on ``n_tasks`` *training* tasks (never the held-out ones)."""
    if not names:
        raise ValueError("names is empty: give at least one baseline, e.g. ('Adam',)")
    return {
        name: tune_learning_rate(name, problem, grid, n_tasks, steps, criterion, device)
        for name in progress_bar(names, progress, "tuning learning rates")
    }


def tune_near(
    problem: Problem,
    tuned: Mapping[str, TuningResult],
    factors: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0),
    n_tasks: int = 4,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, TuningResult]:
    """Re-tune every baseline of ``tuned`` on ``problem``'s training tasks, on a grid around its tuned rate.

    ``factors`` multiply each baseline's earlier best rate: a cheaper search where a full grid is too
    expensive (neural art at twice the training resolution, notebook 09), still on training tasks only.
    """
    if not tuned:
        raise ValueError("tuned is empty: tune at least one baseline first (tune_baselines)")
    if not factors or min(factors) <= 0:
        raise ValueError(f"factors={list(factors)!r} must be a non-empty list of positive numbers")
    return {
        name: tune_learning_rate(name, problem, [t.best_lr * f for f in factors], n_tasks, steps, t.criterion, device)
        for name, t in progress_bar(tuned.items(), progress, "re-tuning learning rates", len(tuned))
    }


def as_eval_results(curves: Mapping[str, np.ndarray], lrs: Mapping[str, float] | None = None) -> dict[str, EvalResult]:
    """Wrap plain loss arrays (n_runs, steps + 1) as :class:`EvalResult` for plotting and tables."""
    lrs = lrs or {}
    return {
        name: EvalResult(name, torch.as_tensor(c, dtype=torch.float32), lrs.get(name)) for name, c in curves.items()
    }
