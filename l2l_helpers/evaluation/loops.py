"""Run any optimizer on tasks, summarise its loss curves, tune baselines' learning rates (paper, Section 3).

The numbers reported are the two the literature uses: the sum of the losses over the trajectory
(the meta-objective with w_t = 1) and the log10 of the mean final loss (what the authors' code prints).
Baselines get their learning rate from a grid search on *training* tasks (:func:`tune_learning_rate`,
:func:`tune_baselines`), as the paper tuned them; :mod:`.comparison` runs everyone on the same held-out tasks.

Evaluation is batched: several optimizers on the same tasks (:func:`evaluate_rules`) or a baseline at every
learning rate of a grid (:func:`evaluate_grid`) run as *copies* of one task batch, theta of shape
(copies * n_tasks, dim), in a single pass over the steps. Each copy sees its task's own initialisation and
minibatches, so the curves are those of running each optimizer alone, to float rounding (tests compare them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from l2l_helpers.optimizees.base import Problem, TaskBatch
from l2l_helpers.optimizees.quadratic import QuadraticTasks
from l2l_helpers.optimizer.baselines import UpdateRule, make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule
from l2l_helpers.optimizer.grouped_lstm import route_for
from l2l_helpers.runtime import check_positive_int, denormals_flushed, progress_bar


class RuleStack:
    """Several update rules as one, on copies of the same task batch: rule k updates rows k * n .. (k + 1) * n - 1.

    With it, :func:`optimize` runs every rule on the same tasks in one pass: the optimizees' losses and
    gradients are computed for all copies at once; each rule only sees its own rows.
    """

    def __init__(self, rules: Sequence[UpdateRule], n_tasks: int) -> None:
        if not rules:
            raise ValueError("rules is empty: give at least one update rule")
        self.rules, self.n_tasks = list(rules), check_positive_int("n_tasks", n_tasks)
        self.name = " + ".join(rule.name for rule in self.rules)

    def _rows(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.shape[0] != len(self.rules) * self.n_tasks:
            raise ValueError(f"expected {len(self.rules)} x {self.n_tasks} rows, got {x.shape[0]}")
        return x.split(self.n_tasks)

    def init_state(self, theta: torch.Tensor) -> list[Any]:
        return [rule.init_state(rows) for rule, rows in zip(self.rules, self._rows(theta), strict=True)]

    def step(self, grad: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        return self._each(grad, state, "step")

    def step_(self, grad: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        """:meth:`step` for a caller that drops ``state``: each rule's own ``step_`` where it has one."""
        return self._each(grad, state, "step_")

    def _each(self, grad: torch.Tensor, state: list[Any], method: str) -> tuple[torch.Tensor, list[Any]]:
        rows = zip(self.rules, self._rows(grad), state, strict=True)
        steps = [getattr(rule, method, rule.step)(g, s) for rule, g, s in rows]
        return torch.cat([update for update, _ in steps]), [s for _, s in steps]


@denormals_flushed
def optimize(
    rule: UpdateRule,
    tasks: TaskBatch,
    steps: int,
    on_step: Callable[[int, torch.Tensor, torch.Tensor | None], None] | None = None,
    copies: int = 1,
    progress: bool = False,
    desc: str = "steps",
) -> torch.Tensor:
    """The optimization loop every evaluation runs: ``steps`` steps of ``rule`` on every task of ``tasks``.

    Returns the losses at theta_0..theta_T, shape (copies * n_tasks, steps + 1). ``copies`` > 1 runs that
    many copies of the batch side by side (row c * n_tasks + i is task i), for a rule that updates them as
    separate optimizers (:class:`RuleStack`, a baseline with a column of learning rates). No graph is kept:
    the optimizer runs under ``torch.no_grad`` and only the optimizee's gradient is computed by autograd.
    ``on_step(t, theta, grad)`` is called at every step before the update (theta detached) and once more after
    the last one with ``t = steps`` and ``grad = None``: what notebooks record along the way.
    """
    check_positive_int("copies", copies)
    theta = tasks.init_theta()
    if copies > 1:
        theta = theta.repeat(copies, 1)  # (copies * n_tasks, dim)
    state = rule.init_state(theta)
    step = getattr(rule, "step_", rule.step)  # the old state is dropped: a rule may write the new one over it
    losses = []
    for t in progress_bar(range(steps), progress, desc):
        theta.requires_grad_(True)
        with torch.enable_grad():
            loss = tasks.loss(theta, t)
            (grad,) = torch.autograd.grad(loss.sum(), theta)
        losses.append(loss.detach())
        if on_step is not None:
            on_step(t, theta.detach(), grad)
        with torch.no_grad():
            update, state = step(grad, state)
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

    def first(self, steps: int) -> EvalResult:
        """The same runs up to step ``steps`` (losses[:, : steps + 1]): what a run of that horizon gives, since a
        trajectory's first steps do not depend on how long it goes on (same start, same minibatches)."""
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= self.steps:
            raise ValueError(f"steps={steps!r} must be an integer from 1 to this result's horizon {self.steps}")
        return EvalResult(self.name, self.losses[:, : steps + 1], self.lr, dict(self.info))

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


def _task_chunks(n_tasks: int, first_index: int, batch_tasks: int | None) -> list[range]:
    check_positive_int("n_tasks", n_tasks)
    chunk = check_positive_int("batch_tasks", batch_tasks) if batch_tasks is not None else n_tasks
    end = first_index + n_tasks
    return [range(start, min(start + chunk, end)) for start in range(first_index, end, chunk)]


def evaluate_rules(
    rules: Mapping[str, UpdateRule],
    problem: Problem,
    n_tasks: int = 20,
    steps: int = 100,
    split: str = "dev",
    device: torch.device | str = "cpu",
    first_index: int = 0,
    batch_tasks: int | None = None,
    progress: bool = False,
) -> dict[str, EvalResult]:
    """Run every rule of ``rules`` on the same tasks ``first_index ..`` of ``split``, in one batched pass.

    Each rule optimizes its own copy of the tasks (same initialisations, same minibatches); the optimizees'
    losses and gradients are computed for all copies together. ``batch_tasks`` bounds how many tasks are
    optimized at once (default: all, or as many as the problem's ``rows_per_pass`` allows with every rule's
    copy). Learned optimizers run in eval mode and get their mode back.
    """
    if not rules:
        raise ValueError("rules is empty: give at least one optimizer")
    check_positive_int("steps", steps)
    budget = getattr(problem, "rows_per_pass", None)
    if batch_tasks is None and budget is not None:
        batch_tasks = max(1, budget // len(rules))
    names, chunks = list(rules), _task_chunks(n_tasks, first_index, batch_tasks)
    nets = [net for rule in rules.values() if (net := getattr(rule, "net", None)) is not None]
    for net in nets:
        route_for(net, problem)  # a grouped network learns which coordinates are whose
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        curves: list[torch.Tensor] = []  # per chunk: (copies, chunk, steps + 1)
        for indices in chunks:
            tasks = problem.tasks(split, indices, device)
            rule = rules[names[0]] if len(names) == 1 else RuleStack(list(rules.values()), len(indices))
            losses = optimize(
                rule, tasks, steps, copies=len(names), progress=progress, desc=f"{split} tasks, {len(names)} optimizers"
            )
            curves.append(losses.view(len(names), len(indices), steps + 1).cpu())
    finally:
        for net, mode in zip(nets, modes, strict=True):
            net.train(mode)
    losses = torch.cat(curves, dim=1)
    return {
        name: EvalResult(name, losses[k], lr=_number(getattr(rules[name], "lr", None))) for k, name in enumerate(names)
    }


def _number(lr: Any) -> float | None:
    return lr if lr is None or isinstance(lr, float) else None


def evaluate(
    rule: UpdateRule,
    problem: Problem,
    n_tasks: int = 20,
    steps: int = 100,
    split: str = "dev",
    device: torch.device | str = "cpu",
    first_index: int = 0,
    batch_tasks: int | None = None,
    name: str | None = None,
) -> EvalResult:
    """Run ``rule`` on tasks ``first_index .. first_index + n_tasks - 1`` of ``split`` for ``steps`` steps.

    ``batch_tasks`` bounds how many tasks are optimized at once (all by default).
    """
    name = name or rule.name
    return evaluate_rules({name: rule}, problem, n_tasks, steps, split, device, first_index, batch_tasks)[name]


def evaluate_grid(
    name: str,
    problem: Problem,
    lrs: Sequence[float],
    n_tasks: int = 8,
    steps: int = 100,
    split: str = "train",
    device: torch.device | str = "cpu",
    first_index: int = 0,
    **rule_kwargs: Any,
) -> dict[float, EvalResult]:
    """The baseline ``name`` at every learning rate of ``lrs`` on the same tasks, as one batched pass.

    Theta holds one copy of the tasks per rate, (len(lrs) * n_tasks, dim), and the baseline a column of
    learning rates, one per row: the same curves as :func:`evaluate` at each rate alone, to float rounding.
    A problem with ``rows_per_pass`` (neural art: large images, compute-bound) gets as many rates per pass as
    fit in it.
    """
    rates = [float(lr) for lr in lrs]
    if not rates:
        raise ValueError("lrs is empty: give at least one learning rate")
    if len(set(rates)) != len(rates):
        raise ValueError(f"lrs={rates!r} repeats a learning rate")
    check_positive_int("steps", steps)
    check_positive_int("n_tasks", n_tasks)
    budget = getattr(problem, "rows_per_pass", None)
    per_pass = len(rates) if budget is None else max(1, budget // n_tasks)
    tasks = problem.tasks(split, range(first_index, first_index + n_tasks), device)
    out: dict[float, EvalResult] = {}
    for start in range(0, len(rates), per_pass):
        group = rates[start : start + per_pass]
        column = torch.tensor(group, dtype=torch.float64).repeat_interleave(n_tasks).unsqueeze(1)  # (rows, 1)
        rule = make_baseline(name, column, **rule_kwargs)
        losses = optimize(rule, tasks, steps, copies=len(group)).view(len(group), n_tasks, steps + 1).cpu()
        out.update({lr: EvalResult(rule.name, losses[k], lr=lr) for k, lr in enumerate(group)})
    return out


def as_eval_results(curves: Mapping[str, np.ndarray], lrs: Mapping[str, float] | None = None) -> dict[str, EvalResult]:
    """Wrap plain loss arrays (n_runs, steps + 1) as :class:`EvalResult` for plotting and tables."""
    lrs = lrs or {}
    return {
        name: EvalResult(name, torch.as_tensor(c, dtype=torch.float32), lrs.get(name)) for name, c in curves.items()
    }


def trajectories_2d(
    tasks: QuadraticTasks,
    names: tuple[str, ...],
    lr: float | Mapping[str, float],
    steps: int,
    learned: dict[str, CoordinatewiseLSTM],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Notebook 01: path (steps + 1, 2) and losses of each named optimizer on task 0. Baselines use ``lr``: one
    rate for all, or each its own (``{"SGD": 0.1, ...}``, e.g. tuned on training functions)."""
    out = {}
    for name in names:
        if name in learned:
            rule = LearnedRule(learned[name], name)
        else:
            if isinstance(lr, Mapping) and name not in lr:
                raise ValueError(f"no learning rate for {name!r}: lr names {', '.join(lr)}")
            rule = make_baseline(name, lr[name] if isinstance(lr, Mapping) else lr)
        losses, thetas = trajectory(rule, tasks, steps)
        out[name] = (thetas[:, 0].numpy(), losses[0].numpy())
    return out
