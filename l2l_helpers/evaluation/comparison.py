"""Optimizers side by side on the same held-out tasks: the comparisons behind every claim (paper, Figures 4-5).

:func:`held_out_comparison` runs learned optimizers and tuned baselines on the same held-out (test) tasks, the
same initialisations and minibatches; :func:`beats` and :func:`comparison_markdown` turn the results into a
verdict and a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from l2l_helpers.evaluation.loops import EvalResult, evaluate_rules
from l2l_helpers.evaluation.tuning import TuningResult
from l2l_helpers.optimizees.base import Problem
from l2l_helpers.optimizer.baselines import make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule


def held_out_comparison(
    problem: Problem,
    learned: Mapping[str, CoordinatewiseLSTM],
    tuned: Mapping[str, TuningResult],
    n_tasks: int = 20,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
    split: str = "dev",
) -> dict[str, EvalResult]:
    """Every learned optimizer and every tuned baseline on the same ``n_tasks`` held-out tasks of ``split``:
    ``dev`` for development, ``test`` (locked) for the notebooks' claims.

    They run side by side as copies of one task batch (:func:`~l2l_helpers.evaluation.loops.evaluate_rules`).
    """
    rules: dict[str, Any] = {name: LearnedRule(net, name) for name, net in learned.items()}
    rules.update({name: make_baseline(name, t.best_lr) for name, t in tuned.items()})
    return evaluate_rules(rules, problem, n_tasks, steps, split, device, progress=progress)


def held_out_by_metric(
    problem: Problem,
    learned: Mapping[str, CoordinatewiseLSTM],
    tuned_for: Mapping[str, Mapping[str, TuningResult]],
    n_tasks: int = 20,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
    split: str = "dev",
) -> dict[str, dict[str, EvalResult]]:
    """:func:`held_out_comparison` once per metric a claim judges, each against baselines tuned for that metric.

    ``tuned_for`` maps a metric (``final``, ``sum``) to its tuned baselines. A claim about the sum of losses
    compares against baselines tuned for the sum, a claim about the final loss against those tuned for it. The
    learned optimizers run once; a baseline runs once per distinct learning rate. Returns ``{metric: results}``.
    """
    if not tuned_for:
        raise ValueError("tuned_for is empty: give the tuned baselines of at least one metric")
    rules: dict[str, Any] = {name: LearnedRule(net, name) for name, net in learned.items()}
    for tuned in tuned_for.values():
        rules.update({f"{name} @ {t.best_lr!r}": make_baseline(name, t.best_lr) for name, t in tuned.items()})
    ran = evaluate_rules(rules, problem, n_tasks, steps, split, device, progress=progress)
    out = {}
    for metric, tuned in tuned_for.items():
        baselines = {name: ran[f"{name} @ {t.best_lr!r}"] for name, t in tuned.items()}
        out[metric] = {name: ran[name] for name in learned} | {
            name: EvalResult(name, r.losses, lr=r.lr) for name, r in baselines.items()
        }
    return out


def held_out_comparisons_at(
    problem: Problem,
    learned: Mapping[str, CoordinatewiseLSTM],
    tuned_at: Mapping[int, Mapping[str, TuningResult]],
    n_tasks: int = 20,
    device: torch.device | str = "cpu",
    progress: bool = True,
    split: str = "dev",
) -> dict[int, dict[str, EvalResult]]:
    """:func:`held_out_comparison` at several horizons, each with the baselines tuned for it (``tuned_at``, as from
    :func:`~l2l_helpers.evaluation.loops.tune_baselines_at`), e.g. Figure 4's 100 and 200 steps.

    The learned optimizers run once, to the longest horizon; each shorter comparison reads their first steps
    (:meth:`EvalResult.first`: the same tasks, initialisations and minibatches give the same first steps), so
    several seeds at two horizons cost one run each. Only the baselines, whose learning rate depends on the
    horizon, run again. Returns ``{horizon: results}``.
    """
    if not tuned_at:
        raise ValueError("tuned_at is empty: give the tuned baselines of at least one horizon")
    longest = max(tuned_at)
    full = held_out_comparison(problem, learned, tuned_at[longest], n_tasks, longest, device, progress, split)
    out = {}
    for horizon in sorted(tuned_at):
        if horizon == longest:
            out[horizon] = full
            continue
        baselines = held_out_comparison(problem, {}, tuned_at[horizon], n_tasks, horizon, device, progress, split)
        out[horizon] = {name: full[name].first(horizon) for name in learned} | baselines
    return out


def comparison_markdown(results: Mapping[str, EvalResult]) -> str:
    """A Markdown table: learning rate, mean final loss +- std, log10 of it, and mean sum of losses."""
    lines = ["| optimizer | lr | mean final loss | log10 | sum of losses |", "|---|---|---|---|---|"]
    for name, res in sorted(results.items(), key=lambda kv: _finite_or_inf(kv[1].mean_final)):
        s = res.summary()
        lr = f"{s['lr']:.3g}" if s["lr"] is not None else "learned"
        lines.append(
            f"| {name} | {lr} | {s['mean_final']:.4g} ± {s['std_final']:.2g} | {s['log10_mean_final']:.3f} "
            f"| {s['mean_sum']:.4g} |"
        )
    return "\n".join(lines)


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def beats(
    results: Mapping[str, EvalResult], learned: str = "LSTM", others: Sequence[str] | None = None
) -> tuple[bool, str]:
    """Whether ``learned`` has a lower mean final loss than each of ``others`` (default: every other entry).

    Returns (holds, a line with the numbers, e.g. ``"LSTM 0.152 vs Adam 0.188, NAG 0.141"``).
    """
    if learned not in results:
        raise ValueError(f"learned={learned!r} is not among the results: {', '.join(results)}")
    others = [n for n in results if n != learned] if others is None else list(others)
    mine = _finite_or_inf(results[learned].mean_final)
    holds = all(mine < _finite_or_inf(results[n].mean_final) for n in others)
    text = f"{learned} {mine:.3g} vs " + ", ".join(f"{n} {results[n].mean_final:.3g}" for n in others)
    return holds, text
