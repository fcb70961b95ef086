"""Paired comparisons with a 95% bootstrap interval, and the verdict a claim gets from them.

Two optimizers that ran on the *same* held-out tasks (same initialisations, same minibatches: what
:func:`~l2l_helpers.comparison.held_out_comparison` gives) are compared task by task: d_i = a_i - b_i for a
metric of each task's loss curve (its final loss, or its sum of losses as the paper's meta-objective). Pairing
removes the spread between tasks, which on MNIST is about half the mean: two means with no interval cannot
say whether a gap of a few percent is real. The interval is a percentile bootstrap over tasks (pairs kept
together), for the mean difference and for the ratio of the means.

A claim "a is lower than b" is then

* ``reproduced`` when the whole interval of mean(a - b) lies below 0;
* ``not reproduced`` when it lies above 0 (b is lower, clearly);
* ``inconclusive`` when it straddles 0: these tasks cannot tell them apart.

A claim against several optimizers, or resting on several meta-trained optimizers (seeds), is
:func:`combined`: reproduced only if every comparison is, not reproduced if any one is, else inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluation import EvalResult

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not tested")
METRICS = ("final", "sum")
#: Bootstrap resamples: the interval's ends move by well under 1% of its width between seeds at this count.
N_BOOT = 10_000


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


@dataclass
class Paired:
    """a vs b on the same tasks: per-task differences, the mean difference and ratio of means with 95% intervals."""

    a: str
    b: str
    metric: str
    diffs: np.ndarray  # a_i - b_i, (n_tasks,)
    mean_a: float
    mean_b: float
    interval: tuple[float, float]  # of mean(a - b)
    ratio: float  # mean(a) / mean(b)
    ratio_interval: tuple[float, float]

    @property
    def tasks(self) -> int:
        return len(self.diffs)

    @property
    def mean_diff(self) -> float:
        return float(self.diffs.mean())

    @property
    def verdict(self) -> str:
        """Whether a is lower than b: the interval below 0, above 0, or across it."""
        low, high = self.interval
        if high < 0:
            return "reproduced"
        return "not reproduced" if low > 0 else "inconclusive"

    def text(self) -> str:
        """One line, e.g. ``LSTM/Adam 0.91 [0.84, 0.98], diff -0.012 [-0.02, -0.004] (20 tasks)``."""
        r_lo, r_hi = self.ratio_interval
        lo, hi = self.interval
        return (
            f"{self.a}/{self.b} {self.ratio:.3g} [{r_lo:.3g}, {r_hi:.3g}], "
            f"diff {self.mean_diff:.3g} [{lo:.3g}, {hi:.3g}]"
        )


def paired(
    a: EvalResult | np.ndarray,
    b: EvalResult | np.ndarray,
    metric: str = "final",
    names: tuple[str, str] | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    horizon: int | None = None,
) -> Paired:
    """Compare a with b on the same tasks: mean(a - b) and mean(a) / mean(b), each with a 95% bootstrap interval.

    ``a`` and ``b`` are evaluation results on the same tasks (or per-task numbers already). A diverged run
    (an infinite number) makes its task's difference infinite, and the interval's end on that side with it
    when enough resamples hold that task; where both diverged on a task, it counts as a tie.
    """
    xa = per_task(a, metric, horizon) if isinstance(a, EvalResult) else np.asarray(a, dtype=float)
    xb = per_task(b, metric, horizon) if isinstance(b, EvalResult) else np.asarray(b, dtype=float)
    if xa.shape != xb.shape or xa.ndim != 1:
        raise ValueError(f"a and b must be the same tasks: got {xa.shape} and {xb.shape} per-task numbers")
    if len(xa) < 2:
        raise ValueError(f"a paired interval needs at least 2 tasks, got {len(xa)}")
    if not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot={n_boot!r} must be an integer >= 100")
    name_a = names[0] if names else getattr(a, "name", "a")
    name_b = names[1] if names else getattr(b, "name", "b")
    with np.errstate(invalid="ignore"):
        diffs = np.where(~np.isfinite(xa) & ~np.isfinite(xb), 0.0, xa - xb)  # both diverged: a tie
    idx = np.random.default_rng(seed).integers(0, len(xa), size=(n_boot, len(xa)))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        boot_diff = diffs[idx].mean(axis=1)
        boot_ratio = xa[idx].mean(axis=1) / xb[idx].mean(axis=1)
        ratio = float(xa.mean() / xb.mean())
    return Paired(
        a=name_a,
        b=name_b,
        metric=metric,
        diffs=diffs,
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        interval=_percentiles(boot_diff),
        ratio=ratio,
        ratio_interval=_percentiles(boot_ratio),
    )


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% points of the bootstrap values, taken among them (no interpolation: an infinite
    value, from a diverged run, stays infinite instead of turning into NaN)."""
    values = values[~np.isnan(values)]
    if not len(values):
        return (-math.inf, math.inf)
    return float(np.percentile(values, 2.5, method="lower")), float(np.percentile(values, 97.5, method="higher"))


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def combined(verdicts: Iterable[str]) -> str:
    """One verdict from several (against several baselines, or for several seeds): every one reproduced ->
    ``reproduced``; any one not reproduced -> ``not reproduced``; otherwise ``inconclusive``."""
    found = list(verdicts)
    for v in found:
        if v not in VERDICTS:
            raise ValueError(f"verdict {v!r} is unknown; use one of: {', '.join(VERDICTS)}")
    if not found:
        raise ValueError("no verdicts to combine")
    if all(v == "reproduced" for v in found):
        return "reproduced"
    return "not reproduced" if "not reproduced" in found else "inconclusive"


def lower_than(
    results: Mapping[str, EvalResult] | Sequence[Mapping[str, EvalResult]],
    learned: str = "LSTM",
    others: Sequence[str] | None = None,
    metric: str = "final",
    horizon: int | None = None,
) -> dict[str, Any]:
    """The paired verdict of "``learned`` ends lower than each of ``others``" on the same held-out tasks.

    ``results`` is one :func:`~l2l_helpers.comparison.held_out_comparison` or a list of them, one per
    meta-trained optimizer (seed) under the same name. Returns the claim fields: ``verdict`` (combined over
    baselines and seeds), ``interval`` (of the ratio of means in the comparison that decides: the one with the
    worst verdict, and among those the highest upper end), ``ratio``, ``metric``, ``tasks``, ``seeds``,
    ``ours`` (one line per comparison) and ``comparisons`` (every :class:`Paired`).
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
        comparisons += [paired(run[learned], run[n], metric, (learned, n), horizon=horizon) for n in names]
    rank = {"reproduced": 0, "inconclusive": 1, "not reproduced": 2}
    deciding = max(comparisons, key=lambda p: (rank[p.verdict], _finite_or_inf(p.ratio_interval[1])))
    per_seed = "" if len(runs) == 1 else f" ({len(runs)} optimizers)"
    return {
        "verdict": combined(p.verdict for p in comparisons),
        "interval": list(deciding.ratio_interval),
        "ratio": deciding.ratio,
        "metric": f"{'final loss' if metric == 'final' else 'sum of losses'}: ratio of means {learned}/{deciding.b}",
        "tasks": deciding.tasks,
        "seeds": len(runs),
        "ours": _ours(comparisons, len(runs)) + per_seed,
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
        "tasks": n,
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
    rank = {"reproduced": 0, "inconclusive": 1, "not reproduced": 2}
    order = sorted(
        range(len(parts)), key=lambda i: (rank[parts[i]["verdict"]], _finite_or_inf(parts[i]["interval"][1]))
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
        "tasks": parts[i]["tasks"],
        "seeds": max(p.get("seeds", 1) for p in parts),
        "ours": ours,
    }
