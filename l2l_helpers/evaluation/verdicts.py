"""From paired intervals to a claim's verdict: one comparison (:func:`lower_than`), seeds combined (:func:`by_seed`),
the share of tasks won (:func:`most_tasks`), several conditions at once (:func:`all_of`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from l2l_helpers.evaluation.intervals import METHOD, VERDICTS, Paired, _finite_or_inf, paired, per_task, wilson
from l2l_helpers.evaluation.loops import EvalResult

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

    ``results`` is one :func:`~l2l_helpers.evaluation.comparison.held_out_comparison` or a list of them, one per
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
