"""Meta-training of minutes inside a notebook's panel: rebuild the optimizer network, train it briefly on MNIST and
test it (notebooks 02 and 04), and the preprocessing ablation across gradient scales (notebook 03, paper Appendix A)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from l2l_helpers.evaluation.loops import EvalResult, evaluate, evaluate_rules
from l2l_helpers.evaluation.tuning import tune_baselines
from l2l_helpers.evaluation.verdicts import all_of, lower_than
from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.meta.meta_training import meta_train
from l2l_helpers.meta.stacked_training import meta_train_stack
from l2l_helpers.meta.training_state import MetaTrainResult
from l2l_helpers.optimizees import QuadraticProblem, make_problem
from l2l_helpers.optimizer.baselines import make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig, count_parameters
from l2l_helpers.optimizer.preprocessing import check_preprocessing
from l2l_helpers.runtime import check_positive_int, progress_bar


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
        of :func:`~l2l_helpers.evaluation.intervals.lower_than`)."""
        for arm in (learned, other):
            if arm not in self.arms:
                raise ValueError(f"{arm!r} is not an arm of this ablation: {', '.join(self.arms)}")
        return [lower_than(self.at(s), learned, [other], metric) for s in self.scales]

    def off_scale(self, learned: str, other: str, metric: str = "final") -> dict[str, Any]:
        """The claim "``learned`` ends lower than ``other`` at every factor but 1" (the scales the optimizers never
        saw), over every seed: :meth:`compare` at those scales, :func:`~l2l_helpers.evaluation.intervals.all_of`
        them."""
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
        """The per-seed comparisons at factor ``scale`` (for :func:`~l2l_helpers.evaluation.intervals.lower_than`)."""
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
