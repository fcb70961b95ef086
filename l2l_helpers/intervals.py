"""Paired comparisons with a 95% interval that keeps its word, and the verdict a claim gets from them.

Two optimizers that ran on the *same* held-out tasks (same initialisations, same minibatches: what
:func:`~l2l_helpers.comparison.held_out_comparison` gives) are compared task by task. For a metric of each
task's loss curve (its final loss, or its sum of losses as the paper's meta-objective) the comparison reads
the per-task log ratio ``l_i = log a_i - log b_i``: pairing removes the spread between tasks (on MNIST about
half the mean), and the log makes the comparison scale-free.

The statistic is the median per-task log ratio, shown as a ratio: ``exp(median l)``, the ratio on the median task.
Its 95% interval is the sign test's (``scipy.stats.quantile_test``): two order statistics of the log ratios, chosen
from the binomial distribution, which hold the true median at least 95% of the time whatever the distribution of
the log ratios, skewed or heavy-tailed. Mean-based intervals do not: on log ratios resampled from real ``dev`` runs,
Student's t covered the mean 84% of the time at 4 tasks and 92% at 20, a percentile bootstrap about 79% at 4
(``tests/test_interval_coverage.py`` checks this interval at every n a claim uses). Tasks that belong together
(crops of one photo) are first averaged per group (``clusters``): the groups are the independent units and n
counts them.

A claim "a is lower than b" is then

* ``reproduced`` when the whole interval of the ratio lies below 1 (a is lower on clearly more than half the tasks);
* ``not reproduced`` when it lies above 1 (b is lower, clearly);
* ``inconclusive`` when it straddles 1: these tasks cannot tell them apart;
* ``too few tasks`` when n is below :data:`MIN_TASKS`, where even n tasks all on one side decide nothing.

A claim against several optimizers, or resting on several meta-trained optimizers (seeds), is
:func:`combined`: reproduced only if every comparison is, not reproduced if any one is, else inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .evaluation import EvalResult

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "too few tasks", "not tested")
METRICS = ("final", "sum")
#: The fewest independent tasks (or task groups) a sign-test interval can decide with: 6 tasks all on one side have a
#: chance of 2 / 64 < 5% under no difference; 5 have 2 / 32.
MIN_TASKS = 6
#: How every paired interval is computed (recorded in each claim).
METHOD = "sign-test 95% interval of the median per-task log ratio (paired, distribution-free), as a ratio"


def per_task(result: EvalResult, metric: str = "final", horizon: int | None = None) -> np.ndarray:
    """One number per task (n_tasks,): the loss at step ``horizon`` (default: the last) or the sum over 1..T."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is unknown; use one of: {', '.join(METRICS)}")
    losses = result.losses.double().cpu().numpy()  # (n_tasks, steps + 1)
    steps = losses.shape[1] - 1
    t = steps if horizon is None else horizon
    if not (isinstance(t, int) and 1 <= t <= steps):
        raise ValueError(f"horizon={horizon!r} must be a step between 1 and {steps}")
    return losses[:, t] if metric == "final" else losses[:, 1 : t + 1].sum(axis=1)


def order_statistic(n: int, level: float = 0.95) -> int:
    """k of the sign test's interval [x_(k), x_(n-k+1)] for the median of n values (1-based order statistics): the
    largest k with P(Binomial(n, 1/2) <= k - 1) <= (1 - level) / 2; 0 when n is too small for any interval."""
    k = 0
    while k + 1 <= n // 2 and stats.binom.cdf(k, n, 0.5) <= (1 - level) / 2:
        k += 1
    return k


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[Any, Any]:
    """The sign test's interval of the median of ``values`` (n,) (``scipy.stats.quantile_test``): it holds the true
    median at least ``level`` of the time for any continuous distribution. Infinite values (a diverged run) sort to
    their end. Too few values for any interval give (-inf, inf). ``values`` of shape (..., n) give arrays, one
    interval per row, from the same order statistics (the coverage test draws thousands at once)."""
    values = np.asarray(values, dtype=float)
    n = values.shape[-1]
    k = order_statistic(n, level)
    if values.ndim > 1:
        if k == 0:
            shape = values.shape[:-1]
            return np.full(shape, -math.inf), np.full(shape, math.inf)
        ordered = np.sort(values, axis=-1)
        return ordered[..., k - 1], ordered[..., n - k]
    if k == 0:
        return -math.inf, math.inf
    found = stats.quantile_test(values, q=0, p=0.5).confidence_interval(level)
    return float(found.low), float(found.high)


def power(p_side: float, n: int, level: float = 0.95) -> float:
    """The chance that the sign-test interval of n tasks lies on one side of 0 when each task's log ratio falls on
    that side with probability ``p_side``: at least n - k + 1 of the n tasks there (:func:`order_statistic`)."""
    if not 0 <= p_side <= 1:
        raise ValueError(f"p_side={p_side} must be a probability")
    k = order_statistic(n, level)
    return 0.0 if k == 0 else float(stats.binom.sf(n - k, n, p_side))


def tasks_for_power(p_side: float, target: float = 0.8, most: int = 1000) -> int | None:
    """The fewest tasks (at least :data:`MIN_TASKS`) at which :func:`power` reaches ``target``; None past ``most``."""
    for n in range(MIN_TASKS, most + 1):
        if power(p_side, n) >= target:
            return n
    return None


def log_ratios(xa: np.ndarray, xb: np.ndarray, clusters: Sequence[Any] | None = None) -> np.ndarray:
    """Per-task (or per-group) ``log a_i - log b_i`` of positive numbers; a task where both diverged (not finite)
    is a tie (0), where one diverged its log ratio is infinite against it. With ``clusters`` (one label per task),
    each group's tasks are averaged first: one log ratio per group, in order of first appearance."""
    xa, xb = np.asarray(xa, dtype=float), np.asarray(xb, dtype=float)
    if clusters is not None:
        labels = list(clusters)
        if len(labels) != len(xa):
            raise ValueError(f"clusters has {len(labels)} labels for {len(xa)} tasks: give one label per task")
        groups = list(dict.fromkeys(labels))
        keys = np.array([groups.index(label) for label in labels])
        xa = np.array([xa[keys == k].mean() for k in range(len(groups))])
        xb = np.array([xb[keys == k].mean() for k in range(len(groups))])
    bad_a, bad_b = ~np.isfinite(xa), ~np.isfinite(xb)
    if ((xa[~bad_a] <= 0).any()) or ((xb[~bad_b] <= 0).any()):
        raise ValueError("a log ratio needs positive numbers (losses): got a value <= 0")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.log(np.where(bad_a, 1.0, xa)) - np.log(np.where(bad_b, 1.0, xb))
    out = np.where(bad_a & ~bad_b, math.inf, out)
    out = np.where(bad_b & ~bad_a, -math.inf, out)
    return np.where(bad_a & bad_b, 0.0, out)


@dataclass
class Paired:
    """a vs b on the same tasks: per-task log ratios, the ratio on the median task and its 95% sign-test interval."""

    a: str
    b: str
    metric: str
    log_ratios: np.ndarray  # log a_i - log b_i, (n,): per task, or per group of tasks
    mean_a: float
    mean_b: float
    ratio: float  # exp(median log ratio): the ratio a_i / b_i of the median task
    ratio_interval: tuple[float, float]

    @property
    def tasks(self) -> int:
        """n: the independent tasks (or task groups) behind the interval."""
        return len(self.log_ratios)

    @property
    def verdict(self) -> str:
        """Whether a is lower than b: the interval below 1, above 1, or across it; too few tasks below MIN_TASKS."""
        if self.tasks < MIN_TASKS:
            return "too few tasks"
        low, high = self.ratio_interval
        if high < 1:
            return "reproduced"
        return "not reproduced" if low > 1 else "inconclusive"

    def text(self) -> str:
        """One line, e.g. ``LSTM/Adam 0.91 [0.84, 0.98]`` (the median task's ratio and its 95% interval)."""
        r_lo, r_hi = self.ratio_interval
        return f"{self.a}/{self.b} {self.ratio:.3g} [{r_lo:.3g}, {r_hi:.3g}]"


def paired(
    a: EvalResult | np.ndarray,
    b: EvalResult | np.ndarray,
    metric: str = "final",
    names: tuple[str, str] | None = None,
    horizon: int | None = None,
    clusters: Sequence[Any] | None = None,
) -> Paired:
    """Compare a with b on the same tasks: the median of the per-task ratios a_i / b_i with its 95% sign-test
    interval (:func:`median_interval` on :func:`log_ratios`).

    ``a`` and ``b`` are evaluation results on the same tasks (or positive per-task numbers already). A diverged
    run (an infinite number) counts as that task's worst; where both diverged on a task, it counts as a tie.
    ``clusters`` groups tasks that are not independent (crops of one photo): n is then the number of groups.
    """
    xa = per_task(a, metric, horizon) if isinstance(a, EvalResult) else np.asarray(a, dtype=float)
    xb = per_task(b, metric, horizon) if isinstance(b, EvalResult) else np.asarray(b, dtype=float)
    if xa.shape != xb.shape or xa.ndim != 1:
        raise ValueError(f"a and b must be the same tasks: got {xa.shape} and {xb.shape} per-task numbers")
    if len(xa) < 2:
        raise ValueError(f"a paired interval needs at least 2 tasks, got {len(xa)}")
    name_a = names[0] if names else getattr(a, "name", "a")
    name_b = names[1] if names else getattr(b, "name", "b")
    logs = log_ratios(xa, xb, clusters)
    low, high = median_interval(logs)
    with np.errstate(over="ignore", invalid="ignore"):
        return Paired(
            a=name_a,
            b=name_b,
            metric=metric,
            log_ratios=logs,
            mean_a=float(xa.mean()),
            mean_b=float(xb.mean()),
            ratio=float(np.exp(np.median(logs))),
            ratio_interval=(float(np.exp(low)), float(np.exp(high))),
        )


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


#: Order of verdicts when picking the comparison that decides a claim (the worst shown).
VERDICT_ORDER = {"reproduced": 0, "inconclusive": 1, "too few tasks": 2, "not reproduced": 3}


def combined(verdicts: Iterable[str]) -> str:
    """One verdict from several (against several baselines, or for several seeds): every one reproduced ->
    ``reproduced``; any one not reproduced -> ``not reproduced``; any one on too few tasks -> ``too few tasks``;
    otherwise ``inconclusive``."""
    found = list(verdicts)
    for v in found:
        if v not in VERDICTS:
            raise ValueError(f"verdict {v!r} is unknown; use one of: {', '.join(VERDICTS)}")
    if not found:
        raise ValueError("no verdicts to combine")
    if all(v == "reproduced" for v in found):
        return "reproduced"
    for verdict in ("not reproduced", "too few tasks"):
        if verdict in found:
            return verdict
    return "inconclusive"


def lower_than(
    results: Mapping[str, EvalResult] | Sequence[Mapping[str, EvalResult]],
    learned: str = "LSTM",
    others: Sequence[str] | None = None,
    metric: str = "final",
    horizon: int | None = None,
    clusters: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The paired verdict of "``learned`` ends lower than each of ``others``" on the same held-out tasks.

    ``results`` is one :func:`~l2l_helpers.comparison.held_out_comparison` or a list of them, one per
    meta-trained optimizer (seed) under the same name. Returns the claim fields: ``verdict`` (combined over
    baselines and seeds), ``interval`` (of the median task's ratio in the comparison that decides: the one with
    the worst verdict, and among those the highest upper end), ``ratio``, ``metric``, ``n`` (independent tasks or
    task groups), ``seeds``, ``method``, ``ours`` (one line per comparison), ``log_ratios`` (the deciding
    comparison's, per task) and ``comparisons`` (every :class:`Paired`).
    """
    runs = [results] if isinstance(results, Mapping) else list(results)
    if not runs:
        raise ValueError("results is empty: give at least one comparison")
    comparisons = []
    for run in runs:
        if learned not in run:
            raise ValueError(f"learned={learned!r} is not among the results: {', '.join(run)}")
        names = [n for n in run if n != learned] if others is None else list(others)
        if missing := [n for n in names if n not in run]:
            raise ValueError(f"others={missing!r} are not among the results: {', '.join(run)}")
        comparisons += [
            paired(run[learned], run[n], metric, (learned, n), horizon=horizon, clusters=clusters) for n in names
        ]
    deciding = max(comparisons, key=lambda p: (VERDICT_ORDER[p.verdict], _finite_or_inf(p.ratio_interval[1])))
    per_seed = "" if len(runs) == 1 else f" ({len(runs)} optimizers)"
    what = "final loss" if metric == "final" else "sum of losses"
    if horizon is not None:
        what += f" at step {horizon}"
    return {
        "verdict": combined(p.verdict for p in comparisons),
        "interval": list(deciding.ratio_interval),
        "ratio": deciding.ratio,
        "metric": f"{what}: median-task ratio {learned}/{deciding.b}",
        "n": deciding.tasks,
        "seeds": len(runs),
        "method": METHOD,
        "ours": _ours(comparisons, len(runs)) + per_seed,
        "log_ratios": deciding.log_ratios.tolist(),
        "comparisons": comparisons,
    }


def _ours(comparisons: Sequence[Paired], seeds: int) -> str:
    """One line per comparison; with several seeds, one per baseline: the seeds' ratios and widest interval."""
    if seeds == 1:
        return "; ".join(p.text() for p in comparisons)
    parts = []
    for b in dict.fromkeys(p.b for p in comparisons):
        group = [p for p in comparisons if p.b == b]
        ratios = ", ".join(f"{p.ratio:.3g}" for p in group)
        low = min(p.ratio_interval[0] for p in group)
        high = max(p.ratio_interval[1] for p in group)
        parts.append(f"{group[0].a}/{b} {ratios} (all seeds within [{low:.3g}, {high:.3g}])")
    return "; ".join(parts)


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion ``successes / n`` (good at small n and near 0 or 1)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def win_fraction(
    a: EvalResult, b: EvalResult, metric: str = "final", names: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The claim "a ends lower than b on *most* tasks": the fraction of tasks where it does, with its Wilson 95%
    interval; ``reproduced`` when the interval lies above 1/2, ``not reproduced`` below, else ``inconclusive``."""
    xa, xb = per_task(a, metric), per_task(b, metric)
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must be the same tasks: got {xa.shape} and {xb.shape} per-task numbers")
    name_a, name_b = names or (a.name, b.name)
    wins, n = int((xa < xb).sum()), len(xa)
    low, high = wilson(wins, n)
    verdict = "reproduced" if low > 0.5 else ("not reproduced" if high < 0.5 else "inconclusive")
    what = "final loss" if metric == "final" else "sum of losses"
    return {
        "verdict": verdict,
        "interval": [low, high],
        "ratio": wins / n,
        "metric": f"fraction of tasks where {name_a} ends lower than {name_b} ({what})",
        "n": n,
        "method": "Wilson 95% interval of the fraction of tasks",
        "ours": f"{name_a} lower on {wins} of {n} ({wins / n:.0%}) vs {name_b}",
    }


def by_seed(
    results: Mapping[str, EvalResult], learned: Sequence[str], as_name: str = "LSTM"
) -> list[dict[str, EvalResult]]:
    """Split one comparison holding several meta-trained optimizers (``learned``: their names in ``results``,
    one per seed) into one comparison per seed, the optimizer renamed ``as_name`` beside every other entry
    (the baselines, shared): the list :func:`lower_than` and :func:`most_tasks` take."""
    if not learned:
        raise ValueError("learned must name at least one optimizer among the results")
    if missing := [n for n in learned if n not in results]:
        raise ValueError(f"learned={missing!r} are not among the results: {', '.join(results)}")
    shared = {n: r for n, r in results.items() if n not in learned}
    if as_name in shared:
        raise ValueError(f"as_name={as_name!r} is already a result name: choose another")
    return [{as_name: results[n], **shared} for n in learned]


def by_seed_groups(
    results: Mapping[str, EvalResult], groups: Mapping[str, Sequence[str]]
) -> list[dict[str, EvalResult]]:
    """:func:`by_seed` for several kinds of meta-trained optimizer at once: ``groups`` maps a kind's name to its
    seeds' names in ``results`` (equally many per kind); comparison k holds seed k of every kind under the kind's
    name, beside every entry of ``results`` that is in no group (the baselines). So "LSTM+GAC ends lower than the
    LSTM" is decided seed by seed, each pair of independently meta-trained optimizers on the same tasks."""
    if not groups:
        raise ValueError("groups is empty: map at least one name to its seeds' names")
    counts = {len(names) for names in groups.values()}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"groups have {sorted(counts)} seeds: give every kind the same, non-zero number of seeds")
    grouped = [n for names in groups.values() for n in names]
    if missing := [n for n in grouped if n not in results]:
        raise ValueError(f"{missing!r} are not among the results: {', '.join(results)}")
    shared = {n: r for n, r in results.items() if n not in grouped}
    if clash := [kind for kind in groups if kind in shared]:
        raise ValueError(f"group names {clash!r} are already result names: choose others")
    return [{kind: results[names[k]] for kind, names in groups.items()} | shared for k in range(counts.pop())]


def most_tasks(
    runs: Sequence[Mapping[str, EvalResult]], learned: str, other: str, metric: str = "final"
) -> dict[str, Any]:
    """The claim "``learned`` ends lower than ``other`` on most tasks" for every seed (each a comparison, as from
    :func:`by_seed`): :func:`win_fraction` per seed, verdicts :func:`combined`; the interval shown is the seed's
    with the lowest fraction."""
    if not runs:
        raise ValueError("runs is empty: give at least one comparison")
    rows = [win_fraction(run[learned], run[other], metric, (learned, other)) for run in runs]
    worst = min(rows, key=lambda r: r["ratio"])
    per_seed = "" if len(rows) == 1 else f" ({len(rows)} optimizers)"
    return {
        **worst,
        "verdict": combined(r["verdict"] for r in rows),
        "seeds": len(rows),
        "ours": "; ".join(r["ours"] for r in rows) + per_seed,
    }


def all_of(parts: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """One claim from several :func:`lower_than` claims that must all hold (e.g. one per gradient scale).

    The verdict is :func:`combined`; the interval, ratio and metric are those of the deciding part (the worst
    verdict, then the highest upper end), its label named in the metric; ``ours`` lists every part briefly.
    """
    if not parts or len(parts) != len(labels):
        raise ValueError(f"give one label per part: {len(parts)} parts, {len(labels)} labels")
    order = sorted(
        range(len(parts)), key=lambda i: (VERDICT_ORDER[parts[i]["verdict"]], _finite_or_inf(parts[i]["interval"][1]))
    )
    i = order[-1]
    ours = "; ".join(
        f"{label}: {p['ratio']:.3g} [{p['interval'][0]:.3g}, {p['interval'][1]:.3g}] {p['verdict']}"
        for label, p in zip(labels, parts, strict=True)
    )
    return {
        "verdict": combined(p["verdict"] for p in parts),
        "interval": list(parts[i]["interval"]),
        "ratio": parts[i]["ratio"],
        "metric": f"{parts[i]['metric']}, at {labels[i]}",
        "n": parts[i]["n"],
        "seeds": max(p.get("seeds", 1) for p in parts),
        "method": parts[i].get("method", METHOD),
        "log_ratios": parts[i].get("log_ratios"),
        "ours": ours,
    }
