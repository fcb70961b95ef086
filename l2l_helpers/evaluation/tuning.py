"""Baselines' learning rates tuned on training tasks (paper, Section 3: every baseline's learning rate is tuned):
grid searches extended past their edge, per horizon and per criterion, cached on disk."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from l2l_helpers.evaluation.loops import evaluate_grid
from l2l_helpers.optimizees.base import Problem
from l2l_helpers.optimizer.baselines import DEFAULT_LR_GRID, make_baseline
from l2l_helpers.runtime import check_positive_int, progress_bar


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
        from l2l_helpers import settings

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
