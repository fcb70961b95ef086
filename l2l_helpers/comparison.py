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

from .baselines import make_baseline
from .coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule
from .evaluation import EvalResult, TuningResult, evaluate_rules
from .optimizees.base import Problem


def held_out_comparison(
    problem: Problem,
    learned: Mapping[str, CoordinatewiseLSTM],
    tuned: Mapping[str, TuningResult],
    n_tasks: int = 20,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, EvalResult]:
    """Every learned optimizer and every tuned baseline on the same ``n_tasks`` held-out (test) tasks.

    They run side by side as copies of one task batch (:func:`~l2l_helpers.evaluation.evaluate_rules`).
    """
    rules: dict[str, Any] = {name: LearnedRule(net, name) for name, net in learned.items()}
    rules.update({name: make_baseline(name, t.best_lr) for name, t in tuned.items()})
    return evaluate_rules(rules, problem, n_tasks, steps, "test", device, progress=progress)


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
