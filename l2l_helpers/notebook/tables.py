"""Comparisons as Markdown tables for the notebooks: network by network against the best tuned baseline (notebooks 07,
08), losses in windows along long horizons (notebook 11), input statistics (08), ReLU and batch norm (10); and the
MLP panels' quick learned-vs-tuned comparison."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from l2l_helpers.evaluation.comparison import held_out_comparison
from l2l_helpers.evaluation.inputs import input_statistics
from l2l_helpers.evaluation.intervals import Paired, _finite_or_inf, paired, per_task
from l2l_helpers.evaluation.loops import EvalResult
from l2l_helpers.evaluation.tuning import tune_baselines
from l2l_helpers.optimizees import MNISTProblem
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM
from l2l_helpers.runtime import check_positive_int

#: The learning rates the live panels try for each baseline (a coarse grid: panels must answer in seconds; the
#: search still steps past an edge, as every tuning does).
PANEL_LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


#: The baselines the live panels tune and run: Nesterov momentum (0.9) and Adam.
PANEL_BASELINES = ("NAG", "Adam")


def lstm_vs_baselines(
    net: CoordinatewiseLSTM,
    hidden: Sequence[int] = (20,),
    activation: str = "sigmoid",
    n_tasks: int = 4,
    steps: int = 100,
    grid: Sequence[float] = PANEL_LR_GRID,
    device: torch.device | str = "cpu",
    init: str = "normal",
    baselines: Sequence[str] = PANEL_BASELINES,
) -> dict[str, EvalResult]:
    """The learned optimizer vs ``baselines`` (each lr tuned on ``grid``, training tasks) on held-out MLPs of any shape.

    Every optimizer runs on the same ``n_tasks`` held-out networks (same initialisations and minibatches). What
    the optimizee panels of notebooks 07 and 08 compute when a slider moves.
    """
    problem = MNISTProblem(hidden=tuple(hidden), activation=activation, init=init)
    tuned = tune_baselines(problem, tuple(baselines), grid, n_tasks, steps, device, progress=False)
    return held_out_comparison(problem, {"LSTM": net}, tuned, n_tasks, steps, device, progress=False)


def versus_best_baseline(
    results: Mapping[str, EvalResult], learned: str = "LSTM", metric: str = "final", skip: Sequence[str] = ()
) -> Paired:
    """Notebooks 07 and 08: the learned optimizer against the baseline with the lowest mean ``metric`` on these tasks,
    paired task by task (ratio of means with its 95% bootstrap interval). ``skip``: other entries of ``results``
    that are not baselines (the other seeds of the learned optimizer)."""
    ranked = _ranked_baselines(results, [learned, *skip], metric)
    if learned not in results or not ranked:
        raise ValueError(f"results must hold {learned!r} and at least one baseline, got: {', '.join(results)}")
    return paired(results[learned], results[ranked[0]], metric, (learned, ranked[0]))


def _names(learned: str | Sequence[str]) -> list[str]:
    return [learned] if isinstance(learned, str) else list(learned)


def _ranked_baselines(
    results: Mapping[str, EvalResult], learned: str | Sequence[str] = "LSTM", metric: str = "final"
) -> list[str]:
    """Every optimizer of ``results`` but the ``learned`` one(s), lowest mean ``metric`` first (not finite: inf)."""
    mine = _names(learned)
    others = [name for name in results if name not in mine]
    return sorted(others, key=lambda name: _finite_or_inf(float(per_task(results[name], metric).mean())))


def best_baselines_markdown(
    results: Mapping[str, Mapping[str, EvalResult]], learned: str | Sequence[str] = "LSTM"
) -> str:
    """Notebooks 06 and 07: one sentence naming, for each setting (horizon or network), the tuned baseline with the
    lowest mean final loss on its held-out tasks, its learning rate, and the runner-up: what "beats every baseline"
    has to beat, computed in this run. ``results`` maps a setting's label to its comparison; ``learned``: the
    learned optimizer's name, or the names of its seeds (none of them is a baseline)."""
    if not results:
        raise ValueError("results is empty: give at least one setting's comparison")
    parts = []
    for label, res in results.items():
        ranked = _ranked_baselines(res, learned)
        if not ranked:
            raise ValueError(f"{label!r} holds no baseline besides {learned!r}")
        best = res[ranked[0]]
        lr = f"lr {best.lr:.3g}, " if best.lr is not None else ""
        text = f"{label}: **{ranked[0]}** ({lr}mean final loss {best.mean_final:.3g}"
        if len(ranked) > 1:
            text += f"; next {ranked[1]}, {res[ranked[1]].mean_final:.3g}"
        parts.append(text + ")")
    return "The best tuned baseline, lowest mean final loss on these held-out networks: " + "; ".join(parts) + "."


def networks_markdown(results: Mapping[str, Mapping[str, EvalResult]], learned: str | Sequence[str] = "LSTM") -> str:
    """Notebooks 07 and 08: one row per network: the mean final loss of every optimizer (the lowest in bold), and the
    learned optimizer's ratio to the best baseline with its paired 95% interval, on the final loss and on the sum
    of losses (each against the baseline best on that metric). ``learned``: one name, or the names of several
    meta-trained optimizers (seeds), each then gets its own ratio, in the order given."""
    mine = _names(learned)
    names = list(dict.fromkeys(name for res in results.values() for name in res))
    names = [*mine, *(n for n in names if n not in mine)]
    head = "LSTM" if len(mine) > 1 else mine[0]
    per = f" ({', '.join(mine)})" if len(mine) > 1 else ""
    lines = [
        "| network | " + " | ".join(names) + f" | {head} / best baseline, final loss{per} | "
        f"{head} / best baseline, sum of losses{per} |",
        "|---" * (len(names) + 3) + "|",
    ]
    for label, res in results.items():
        finals = {n: res[n].mean_final for n in names if n in res}
        lowest = min(finals, key=lambda n: _finite_or_inf(finals[n]))
        cells = [
            "" if n not in finals else (f"**{finals[n]:.3g}**" if n == lowest else f"{finals[n]:.3g}") for n in names
        ]
        ratios = []
        for metric in ("final", "sum"):
            pairs = [versus_best_baseline(res, name, metric, skip=mine) for name in mine]
            each = "; ".join(f"{p.ratio:.3g} [{p.ratio_interval[0]:.3g}, {p.ratio_interval[1]:.3g}]" for p in pairs)
            ratios.append(f"{each} vs {pairs[0].b}")
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def window_mean(result: EvalResult, step: int, window: int = 50) -> float:
    """Mean loss over the tasks and over the ``window`` steps up to ``step`` (fewer at the start): on minibatch
    losses (MNIST), a level that one step's noise does not decide (notebook 11)."""
    levels = _window_levels(result, window)
    if not 0 <= step < len(levels):
        raise ValueError(f"step={step} is outside the run's steps 0..{len(levels) - 1}")
    return float(levels[step])


def _window_levels(result: EvalResult, window: int) -> np.ndarray:
    """:func:`window_mean` at every step 0..T at once (running sums)."""
    check_positive_int("window", window)
    mean = result.mean.double().numpy()
    sums = np.concatenate([[0.0], np.cumsum(mean)])
    ends = np.arange(1, len(mean) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def horizon_markdown(results: Mapping[str, EvalResult], marks: Sequence[int], window: int = 50) -> str:
    """Notebook 11: how far past its horizon. One row per optimizer: its mean loss over the ``window`` steps up to
    each step of ``marks`` that its run reaches (:func:`window_mean`), the step where that windowed loss was lowest,
    and its last value over the lowest (1 = still at its best; above 1 = it went back up)."""
    if not results:
        raise ValueError("results is empty: give at least one optimizer's result")
    header = "| optimizer | " + " | ".join(f"step {m:,}" for m in marks) + " | lowest at step | last / lowest |"
    lines = [header, "|---" * (len(marks) + 3) + "|"]
    for name, res in results.items():
        levels = _window_levels(res, window)
        at = [f"{levels[m]:.3g}" if m < len(levels) else "" for m in marks]
        best = int(np.nanargmin(levels)) if np.isfinite(levels).any() else 0
        ratio = levels[-1] / levels[best] if np.isfinite(levels[best]) and levels[best] > 0 else float("nan")
        lines.append(f"| {name} | " + " | ".join(at) + f" | {best:,} | {ratio:.2f} |")
    return "\n".join(lines)


def statistics_markdown(samples: Mapping[str, Mapping[str, np.ndarray]], p: float = 10.0) -> str:
    """Notebook 08: :func:`input_statistics` of each sample of :func:`optimizer_inputs` (one row per network)."""
    lines = [
        "| network | exactly zero | below e^-p | median log10 abs(g), non-zero | 90% quantile |",
        "|---|---|---|---|---|",
    ]
    for name, inputs in samples.items():
        s = input_statistics(inputs, p)
        lines.append(
            f"| {name} | {s['zero_fraction']:.1%} | {s['below_threshold_fraction']:.1%} | {s['median_log10']:.2f} | "
            f"{s['p90_log10']:.2f} |"
        )
    return "\n".join(lines)


def relu_bn_markdown(results: Mapping[str, EvalResult], learned: Sequence[str]) -> str:
    """Notebook 10: one sentence, with this run's numbers, on how the learned optimizers do on a ReLU network with
    batch normalization: each seed's mean final loss against the best tuned baseline's (notebook 08's contrast)."""
    if not learned:
        raise ValueError("learned must name at least one learned optimizer among the results")
    everyone = [n for n in results if n not in learned and not n.startswith(("LSTM", "one LSTM"))]
    ranked = _ranked_baselines({n: results[n] for n in [*learned, *everyone]}, learned)
    if not ranked:
        raise ValueError("results hold no baseline to compare with")
    best = results[ranked[0]]
    ratios = [results[n].mean_final / best.mean_final for n in learned]
    text = ", ".join(f"{r:.2f}" for r in ratios)
    if all(r < 1 for r in ratios):
        verdict = "every seed ends below the best tuned baseline"
    elif all(r >= 1 for r in ratios):
        verdict = "no seed ends below the best tuned baseline"
    else:
        verdict = "some seeds end below the best tuned baseline and some do not"
    return (
        f"On this ReLU convnet with batch normalization, the learned optimizer's mean final loss is {text} times that "
        f"of the best tuned baseline, {ranked[0]} ({best.mean_final:.3g}), for seeds {', '.join(learned)}: {verdict} "
        "(the claims table gives the paired intervals). Notebook 08's ReLU MLPs had no batch normalization, and "
        "their optimizer had been meta-trained on sigmoid networks."
    )
