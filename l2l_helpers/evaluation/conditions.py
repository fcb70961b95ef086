"""Held-out comparisons over several conditions at once (notebooks 09 and 10: image sizes and styles, label sets), the
seeds' mean curves, and the gradient scales each LSTM of a grouped optimizer sees (paper, Section 3.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from l2l_helpers.evaluation.loops import EvalResult
from l2l_helpers.evaluation.tuning import tune_baselines
from l2l_helpers.optimizees import Problem


def comparisons_by_condition(
    problems: Mapping[str, Problem],
    learned: Mapping[str, Mapping[str, Any]],
    grid: Sequence[float],
    tune_tasks: int = 2,
    eval_tasks: int = 4,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
    metrics: Sequence[str] = ("final", "sum"),
    split: str = "dev",
) -> tuple[dict[str, dict[str, dict[str, EvalResult]]], dict[str, dict[str, dict[str, Any]]]]:
    """Figure 6's panels (notebook 10) and Figure 7's (notebook 09): for each condition (``problems``, e.g. all
    labels, 5, 2; or a painting at a resolution), the learned optimizers ``learned[condition]`` and the four baselines
    on the same held-out tasks of that condition (``split``), once per metric a claim judges, each against baselines
    tuned for that metric (:func:`~l2l_helpers.evaluation.comparison.held_out_by_metric`).

    The baselines are tuned on training tasks of each condition: on the first over the whole ``grid`` (stepping past
    its edge), on the others around those rates (:func:`~l2l_helpers.evaluation.loops.tune_near`, a half-decade
    either side
    and past the edge), which costs a third of a full grid per condition; both metrics score the same tuning runs.
    Returns (results, tuned) by condition and metric: ``results[condition][metric][name]``.
    """
    from l2l_helpers.evaluation.comparison import held_out_by_metric
    from l2l_helpers.evaluation.tuning import tune_near

    if not problems:
        raise ValueError("problems is empty: give at least one condition (e.g. a label set)")
    if missing := [k for k in problems if k not in learned]:
        raise ValueError(f"no learned optimizers for {missing}: give learned[condition] for every condition")
    results: dict[str, dict[str, dict[str, EvalResult]]] = {}
    tuned: dict[str, dict[str, dict[str, Any]]] = {}
    first: dict[str, dict[str, Any]] = {}
    for key, problem in problems.items():
        tuned[key] = {}
        for metric in metrics:
            if metric not in first:
                tuned[key][metric] = first[metric] = tune_baselines(
                    problem,
                    grid=grid,
                    n_tasks=tune_tasks,
                    steps=steps,
                    device=device,
                    criterion=metric,
                    progress=progress,
                )
            else:
                tuned[key][metric] = tune_near(
                    problem, first[metric], n_tasks=tune_tasks, steps=steps, device=device, progress=progress
                )
        results[key] = held_out_by_metric(problem, learned[key], tuned[key], eval_tasks, steps, device, progress, split)
    return results, tuned


def seed_means(results: Mapping[str, EvalResult], kinds: Mapping[str, Sequence[str]]) -> dict[str, EvalResult]:
    """Each kind of learned optimizer as one curve (notebook 10's Figure 6): its seeds' losses stacked as more tasks,
    so the mean curve is the mean over seeds and held-out networks; entries in no kind (baselines) are kept."""
    grouped = {n for names in kinds.values() for n in names}
    if missing := sorted(grouped - set(results)):
        raise ValueError(f"{missing} are not among the results: {', '.join(results)}")
    out = {kind: EvalResult(kind, torch.cat([results[n].losses for n in names])) for kind, names in kinds.items()}
    return out | {n: r for n, r in results.items() if n not in grouped}


def group_gradient_scales(
    problem: Any, task: int = 0, device: torch.device | str = "cpu", split: str = "dev"
) -> dict[str, Any]:
    """Notebook 10: the gradient magnitudes of each parameter group (``problem.groups()``, conv and fc) at held-out
    network ``task``'s initial theta on its first minibatch: what one LSTM for every parameter would have to serve.
    Returns ``{"table": {group: {...}}, "markdown": str}``."""
    tasks = problem.tasks(split, [task], device)
    theta = tasks.init_theta().requires_grad_(True)
    (grad,) = torch.autograd.grad(tasks.loss(theta, 0).sum(), theta)
    magnitude = grad[0].abs().cpu()
    table = {}
    for name, idx in problem.groups().items():
        g = magnitude[idx]
        table[name] = {
            "coordinates": int(g.numel()),
            "median": float(g.median()),
            "p90": float(torch.quantile(g, 0.9)),
            "mean": float(g.mean()),
        }
    lines = ["| group | coordinates | median abs(g) | 90th percentile | mean |", "|---|---|---|---|---|"]
    lines += [
        f"| {name} | {t['coordinates']:,} | {t['median']:.3g} | {t['p90']:.3g} | {t['mean']:.3g} |"
        for name, t in table.items()
    ]
    names = list(table)
    if len(names) == 2 and table[names[0]]["median"] > 0:
        ratio = table[names[1]]["median"] / table[names[0]]["median"]
        lines.append(f"\nMedian gradient magnitude, {names[1]} / {names[0]}: {ratio:.3g}x.")
    return {"table": table, "markdown": "\n".join(lines)}
