"""Paired comparisons with a 95% interval that keeps its word, and the verdict a claim gets from them.

Two optimizers that ran on the *same* held-out tasks (same initialisations, same minibatches: what
:func:`~l2l_helpers.comparison.held_out_comparison` gives) are compared task by task. For a metric of each
task's loss curve (its final loss, or its sum of losses as the paper's meta-objective) the comparison reads
the per-task log ratio ``l_i = log a_i - log b_i``: pairing removes the spread between tasks (on MNIST about
half the mean), and the log makes the comparison scale-free and its spread closer to symmetric.

The interval is Student's t on the mean log ratio (``scipy.stats.t``), ``mean(l) +- t(0.975, n-1) s / sqrt(n)``,
shown as a ratio: ``exp(mean l)``, the geometric mean of the per-task ratios ``a_i / b_i``, with the interval's
ends exponentiated. A percentile bootstrap over so few tasks covers the truth far less often than it says (about
79% of the time at 4 tasks); the t-interval keeps at least 93% at every task count a claim uses, on normal and on
skewed log ratios and on log ratios resampled from real ``dev`` runs (``tests/test_interval_coverage.py``).
Tasks that belong together (crops of one photo) are first averaged per group (``clusters``): the groups are the
independent units and n counts them.

A claim "a is lower than b" is then

* ``reproduced`` when the whole interval of the ratio lies below 1;
* ``not reproduced`` when it lies above 1 (b is lower, clearly);
* ``inconclusive`` when it straddles 1: these tasks cannot tell them apart;
* ``too few tasks`` when n is below :data:`MIN_TASKS`, where no interval is trusted.

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
#: The fewest independent tasks (or task groups) a paired interval decides with; the coverage test checks it.
MIN_TASKS = 4
#: How every paired interval is computed (recorded in each claim).
METHOD = "Student t 95% interval of the mean per-task log ratio (paired), as a geometric-mean ratio"


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


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[Any, Any]:
    """Student's t interval of the mean of ``values`` (n,), n >= 2; infinite values open the interval on their
    side (a diverged run), the finite ones give the other end. ``values`` of shape (..., n), all finite, give
    arrays of intervals, one per row (the coverage test draws thousands at once)."""
    values = np.asarray(values, dtype=float)
    if values.ndim > 1:
        if not np.isfinite(values).all():
            raise ValueError("rows of values must be finite; give one row at a time where a run diverged")
        n = values.shape[-1]
        half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(axis=-1, ddof=1) / math.sqrt(n)
        return values.mean(axis=-1) - half, values.mean(axis=-1) + half
    finite = values[np.isfinite(values)]
    if len(finite) >= 2:
        mean, sem = float(finite.mean()), float(stats.sem(finite))
        half = float(stats.t.ppf(0.5 + level / 2, len(finite) - 1)) * sem
        low, high = mean - half, mean + half
    else:
        low, high = -math.inf, math.inf
    if (values == -math.inf).any():
        low = -math.inf
    if (values == math.inf).any():
        high = math.inf
    return low, high


def power(effect: float, n: int, level: float = 0.95) -> float:
    """The chance that a paired t-interval on n tasks excludes 0 when the per-task log ratios have mean/sd =
    ``effect`` (normal): the noncentral t of Student's test (``scipy.stats.nct``)."""
    if n < 2:
        raise ValueError(f"n={n} must be at least 2")
    crit = stats.t.ppf(0.5 + level / 2, n - 1)
    shift = abs(effect) * math.sqrt(n)
    return float(stats.nct.sf(crit, n - 1, shift) + stats.nct.cdf(-crit, n - 1, shift))


def tasks_for_power(effect: float, target: float = 0.8, most: int = 1000) -> int | None:
    """The fewest tasks (at least :data:`MIN_TASKS`) at which :func:`power` reaches ``target``; None past ``most``."""
    for n in range(MIN_TASKS, most + 1):
        if power(effect, n) >= target:
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
    """a vs b on the same tasks: per-task log ratios, their geometric-mean ratio and its 95% t-interval."""

    a: str
    b: str
    metric: str
    log_ratios: np.ndarray  # log a_i - log b_i, (n,): per task, or per group of tasks
    mean_a: float
    mean_b: float
    ratio: float  # exp(mean log ratio): the geometric mean of a_i / b_i
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
        """One line, e.g. ``LSTM/Adam 0.91 [0.84, 0.98]`` (geometric-mean ratio and its 95% interval)."""
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
    """Compare a with b on the same tasks: the geometric mean of the per-task ratios a_i / b_i with its 95%
    t-interval (:func:`t_interval` on :func:`log_ratios`).

    ``a`` and ``b`` are evaluation results on the same tasks (or positive per-task numbers already). A diverged
    run (an infinite number) opens the interval on its side; where both diverged on a task, it counts as a tie.
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
    finite = logs[np.isfinite(logs)]
    centre = float(finite.mean()) if len(finite) else 0.0
    if (logs == math.inf).any() and not (logs == -math.inf).any():
        centre = math.inf
    elif (logs == -math.inf).any() and not (logs == math.inf).any():
        centre = -math.inf
    low, high = t_interval(logs)
    with np.errstate(over="ignore"):
        return Paired(
            a=name_a,
            b=name_b,
            metric=metric,
            log_ratios=logs,
            mean_a=float(xa.mean()),
            mean_b=float(xb.mean()),
            ratio=float(np.exp(centre)),
            ratio_interval=(float(np.exp(low)), float(np.exp(high))),
        )


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


#: Order of verdicts when picking the comparison that decides a claim (the worst shown).
_RANK = {"reproduced": 0, "inconclusive": 1, "too few tasks": 2, "not reproduced": 3}


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
    baselines and seeds), ``interval`` (of the geometric-mean ratio in the comparison that decides: the one with
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
    deciding = max(comparisons, key=lambda p: (_RANK[p.verdict], _finite_or_inf(p.ratio_interval[1])))
    per_seed = "" if len(runs) == 1 else f" ({len(runs)} optimizers)"
    what = "final loss" if metric == "final" else "sum of losses"
    if horizon is not None:
        what += f" at step {horizon}"
    return {
        "verdict": combined(p.verdict for p in comparisons),
        "interval": list(deciding.ratio_interval),
        "ratio": deciding.ratio,
        "metric": f"{what}: geometric-mean ratio {learned}/{deciding.b}",
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
        range(len(parts)), key=lambda i: (_RANK[parts[i]["verdict"]], _finite_or_inf(parts[i]["interval"][1]))
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
