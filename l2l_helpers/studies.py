"""Studies that belong to one notebook each: every function names the notebook it serves.

The general machinery (meta-training, evaluation, comparisons) lives in its own modules; what is here is the
experiment design of a single notebook, kept in the package so that its cells stay short and it is tested:

* notebook 01: :func:`trajectories_2d`, optimizers' paths on a 2-d quadratic;
* notebooks 02 and 04: :func:`quick_meta_training`, rebuild g_phi, meta-train it briefly, test it;
* notebook 03: :func:`scale_ablation`, preprocessing on and off across gradient scales;
* notebooks 07 and 08: :func:`lstm_vs_adam`, the learned optimizer vs tuned Adam on any MLP;
* notebook 08: :func:`optimizer_inputs`, :func:`input_statistics`, :func:`ks_distance`, what the optimizer reads;
* notebook 09: :func:`image_gallery`, styled images after given numbers of steps.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .baselines import make_baseline
from .comparison import held_out_comparison
from .coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig, count_parameters
from .evaluation import EvalResult, evaluate, evaluate_rules, optimize, trajectory, tune_baselines
from .meta_training import MetaTrainConfig, MetaTrainResult, meta_train
from .optimizees import MNISTProblem, Problem, QuadraticProblem, make_problem
from .optimizees.quadratic import QuadraticTasks
from .preprocessing import check_preprocessing, preprocess
from .runtime import check_positive_int, progress_bar
from .stacked_training import meta_train_stack

# --------------------------------------------------------------------------------------------
# Notebook 01


def trajectories_2d(
    tasks: QuadraticTasks, names: tuple[str, ...], lr: float, steps: int, learned: dict[str, CoordinatewiseLSTM]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Notebook 01: path (steps + 1, 2) and losses of each named optimizer on task 0: baselines use ``lr``."""
    out = {}
    for name in names:
        rule = LearnedRule(learned[name], name) if name in learned else make_baseline(name, lr)
        losses, thetas = trajectory(rule, tasks, steps)
        out[name] = (thetas[:, 0].numpy(), losses[0].numpy())
    return out


# --------------------------------------------------------------------------------------------
# Notebooks 02 and 04


def architecture_summary(
    num_layers: int, hidden_size: int, preprocessing: str, n_coords: int = 15910, seed: int = 0
) -> dict[str, Any]:
    """Notebook 02: sizes of a coordinatewise LSTM (shared phi vs per-coordinate state), its first update on sample
    gradients."""
    torch.manual_seed(seed)
    net = CoordinatewiseLSTM(OptimizerConfig(num_layers, hidden_size, preprocessing, output_scale=0.1))
    grads = torch.logspace(-8, 1, 10) * torch.tensor([1.0, -1.0]).repeat(5)
    with torch.no_grad():
        update, _ = net(grads, net.init_state(grads.numel()))
    return {
        "parameters": count_parameters(net),
        "state_per_coordinate": 2 * num_layers * hidden_size,
        "state_floats": 2 * num_layers * hidden_size * n_coords,
        "one_lstm_per_coordinate": count_parameters(net) * n_coords,
        "grads": grads.numpy(),
        "updates": update.numpy(),
    }


@dataclass
class QuickTraining:
    """What :func:`quick_meta_training` made: the optimizer, its meta-training record, held-out curves."""

    net: CoordinatewiseLSTM
    result: MetaTrainResult
    curves: dict[str, EvalResult]  # "untrained LSTM", "LSTM" and, given adam_lr, "Adam"; same held-out tasks
    seconds: float  # meta-training and evaluation

    @property
    def label(self) -> str:
        """The architecture in words, e.g. ``2 x 20 LSTM, log_sign, output scale 0.1``."""
        c = self.net.config
        return f"{c.num_layers} x {c.hidden_size} LSTM, {c.preprocessing}, output scale {c.output_scale:.3g}"


def quick_meta_training(
    num_layers: int = 2,
    hidden_size: int = 20,
    preprocessing: str = "log_sign",
    output_scale: float = 0.1,
    epochs: int = 20,
    tasks_per_epoch: int = 16,
    eval_tasks: int = 16,
    steps: int = 100,
    meta_lr: float = 0.01,
    adam_lr: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    callback: Callable[[dict[str, Any], MetaTrainResult], None] | None = None,
) -> QuickTraining:
    """Notebooks 02 and 04: build g_phi (Section 2.1), meta-train it briefly on 10-d quadratics (Section 2), test it
    on held-out ones.

    The untrained network (the same initial phi) and, given ``adam_lr``, Adam run on the same held-out
    tasks. About 3 s on one CPU core with the defaults (20 epochs of 16 quadratics).
    """
    config = OptimizerConfig(num_layers, hidden_size, preprocessing, output_scale=output_scale)  # checks them
    check_positive_int("eval_tasks", eval_tasks)
    check_positive_int("steps", steps)
    for name, value in (("meta_lr", meta_lr), ("adam_lr", 1.0 if adam_lr is None else adam_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValueError(f"{name}={value!r} must be a positive finite number")
    train = MetaTrainConfig(  # checks epochs, tasks_per_epoch and seed (which picks the training tasks)
        epochs=epochs,
        steps=steps,
        unroll=min(20, steps),
        lr=meta_lr,
        tasks_per_epoch=tasks_per_epoch,
        val_every=0,
        seed=seed,
    )
    start = time.perf_counter()
    torch.manual_seed(seed)
    net = CoordinatewiseLSTM(config).to(device)
    untrained = copy.deepcopy(net)
    problem = QuadraticProblem()
    result = meta_train(net, problem, train, progress=False, callback=callback)
    rules: dict[str, Any] = {"untrained LSTM": LearnedRule(untrained), "LSTM": LearnedRule(net)}
    if adam_lr is not None:
        rules["Adam"] = make_baseline("adam", adam_lr)
    curves = {
        name: evaluate(rule, problem, eval_tasks, steps, "test", device, name=name) for name, rule in rules.items()
    }
    return QuickTraining(net, result, curves, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Notebook 03


def scale_ablation(
    kinds: Sequence[str],
    seeds: Sequence[int],
    config: MetaTrainConfig,
    scales: Sequence[float],
    eval_tasks: int,
    p: float = 10.0,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Notebook 03's ablation: meta-train one optimizer per preprocessing kind and seed on the paper's
    quadratics, then evaluate each on held-out quadratics whose f is multiplied by every factor in ``scales``.

    Returns, per kind, an array (len(seeds), len(scales)) of mean final losses divided by the factor (in
    units of the unscaled f). Several seeds show how much a single meta-training run varies: one run per
    arm is not enough to compare them at every scale (changing only the float rounding of training, e.g.
    ``L2L_NATIVE=0``, flips single-run comparisons far from the training scale).
    """
    if not kinds:
        raise ValueError("kinds must name at least one preprocessing kind, e.g. ['log_sign', 'none']")
    for kind in kinds:  # before any training: an unknown kind must not fail after minutes of it
        check_preprocessing(kind, p)
    if not seeds:
        raise ValueError("seeds must name at least one meta-training seed")
    if not scales or any(not (s > 0 and math.isfinite(s)) for s in scales):
        raise ValueError(f"scales={list(scales)!r} must be positive finite factors")
    check_positive_int("eval_tasks", eval_tasks)
    runs = [(row, seed, kind) for row, seed in enumerate(seeds) for kind in kinds]
    nets = {}
    for row, seed, kind in runs:
        torch.manual_seed(seed)
        nets[row, kind] = CoordinatewiseLSTM(preprocessing=kind, p=p).to(device)
    # every arm and seed meta-trained together, each on its own: meta_train's result per run, faster
    meta_train_stack(list(nets.values()), make_problem("quadratic"), [config] * len(nets), progress=progress)
    rules = {f"{kind} {row}": LearnedRule(net) for (row, kind), net in nets.items()}
    out = {kind: np.zeros((len(seeds), len(scales))) for kind in kinds}
    for col, scale in enumerate(progress_bar(scales, progress, "scales")):
        results = evaluate_rules(rules, make_problem("quadratic", scale=scale), eval_tasks, steps, device=device)
        for row, _, kind in runs:
            out[kind][row, col] = results[f"{kind} {row}"].mean_final / scale
    return out


# --------------------------------------------------------------------------------------------
# Notebooks 07 and 08


#: The learning rates the live panels try for Adam (a coarse grid: panels must answer in seconds).
PANEL_LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def lstm_vs_adam(
    net: CoordinatewiseLSTM,
    hidden: Sequence[int] = (20,),
    activation: str = "sigmoid",
    n_tasks: int = 4,
    steps: int = 100,
    grid: Sequence[float] = PANEL_LR_GRID,
    device: torch.device | str = "cpu",
    init: str = "normal",
) -> dict[str, EvalResult]:
    """The learned optimizer vs Adam (lr tuned on ``grid``, training tasks) on held-out MLPs of any shape.

    What the optimizee panels of notebooks 07 and 08 compute when a slider moves.
    """
    problem = MNISTProblem(hidden=tuple(hidden), activation=activation, init=init)
    tuned = tune_baselines(problem, ("Adam",), grid, n_tasks, steps, device, progress=False)
    return held_out_comparison(problem, {"LSTM": net}, tuned, n_tasks, steps, device, progress=False)


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
) -> dict[str, np.ndarray]:
    """Notebook 08: gradients the learned optimizer reads along its own held-out trajectories, preprocessed.

    Runs held-out tasks ``first_index ..`` and samples up to ``max_per_step`` coordinates at steps 0,
    every, 2*every, ... Returns
    ``{"grad": g, "log_channel": ..., "second_channel": ..., "step": ...}`` (flat arrays of equal length).
    """
    check_positive_int("every", every)
    tasks = problem.tasks("test", range(first_index, first_index + check_positive_int("n_tasks", n_tasks)), device)
    gen = torch.Generator().manual_seed(seed)
    grads, step_ids = [], []

    def sample(t: int, theta: torch.Tensor, grad: torch.Tensor | None) -> None:
        if grad is not None and t % every == 0:
            flat = grad.reshape(-1)
            pick = torch.randperm(flat.numel(), generator=gen)[:max_per_step].to(flat.device)
            grads.append(flat[pick].cpu())
            step_ids.append(torch.full((len(pick),), t))

    net.eval()
    optimize(LearnedRule(net), tasks, steps, sample)
    g = torch.cat(grads).double()
    x = preprocess(g, net.config.preprocessing, net.config.p)
    return {
        "grad": g.numpy(),
        "log_channel": x[:, 0].numpy(),
        "second_channel": x[:, -1].numpy(),
        "step": torch.cat(step_ids).numpy(),
    }


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


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Notebook 08: two-sample Kolmogorov-Smirnov distance, the largest gap between the empirical CDFs of a and b."""
    a, b = np.sort(np.asarray(a, dtype=float).ravel()), np.sort(np.asarray(b, dtype=float).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples must be non-empty")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


# --------------------------------------------------------------------------------------------
# Notebook 09


def image_gallery(
    rules: Mapping[str, Any],
    problem: Problem,
    at_steps: Sequence[int],
    task: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Held-out image ``task`` after each of ``at_steps`` steps of each optimizer (neural art, notebook 09).

    Returns ``{"<name>, step <t>": image (3, H, W)}`` in the order optimizer by optimizer.
    """
    if not at_steps or min(at_steps) < 0:
        raise ValueError(f"at_steps={list(at_steps)!r} must be a non-empty list of step counts >= 0")
    tasks = problem.tasks("test", [task], device)
    out = {}
    for name, rule in rules.items():
        _, thetas = trajectory(rule, tasks, max(at_steps))
        for t in at_steps:
            out[f"{name}, step {t}"] = tasks.images(thetas[t].to(device))[0].clamp(0, 1).cpu()
    return out
