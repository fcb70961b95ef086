"""Studies that belong to one notebook each: every function names the notebook it serves.

The general machinery (meta-training, evaluation, comparisons) lives in its own modules; what is here is the
experiment design of a single notebook, kept in the package so that its cells stay short and it is tested:

* notebook 01: :func:`trajectories_2d`, optimizers' paths on a 2-d quadratic;
* notebooks 02 and 04: :func:`quick_meta_training`, rebuild g_phi, meta-train it briefly, test it;
* notebook 03: :func:`scale_ablation`, preprocessing on and off across gradient scales;
* notebooks 07 and 08: :func:`lstm_vs_baselines`, the learned optimizer vs tuned NAG and Adam on any MLP (the
  panels); :func:`networks_markdown`, :func:`versus_best_baseline`, the comparison network by network;
* notebook 07: :func:`beats_baselines_claim`, a paired claim on the final loss with the sum of losses beside it;
* notebook 08: :func:`optimizer_inputs`, :func:`input_statistics`, :func:`input_shift`, :func:`ks_distance`,
  :func:`statistics_markdown`, :func:`median_log10_by_step`: what the optimizer reads, along its own
  trajectories or another optimizer's; :func:`edge_lost_verdict`, whether it loses its edge under ReLU;
* notebook 09: :func:`image_gallery`, styled images after given numbers of steps; :func:`figure8_row`, one row of
  Figure 8 (photo | painting | every optimizer's result).
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

from .baselines import UpdateRule, make_baseline
from .comparison import held_out_comparison
from .coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig, count_parameters
from .evaluation import EvalResult, evaluate, evaluate_rules, optimize, trajectory, tune_baselines
from .intervals import Paired, _finite_or_inf, all_of, lower_than, paired, per_task
from .meta_training import MetaTrainConfig, MetaTrainResult, meta_train
from .optimizees import MNISTProblem, Problem, QuadraticProblem, make_problem
from .optimizees.quadratic import QuadraticTasks
from .preprocessing import check_preprocessing, preprocess
from .runtime import check_positive_int, progress_bar
from .stacked_training import meta_train_stack

# --------------------------------------------------------------------------------------------
# Notebook 01


def trajectories_2d(
    tasks: QuadraticTasks,
    names: tuple[str, ...],
    lr: float | Mapping[str, float],
    steps: int,
    learned: dict[str, CoordinatewiseLSTM],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Notebook 01: path (steps + 1, 2) and losses of each named optimizer on task 0. Baselines use ``lr``: one
    rate for all, or each its own (``{"SGD": 0.1, ...}``, e.g. tuned on training functions)."""
    out = {}
    for name in names:
        if name in learned:
            rule = LearnedRule(learned[name], name)
        else:
            if isinstance(lr, Mapping) and name not in lr:
                raise ValueError(f"no learning rate for {name!r}: lr names {', '.join(lr)}")
            rule = make_baseline(name, lr[name] if isinstance(lr, Mapping) else lr)
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
    split: str = "dev",
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
        name: evaluate(rule, problem, eval_tasks, steps, split, device, name=name) for name, rule in rules.items()
    }
    return QuickTraining(net, result, curves, time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Notebook 03


@dataclass
class ScaleAblation:
    """Notebook 03's ablation: every arm on the same held-out quadratics at every factor on f.

    ``results[i][j]`` holds, at ``scales[i]``, the comparison of meta-training seed ``seeds[j]``: arm name ->
    :class:`EvalResult` on the same tasks (each preprocessing kind's optimizer of that seed; ``Adam``, the same
    for every seed, tuned once on training functions at factor 1, as the LSTMs were trained only there).
    """

    arms: list[str]
    seeds: list[int]
    scales: list[float]
    results: list[list[dict[str, EvalResult]]]
    adam_lr: float | None

    def final(self) -> dict[str, np.ndarray]:
        """Per arm, (len(seeds), len(scales)) mean final losses divided by the factor (units of the unscaled f)."""
        return {
            arm: np.array(
                [
                    [self.results[i][j][arm].mean_final / s for i, s in enumerate(self.scales)]
                    for j in range(len(self.seeds))
                ]
            )
            for arm in self.arms
        }

    def compare(self, learned: str, other: str, metric: str = "final") -> list[dict[str, Any]]:
        """Per scale, the paired verdict of "``learned`` ends lower than ``other``" over every seed (claim fields
        of :func:`~l2l_helpers.intervals.lower_than`)."""
        for arm in (learned, other):
            if arm not in self.arms:
                raise ValueError(f"{arm!r} is not an arm of this ablation: {', '.join(self.arms)}")
        return [lower_than(self.at(s), learned, [other], metric) for s in self.scales]

    def off_scale(self, learned: str, other: str, metric: str = "final") -> dict[str, Any]:
        """The claim "``learned`` ends lower than ``other`` at every factor but 1" (the scales the optimizers never
        saw), over every seed: :meth:`compare` at those scales, :func:`~l2l_helpers.intervals.all_of` them."""
        off = [i for i, s in enumerate(self.scales) if s != 1.0]
        if not off:
            raise ValueError(f"the scales {self.scales} hold no factor other than 1")
        parts = self.compare(learned, other, metric)
        return all_of([parts[i] for i in off], [f"s={self.scales[i]:g}" for i in off])

    def markdown(self, learned: str = "log_sign") -> str:
        """Per scale, mean final loss of every arm (over seeds, in units of the unscaled f) and ``learned``'s
        ratio of means to each other arm with its 95% paired interval, of the deciding seed (the least favourable
        to ``learned``): ``lower`` when every seed's interval lies below 1, ``higher`` when one lies above 1."""
        final = {arm: v.mean(axis=0) for arm, v in self.final().items()}
        others = [a for a in self.arms if a != learned]
        verdicts = {o: self.compare(learned, o) for o in others}
        head = "| s | " + " | ".join(self.arms) + " | " + " | ".join(f"{learned} / {o}" for o in others) + " |"
        lines = [head, "|" + "---|" * (1 + len(self.arms) + len(others))]
        for i, s in enumerate(self.scales):
            cells = [f"{final[a][i]:.3g}" for a in self.arms]
            for o in others:
                v = verdicts[o][i]
                word = {"reproduced": "lower", "not reproduced": "higher"}.get(v["verdict"], "unclear")
                cells.append(f"{v['ratio']:.2f} [{v['interval'][0]:.2f}, {v['interval'][1]:.2f}] {word}")
            lines.append(f"| {s:g} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def at(self, scale: float) -> list[dict[str, EvalResult]]:
        """The per-seed comparisons at factor ``scale`` (for :func:`~l2l_helpers.intervals.lower_than`)."""
        if scale not in self.scales:
            raise ValueError(f"scale={scale!r} was not evaluated; the scales are {self.scales}")
        return self.results[self.scales.index(scale)]


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
    adam: bool = True,
    tune_tasks: int = 16,
    split: str = "dev",
) -> ScaleAblation:
    """Notebook 03's ablation: meta-train one optimizer per preprocessing kind and seed on the paper's
    quadratics, then evaluate each on held-out quadratics whose f is multiplied by every factor in ``scales``.

    Seed ``s`` sets both phi's initialisation and the training functions (``config.seed = s``): the runs of one
    arm are independent meta-trainings, not one training with another start. Every arm of a seed is trained with
    the same budget, and all are trained together (:func:`meta_train_stack`). ``adam`` adds tuned Adam as an arm:
    it is invariant to a factor on f (up to its epsilon), the behaviour the preprocessing aims at. ``p`` is
    ``log_sign``'s constant and ``rescale``'s divisor.
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
    runs = [(seed, kind) for seed in seeds for kind in kinds]
    nets, configs = [], []
    for seed, kind in runs:
        torch.manual_seed(seed)
        nets.append(CoordinatewiseLSTM(preprocessing=kind, p=p).to(device))
        configs.append(MetaTrainConfig(**{**config.__dict__, "seed": seed}))
    # every arm and seed meta-trained together, each on its own: meta_train's result per run, faster
    meta_train_stack(nets, make_problem("quadratic"), configs, progress=progress)
    rules: dict[str, Any] = {f"{kind} {seed}": LearnedRule(net) for (seed, kind), net in zip(runs, nets, strict=True)}
    adam_lr = None
    if adam:
        tuned = tune_baselines(
            make_problem("quadratic"), ("Adam",), n_tasks=tune_tasks, steps=steps, device=device, progress=False
        )
        adam_lr = tuned["Adam"].best_lr
        rules["Adam"] = make_baseline("adam", adam_lr)
    arms = list(kinds) + (["Adam"] if adam else [])
    results = []
    for scale in progress_bar(list(scales), progress, "scales"):
        out = evaluate_rules(rules, make_problem("quadratic", scale=scale), eval_tasks, steps, split, device)
        shared = {"Adam": out["Adam"]} if adam else {}
        results.append([{**{kind: out[f"{kind} {seed}"] for kind in kinds}, **shared} for seed in seeds])
    return ScaleAblation(arms, list(seeds), list(scales), results, adam_lr)


# --------------------------------------------------------------------------------------------
# Notebooks 07 and 08


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


# --------------------------------------------------------------------------------------------
# Notebook 09


def image_gallery(
    rules: Mapping[str, Any],
    problem: Problem,
    at_steps: Sequence[int],
    task: int = 0,
    device: torch.device | str = "cpu",
    split: str = "dev",
) -> dict[str, torch.Tensor]:
    """Held-out image ``task`` after each of ``at_steps`` steps of each optimizer (neural art, notebook 09).

    Returns ``{"<name>, step <t>, style <r>": image (3, H, W)}`` in the order optimizer by optimizer, where r is the
    image's style loss relative to the photo's own (``NeuralArtTasks.style_ratio``: 100% is the photo untouched, a
    few per cent an image that carries the painting), so that each picture has its number beside it.
    """
    if not at_steps or min(at_steps) < 0:
        raise ValueError(f"at_steps={list(at_steps)!r} must be a non-empty list of step counts >= 0")
    tasks = problem.tasks(split, [task], device)
    out = {}
    for name, rule in rules.items():
        for t, (ratio, image) in _styled_images(rule, tasks, at_steps).items():
            out[f"{name}, step {t}, style {ratio:.1%}"] = image
    return out


def _styled_images(rule: Any, tasks: Any, at_steps: Sequence[int]) -> dict[int, tuple[float, torch.Tensor]]:
    """``{t: (style ratio, image (3, H, W))}`` of the one-image batch ``tasks`` after each of ``at_steps`` steps of
    ``rule``: one run to the last of them, keeping only those iterates (:func:`image_gallery`, :func:`figure8_row`)."""
    wanted, out = set(at_steps), {}

    def keep(t: int, theta: torch.Tensor, grad: torch.Tensor | None) -> None:
        if t in wanted:
            out[t] = (float(tasks.style_ratio(theta)[0]), tasks.images(theta)[0].clamp(0, 1).cpu())

    optimize(rule, tasks, max(at_steps), keep)
    return {t: out[t] for t in at_steps}


def figure8_row(
    rules: Mapping[str, Any],
    problem: Problem,
    steps: int,
    task: int = 0,
    device: torch.device | str = "cpu",
    reference: tuple[str, Any, int] | None = None,
    split: str = "dev",
) -> list[tuple[str, torch.Tensor]]:
    """One row of Figure 8 (notebook 09): held-out photo ``task`` | the painting | each optimizer's image after
    ``steps`` steps, every result captioned "name: style r" with its style ratio (``NeuralArtTasks.style_ratio``:
    100% is the photo untouched). ``reference`` = (name, rule, steps) adds a last picture run longer, captioned with
    its step count, e.g. Adam for 300 steps: what a well-styled image of this problem looks like.

    Returns ``[(caption, image (3, H, W)), ...]`` for :func:`~l2l_helpers.plotting.plot_images`.
    """
    check_positive_int("steps", steps)
    tasks = problem.tasks(split, [task], device)
    row = [("photo (held out)", tasks.content[0].cpu()), (f"style: {problem.style}", problem.style_image())]
    runs = [(name, rule, steps) for name, rule in rules.items()]
    if reference is not None:
        name, rule, longer = reference
        check_positive_int("reference steps", longer)
        runs.append((f"{name}, {longer} steps", rule, longer))
    for name, rule, n_steps in runs:
        ratio, image = _styled_images(rule, tasks, [n_steps])[n_steps]
        row.append((f"{name}: style {ratio:.1%}", image))
    return row


# --------------------------------------------------------------------------------------------
# Notebook 10: convnets, label subsets, one LSTM per layer type


def class_samples(data: Any, per_class: int = 1, split: str = "test") -> dict[str, torch.Tensor]:
    """The first ``per_class`` images of every class of ``data`` (an :class:`~l2l_helpers.datasets.ImageData`) as RGB
    tensors (3, H, W), named "label k: class", for :func:`~l2l_helpers.plotting.plot_images` (notebook 10)."""
    check_positive_int("per_class", per_class)
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")
    images, labels = (data.test_images, data.test_labels) if split == "test" else (data.train_images, data.train_labels)
    out = {}
    for k, name in enumerate(data.classes):
        for j, i in enumerate(torch.nonzero(labels == k).flatten()[:per_class].tolist()):
            image = images[i]
            out[f"{k}: {name}" + (f" ({j + 1})" if per_class > 1 else "")] = image.expand(3, -1, -1)
    return out


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
    tuned for that metric (:func:`~l2l_helpers.comparison.held_out_by_metric`).

    The baselines are tuned on training tasks of each condition: on the first over the whole ``grid`` (stepping past
    its edge), on the others around those rates (:func:`~l2l_helpers.evaluation.tune_near`, a half-decade either side
    and past the edge), which costs a third of a full grid per condition; both metrics score the same tuning runs.
    Returns (results, tuned) by condition and metric: ``results[condition][metric][name]``.
    """
    from .comparison import held_out_by_metric
    from .evaluation import tune_near

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
