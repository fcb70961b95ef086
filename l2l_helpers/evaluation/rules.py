"""The rules that turn paired intervals into the verdicts of the paper's claims (notebooks 06-11).

Every rule here is symmetric: a claim is ``reproduced`` only when the data show it, ``not reproduced`` when they
show the opposite, and ``inconclusive`` when the interval cannot tell (or ``too few tasks``). An absence of
evidence never reproduces a claim, not even a negative one such as "the optimizer loses its edge".

* :func:`beats_baselines`: "the learned optimizer ends lower than every tuned baseline" (Figures 4-7);
* :func:`keeps_improving`: "run longer than it was trained for, its loss keeps falling" (Figure 4, right),
  the same tasks at two steps;
* :func:`edge_lost`: "trained on sigmoid MLPs, it loses its edge under ReLU" (Figure 5, right).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from l2l_helpers.evaluation.intervals import METHOD, MIN_TASKS, log_ratios, median_interval, paired, per_task
from l2l_helpers.evaluation.loops import EvalResult
from l2l_helpers.evaluation.verdicts import VERDICT_ORDER, combined, lower_than


def beats_baselines(
    runs: Sequence[Mapping[str, EvalResult]],
    learned: str = "LSTM",
    others: Sequence[str] | None = None,
    sum_runs: Sequence[Mapping[str, EvalResult]] | None = None,
) -> dict[str, Any]:
    """The claim fields of "``learned`` ends lower than every baseline" (final loss; ``runs`` one comparison per
    seed, as from :func:`~l2l_helpers.evaluation.intervals.by_seed`). With ``sum_runs`` (the same optimizers against
    baselines
    tuned for the sum of losses), the sum-of-losses comparison is shown beside it in ``ours``, without deciding."""
    final = lower_than(runs, learned, others, "final")
    if sum_runs is None:
        return final
    total = lower_than(sum_runs, learned, others, "sum")
    low, high = total["interval"]
    beside = (
        f"sum of losses (baselines tuned for it): {total['verdict']}, {learned}/{total['metric'].rsplit('/', 1)[-1]} "
        f"{total['ratio']:.3g} [{low:.3g}, {high:.3g}]"
    )
    return {**final, "ours": f"{final['ours']}; {beside}"}


def window_levels(result: EvalResult, step: int, window: int = 1) -> np.ndarray:
    """Per task (n_tasks,): the mean loss over the ``window`` steps up to ``step`` (``window=1``: the loss at it)."""
    if not (isinstance(window, int) and window >= 1):
        raise ValueError(f"window={window!r} must be a positive integer")
    if not (isinstance(step, int) and window <= step <= result.steps):
        raise ValueError(f"step={step!r} must be between window={window} and {result.steps}")
    losses = result.losses.double().cpu().numpy()
    return losses[:, step - window + 1 : step + 1].mean(axis=1)


def keeps_improving(results: Mapping[str, EvalResult], early: int, late: int, window: int = 1) -> dict[str, Any]:
    """The claim fields of "run past ``early`` steps, the loss is still lower at ``late``": for each seed (``results``
    by seed name), the same held-out tasks at both steps, paired, their mean loss over the ``window`` steps up to
    each; ``reproduced`` when every seed's ratio late/early lies below 1, ``not reproduced`` when one lies above."""
    if not results:
        raise ValueError("results is empty: give one evaluation per seed")
    if not late > early:
        raise ValueError(f"late={late} must be after early={early}")
    pairs = [
        paired(
            window_levels(r, late, window), window_levels(r, early, window), names=(f"{name} @ {late}", f"@ {early}")
        )
        for name, r in results.items()
    ]
    deciding = max(pairs, key=lambda p: (VERDICT_ORDER[p.verdict], p.ratio_interval[1]))
    what = "loss" if window == 1 else f"mean loss over the {window} steps"
    return {
        "verdict": combined(p.verdict for p in pairs),
        "interval": list(deciding.ratio_interval),
        "ratio": deciding.ratio,
        "metric": f"{what} up to step {late} / up to step {early}, same tasks: median-task ratio",
        "n": deciding.tasks,
        "seeds": len(pairs),
        "method": METHOD,
        "ours": "; ".join(p.text() for p in pairs),
        "log_ratios": deciding.log_ratios.tolist(),
    }


def edge_lost(
    as_trained: Sequence[Mapping[str, EvalResult]],
    changed: Sequence[Mapping[str, EvalResult]],
    learned: str = "LSTM",
    others: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The claim fields of "the optimizer loses its edge when the network changes" (Figure 5, right: sigmoid to ReLU).

    ``as_trained`` and ``changed``: one comparison per seed on the networks it was trained on and on the changed
    ones, the same task indices (same seeds: same initialisations and minibatches). For each seed the edge is lost
    when the data show it: on the changed networks a tuned baseline ends clearly lower (a paired interval above 1),
    or the log ratio against the best baseline of the changed networks rises from the trained networks to the
    changed ones (a paired sign-test interval above 0). Then

    * ``reproduced``: it beats every baseline as trained, and every seed's edge is lost on the changed networks;
    * ``not reproduced``: it still beats every baseline on the changed networks, or as trained a baseline is lower;
    * ``inconclusive`` otherwise (``too few tasks`` below the smallest n).
    """
    if len(as_trained) != len(changed) or not changed:
        raise ValueError(f"give one comparison per seed for both: {len(as_trained)} and {len(changed)}")
    trained_edge = lower_than(as_trained, learned, others)
    changed_edge = lower_than(changed, learned, others)
    names = [n for n in changed[0] if n != learned] if others is None else list(others)
    lost, notes = [], []
    for k, (before, after) in enumerate(zip(as_trained, changed, strict=True)):
        worse = [b for b in names if paired(after[learned], after[b], names=(learned, b)).verdict == "not reproduced"]
        best = min(names, key=lambda b: after[b].mean_final)
        rise = log_ratios(per_task(after[learned]), per_task(after[best])) - log_ratios(
            per_task(before[learned]), per_task(before[best])
        )
        low, high = median_interval(rise)
        rises = len(rise) >= MIN_TASKS and low > 0
        lost.append(bool(worse) or rises)
        change = float(np.exp(np.median(rise))) if len(rise) else float("nan")
        notes.append(
            f"seed {k}: clearly behind {', '.join(worse) or 'no baseline'}; ratio to {best} x{change:.3g} "
            f"[{np.exp(low):.3g}, {np.exp(high):.3g}] from trained to changed"
        )
    if trained_edge["verdict"] in ("not reproduced", "too few tasks") or changed_edge["verdict"] == "too few tasks":
        verdict = trained_edge["verdict"] if trained_edge["verdict"] != "reproduced" else "too few tasks"
    elif changed_edge["verdict"] == "reproduced":
        verdict = "not reproduced"
    elif trained_edge["verdict"] == "reproduced" and all(lost):
        verdict = "reproduced"
    else:
        verdict = "inconclusive"
    return {
        **{k: changed_edge[k] for k in ("interval", "ratio", "n", "seeds", "method", "log_ratios")},
        "verdict": verdict,
        "metric": f"changed networks, {changed_edge['metric']}",
        "ours": f"as trained: {trained_edge['verdict']}, {trained_edge['ours']}; changed: {changed_edge['verdict']}, "
        f"{changed_edge['ours']}; " + "; ".join(notes),
    }
