"""What the optimizer reads: its preprocessed inputs along trajectories, and how their distribution shifts between
networks (paper, Section 3.2, Figure 5's ReLU failure; notebook 08), measured by the Kolmogorov-Smirnov statistic."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from l2l_helpers.evaluation.loops import optimize
from l2l_helpers.optimizees import Problem
from l2l_helpers.optimizer.baselines import UpdateRule
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule
from l2l_helpers.optimizer.preprocessing import preprocess
from l2l_helpers.runtime import check_positive_int


def optimizer_inputs(
    net: CoordinatewiseLSTM,
    problem: Problem,
    n_tasks: int = 4,
    steps: int = 100,
    every: int = 10,
    max_per_step: int = 20_000,
    device: torch.device | str = "cpu",
    seed: int = 0,
    first_index: int = 0,
    rule: UpdateRule | None = None,
    split: str = "dev",
) -> dict[str, np.ndarray]:
    """Notebook 08: the gradients the learned optimizer reads, preprocessed as it preprocesses them, along the
    held-out trajectories of ``rule`` (default: the learned optimizer itself).

    Another ``rule`` (e.g. tuned Adam) takes every network along the same kind of path whatever the optimizer
    would have done, so that a difference between two networks' gradients is not the learned optimizer's own
    doing. Runs held-out tasks ``first_index ..`` and samples up to ``max_per_step`` coordinates at steps 0,
    every, 2*every, ... (the coordinates drawn with ``seed``: the same ones for every rule). Returns
    ``{"grad": g, "log_channel": ..., "second_channel": ..., "step": ...}`` (flat arrays of equal length).
    """
    check_positive_int("every", every)
    tasks = problem.tasks(split, range(first_index, first_index + check_positive_int("n_tasks", n_tasks)), device)
    gen = torch.Generator().manual_seed(seed)
    grads, step_ids = [], []

    def sample(t: int, theta: torch.Tensor, grad: torch.Tensor | None) -> None:
        if grad is not None and t % every == 0:
            flat = grad.reshape(-1)
            pick = torch.randperm(flat.numel(), generator=gen)[:max_per_step].to(flat.device)
            grads.append(flat[pick].cpu())
            step_ids.append(torch.full((len(pick),), t))

    mode = net.training
    net.eval()
    try:
        optimize(LearnedRule(net) if rule is None else rule, tasks, steps, sample)
    finally:
        net.train(mode)
    g = torch.cat(grads).double()
    x = preprocess(g, net.config.preprocessing, net.config.p)
    return {
        "grad": g.numpy(),
        "log_channel": x[:, 0].numpy(),
        "second_channel": x[:, -1].numpy(),
        "step": torch.cat(step_ids).numpy(),
    }


#: The row of :func:`input_shift` that measures two samples of the reference networks: the noise floor.
FLOOR = "floor"


@dataclass
class InputShift:
    """What :func:`input_shift` measured: the samples and their KS distances from the reference networks'."""

    reference: str
    samples: dict[str, dict[str, dict[str, np.ndarray]]]  # rule -> network (and FLOOR) -> optimizer_inputs
    ks: dict[str, dict[str, float]]  # network (and FLOOR) -> rule -> KS distance of the log channel from reference

    def markdown(self, labels: Mapping[str, str] | None = None) -> str:
        """A table: one row per network (the floor first), one column per rule; ``labels`` name the columns."""
        labels = labels or {}
        rules = list(self.samples)
        lines = ["| compared with the " + self.reference + " networks | " + " | ".join(labels.get(r, r) for r in rules)]
        lines[0] += " |"
        lines.append("|---" * (len(rules) + 1) + "|")
        for row, per_rule in self.ks.items():
            name = f"{self.reference}, other networks (same distribution: the floor)" if row == FLOOR else row
            lines.append(f"| {name} | " + " | ".join(f"{per_rule[r]:.3f}" for r in rules) + " |")
        return "\n".join(lines)


def input_shift(
    net: CoordinatewiseLSTM,
    problems: Mapping[str, Problem],
    reference: str,
    rules: Mapping[str, UpdateRule | None],
    n_tasks: int = 4,
    steps: int = 100,
    device: torch.device | str = "cpu",
    **sampling: Any,
) -> InputShift:
    """Notebook 08: how far the learned optimizer's inputs on each network of ``problems`` are from those on the
    ``reference`` one, along the trajectories of each of ``rules`` (None: the learned optimizer's own).

    The distance is :func:`ks_distance` between the log channels of :func:`optimizer_inputs`. A second sample of
    the reference networks (other held-out tasks, other coordinates) gives the :data:`FLOOR` row: the distance
    between two samples of the same distribution. ``sampling`` goes to :func:`optimizer_inputs` (``every``,
    ``max_per_step``).
    """
    if reference not in problems:
        raise ValueError(f"reference={reference!r} is not among the problems: {', '.join(problems)}")
    if not rules:
        raise ValueError("rules is empty: give at least one, e.g. {'LSTM': None}")
    samples: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for label, rule in rules.items():
        run = {
            name: optimizer_inputs(net, problem, n_tasks, steps, device=device, rule=rule, **sampling)
            for name, problem in problems.items()
        }
        run[FLOOR] = optimizer_inputs(
            net, problems[reference], n_tasks, steps, device=device, seed=1, first_index=n_tasks, rule=rule, **sampling
        )
        samples[label] = run
    rows = [FLOOR, *(name for name in problems if name != reference)]
    ks = {
        row: {
            label: ks_distance(run[reference]["log_channel"], run[row]["log_channel"]) for label, run in samples.items()
        }
        for row in rows
    }
    return InputShift(reference, samples, ks)


def input_statistics(inputs: Mapping[str, np.ndarray], p: float = 10.0) -> dict[str, float]:
    """Notebook 08: summary of :func:`optimizer_inputs`: shares of exact zeros and of gradients below e^-p,
    median log10 |g|."""
    g = np.abs(inputs["grad"])
    nonzero = g[g > 0]
    return {
        "zero_fraction": float((g == 0).mean()),
        "below_threshold_fraction": float((g < math.exp(-p)).mean()),
        "median_log10": float(np.median(np.log10(nonzero))) if nonzero.size else -math.inf,
        "p90_log10": float(np.quantile(np.log10(nonzero), 0.9)) if nonzero.size else -math.inf,
    }


def median_log10_by_step(inputs: Mapping[str, np.ndarray]) -> dict[int, float]:
    """Notebook 08: the median log10 |g| of the non-zero sampled gradients at each sampled step."""
    g, steps = np.abs(inputs["grad"]), inputs["step"]
    out = {}
    for t in np.unique(steps):
        nonzero = g[(steps == t) & (g > 0)]
        out[int(t)] = float(np.median(np.log10(nonzero))) if nonzero.size else -math.inf
    return out


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Notebook 08: two-sample Kolmogorov-Smirnov distance, the largest gap between the empirical CDFs of a and b."""
    a, b = np.sort(np.asarray(a, dtype=float).ravel()), np.sort(np.asarray(b, dtype=float).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples must be non-empty")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())
