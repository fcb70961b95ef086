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

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .baselines import DEFAULT_LR_GRID, UpdateRule, make_baseline
from .grouped_lstm import route_for
from .optimizees.base import Problem, TaskBatch
from .runtime import check_positive_int, denormals_flushed, progress_bar


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


@dataclass
class TuningResult:
    """Outcome of a learning-rate grid search: score (lower is better) of every learning rate tried."""

    name: str
    best_lr: float
    scores: dict[float, float]
    criterion: str


def grid_search(
    score: Callable[[float], float] | Callable[[list[float]], Sequence[float]],
    grid: Sequence[float],
    extend: int = 4,
    progress: bool = False,
    desc: str = "learning rates",
    batched: bool = False,
    lookahead: int | None = None,
) -> dict[float, float]:
    """Score every learning rate of ``grid`` (lower is better; not finite counts as inf), stepping past its edge.

    A rate at an end of the grid is not a tuned one: while the best rate is the largest (or smallest) tried,
    the search steps on past it by the grid's ratio at that end, up to ``extend`` more rates. Returns every
    rate tried with its score; the best is ``min(scores, key=scores.get)``. The one grid search of the package:
    baselines (:func:`tune_learning_rate`), ``torch.optim`` optimizers (notebook 06) and notebook 01 use it.

    ``batched=True``: ``score`` takes a list of rates and returns their scores, so that a whole grid is one
    computation (:func:`evaluate_grid`). The steps past an edge are then scored together too, all the ones
    the search could still take in that direction (at most ``lookahead``, when given: where one more row
    costs as much as it adds, as for neural art's compute-bound convolutions, ``lookahead=1`` scores no rate the
    search would not take); the result is the same as stepping one rate at a time.
    """
    rates = list(dict.fromkeys(float(lr) for lr in grid))
    if not rates:
        raise ValueError("grid is empty: give at least one learning rate")
    if not isinstance(extend, int) or isinstance(extend, bool) or extend < 0:
        raise ValueError(f"extend={extend!r} must be a non-negative integer")
    if lookahead is not None and (not isinstance(lookahead, int) or isinstance(lookahead, bool) or lookahead < 1):
        raise ValueError(f"lookahead={lookahead!r} must be a positive integer or None (as far as the search may go)")

    def finite(value: float) -> float:
        value = float(value)
        return value if math.isfinite(value) else math.inf

    def score_all(lrs: list[float], show: bool = False) -> dict[float, float]:
        if not batched:
            return {lr: finite(score(lr)) for lr in progress_bar(lrs, show, desc)}  # type: ignore[arg-type]
        values = list(score(lrs))  # type: ignore[arg-type]
        if len(values) != len(lrs):
            raise ValueError(f"a batched score returned {len(values)} values for {len(lrs)} learning rates")
        return {lr: finite(v) for lr, v in zip(lrs, values, strict=True)}

    scores = score_all(rates, progress)
    ahead: dict[float, float] = {}  # rates past the edge, scored before the search reaches them (batched)
    budget = extend if len(scores) > 1 else 0
    for used in range(budget):
        ordered, best = sorted(scores), min(scores, key=scores.__getitem__)
        if best == ordered[-1]:
            before = ordered[-2]
        elif best == ordered[0] and math.isfinite(scores[best]):
            before = ordered[1]
        else:
            break
        beyond = _past(best, before)
        if beyond not in ahead:
            walk, last, prev = [beyond], beyond, best
            while batched and len(walk) < min(budget - used, lookahead or budget):
                last, prev = _past(last, prev), last
                walk.append(last)
            ahead.update(score_all(walk))
        scores[beyond] = ahead[beyond]
    return scores


def _past(edge: float, inner: float) -> float:
    """The next rate past a grid's edge, by the ratio of the edge to its neighbour (10 significant digits)."""
    return float(f"{edge * edge / inner:.10g}")


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
    The search steps past the grid's edge while the best rate is on it (:func:`grid_search`). The whole grid
    runs as one batch (:func:`evaluate_grid`).
    """
    check_positive_int("steps", steps)
    return tune_at_horizons(name, problem, (steps,), grid, n_tasks, criterion, device, extend, **rule_kwargs)[steps]


def tune_at_horizons(
    name: str,
    problem: Problem,
    horizons: Sequence[int],
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tasks: int = 8,
    criterion: str = "final",
    device: torch.device | str = "cpu",
    extend: int = 4,
    **rule_kwargs: Any,
) -> dict[int, TuningResult]:
    """:func:`tune_learning_rate` for several horizons T at once: the paper tunes per horizon (Figure 4).

    The first T steps of a longer run on the same training tasks *are* the run of T steps (same
    initialisations, same minibatches), so every rate runs once, to the longest horizon, and each horizon
    scores the curves up to its own T: its mean loss at step T (``final``) or the mean sum of losses up to T
    (``sum``). Each horizon steps past the grid's edge on its own.
    """
    if criterion not in ("final", "sum"):
        raise ValueError(f"criterion={criterion!r} is unknown; use 'final' or 'sum'")
    if not horizons:
        raise ValueError("horizons is empty: give at least one number of steps, e.g. (100,)")
    longest = max(check_positive_int("horizon", h) for h in horizons)
    cache = _TuningCache(name, problem, grid, n_tasks, criterion, device, extend, rule_kwargs)
    # rate -> losses (n_tasks, longest + 1), shared by both criteria: tuning for the sum of losses after the final
    # loss (or back) on the same training tasks scores the same curves again instead of running them twice
    same_runs = _TuningCache(name, problem, grid, n_tasks, device, extend, rule_kwargs).key  # the key without criterion
    curves = _CURVES.setdefault(f"{same_runs} T={longest}", {})
    while len(_CURVES) > 8:
        _CURVES.pop(next(iter(_CURVES)))

    def scores_at(horizon: int, lrs: list[float]) -> list[float]:
        missing = [lr for lr in lrs if lr not in curves]
        if missing:
            found = evaluate_grid(name, problem, missing, n_tasks, longest, "train", device, **rule_kwargs)
            curves.update({lr: r.losses for lr, r in found.items()})
        result = [curves[lr][:, : horizon + 1] for lr in lrs]
        return [float(c[:, -1].mean() if criterion == "final" else c[:, 1:].sum(1).mean()) for c in result]

    if (kept := cache.load(horizons)) is not None:
        return kept
    label = make_baseline(name, 1.0).name
    # a problem that bounds its rows per pass (neural art) gains nothing from scoring rates the search may not take
    lookahead = None if getattr(problem, "rows_per_pass", None) is None else 1
    out = {}
    for horizon in dict.fromkeys(horizons):
        scores = grid_search(lambda lrs, h=horizon: scores_at(h, lrs), grid, extend, batched=True, lookahead=lookahead)
        out[horizon] = TuningResult(label, min(scores, key=scores.__getitem__), scores, criterion)
    cache.save(out)
    return out


#: The tuning curves of the last few searches (:func:`tune_at_horizons`), keyed like :class:`_TuningCache` without
#: the criterion: the other criterion's search on the same tasks reads them.
_CURVES: dict[str, dict[float, torch.Tensor]] = {}


class _TuningCache:
    """Within one ``make run``: a baseline's tuning, kept for the next notebook that asks for the same one.

    Notebooks 06 and 08 both tune the baselines on the paper's sigmoid MLP at 100 steps; the second reads the
    first's result (``<run cache>/tuning/<key>.json``) instead of re-running the grid. The key covers everything
    the result depends on: the problem's settings and data, the baseline, grid, tasks, criterion, extension,
    device type and torch version, and the horizon. Outside ``make run`` (no run cache) nothing is kept.
    """

    def __init__(self, name: str, problem: Problem, grid: Sequence[float], *args: Any) -> None:
        from . import settings

        folder = settings.retrain_dir()
        self.folder = None if folder is None else folder / "tuning"
        simple = (bool, int, float, str, tuple, type(None))
        settings_of = {k: v for k, v in sorted(vars(problem).items()) if isinstance(v, simple)}
        data_note = getattr(getattr(problem, "data", None), "description", "")  # MNIST: full set or sample
        self.key = repr((type(problem).__name__, problem.describe(), settings_of, data_note, name.lower()))
        self.key += repr(([float(lr) for lr in grid], *args, torch.__version__))

    def _file(self, horizon: int) -> Path:
        import hashlib

        assert self.folder is not None
        digest = hashlib.sha256(f"{self.key} T={horizon}".encode()).hexdigest()[:20]
        return self.folder / f"{digest}.json"

    def load(self, horizons: Sequence[int]) -> dict[int, TuningResult] | None:
        if self.folder is None or not all(self._file(h).is_file() for h in horizons):
            return None
        out = {}
        for horizon in dict.fromkeys(horizons):
            data = json.loads(self._file(horizon).read_text())
            scores = {float(lr): float(score) for lr, score in data["scores"]}
            out[horizon] = TuningResult(data["label"], float(data["best_lr"]), scores, data["criterion"])
        return out

    def save(self, results: Mapping[int, TuningResult]) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for horizon, r in results.items():
            data = {"label": r.name, "best_lr": r.best_lr, "criterion": r.criterion}
            data["scores"] = [[lr, str(score) if not math.isfinite(score) else score] for lr, score in r.scores.items()]
            self._file(horizon).write_text(json.dumps(data))


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
    check_positive_int("steps", steps)
    return tune_baselines_at(problem, (steps,), names, grid, n_tasks, device, criterion, progress)[steps]


def tune_baselines_at(
    problem: Problem,
    horizons: Sequence[int],
    names: Sequence[str] = BASELINE_NAMES,
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tasks: int = 8,
    device: torch.device | str = "cpu",
    criterion: str = "final",
    progress: bool = True,
) -> dict[int, dict[str, TuningResult]]:
    """:func:`tune_baselines` at several horizons, each rate run once to the longest (:func:`tune_at_horizons`).

    Returns ``{T: {baseline: TuningResult}}``, e.g. ``tuned[200]["Adam"].best_lr``.
    """
    if not names:
        raise ValueError("names is empty: give at least one baseline, e.g. ('Adam',)")
    per_name = {
        name: tune_at_horizons(name, problem, horizons, grid, n_tasks, criterion, device)
        for name in progress_bar(names, progress, "tuning learning rates")
    }
    return {h: {name: per_name[name][h] for name in names} for h in dict.fromkeys(horizons)}


def tune_near(
    problem: Problem,
    tuned: Mapping[str, TuningResult],
    factors: Sequence[float] = (10**-0.5, 1.0, 10**0.5),
    n_tasks: int = 4,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, TuningResult]:
    """Re-tune every baseline of ``tuned`` on ``problem``'s training tasks, on a grid around its tuned rate.

    ``factors`` multiply each baseline's earlier best rate (default: it and its half-decade neighbours, the
    spacing of the usual grids; the search steps on past an edge as :func:`grid_search` does): a cheaper
    search where a full grid is too expensive (neural art at twice the training resolution, notebook 09),
    still on training tasks only.
    """
    check_positive_int("steps", steps)
    return tune_near_at(problem, tuned, (steps,), factors, n_tasks, device, progress)[steps]


def tune_near_at(
    problem: Problem,
    tuned: Mapping[str, TuningResult],
    horizons: Sequence[int],
    factors: Sequence[float] = (10**-0.5, 1.0, 10**0.5),
    n_tasks: int = 4,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[int, dict[str, TuningResult]]:
    """:func:`tune_near` at several horizons, each rate run once to the longest (:func:`tune_at_horizons`): e.g. the
    MNIST baselines re-tuned for 1,000 and 2,000 steps around their 100-step rates (notebook 11), where a full grid
    run for 2,000 steps would cost minutes. Returns ``{T: {baseline: TuningResult}}``."""
    if not tuned:
        raise ValueError("tuned is empty: tune at least one baseline first (tune_baselines)")
    if not factors or min(factors) <= 0:
        raise ValueError(f"factors={list(factors)!r} must be a non-empty list of positive numbers")
    per_name = {
        name: tune_at_horizons(name, problem, horizons, [t.best_lr * f for f in factors], n_tasks, t.criterion, device)
        for name, t in progress_bar(tuned.items(), progress, "re-tuning learning rates", len(tuned))
    }
    return {h: {name: per_name[name][h] for name in tuned} for h in dict.fromkeys(horizons)}


def as_eval_results(curves: Mapping[str, np.ndarray], lrs: Mapping[str, float] | None = None) -> dict[str, EvalResult]:
    """Wrap plain loss arrays (n_runs, steps + 1) as :class:`EvalResult` for plotting and tables."""
    lrs = lrs or {}
    return {
        name: EvalResult(name, torch.as_tensor(c, dtype=torch.float32), lrs.get(name)) for name, c in curves.items()
    }
