"""Building blocks of the experiment notebooks 05-08 (paper, Section 3, Figures 4 and 5).

* :func:`tune_baselines` picks each hand-designed optimizer's learning rate on *training* tasks;
* :func:`held_out_comparison` runs the learned optimizer(s) and the tuned baselines on the same held-out tasks;
* :func:`optimizer_for` loads a shipped optimizer, or retrains it from scratch with its stored recipe;
* :func:`sequential_comparison` uses the learned optimizer as a ``torch.optim.Optimizer`` on a plain
  ``nn.Sequential`` MLP with PyTorch's default initialisation, against ``torch.optim.Adam``;
* :func:`optimizer_inputs` collects the gradients (and their preprocessed form) that the learned
  optimizer reads along its own trajectories: the evidence of notebook 08.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .baselines import DEFAULT_LR_GRID
from .checkpoints import load_optimizer, read_checkpoint
from .coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig
from .evaluation import EvalResult, TuningResult, check_positive_int, evaluate, tune_learning_rate
from .learned_optimizer import LearnedOptimizer
from .meta_training import MetaTrainConfig, MetaTrainResult, meta_train
from .optimizees import ACTIVATIONS, MNISTProblem, Problem, make_problem, task_seeds
from .preprocessing import check_preprocessing, preprocess
from .pretrained import pretrained_path

#: The paper's hand-designed baselines, in the order the figures list them.
BASELINE_NAMES = ("SGD", "NAG", "RMSprop", "Adam")


def _progress(iterable: Any, enabled: bool, desc: str, total: int | None = None) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def tune_baselines(
    problem: Problem,
    names: Sequence[str] = BASELINE_NAMES,
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tasks: int = 8,
    steps: int = 100,
    device: torch.device | str = "cpu",
    criterion: str = "final",
    progress: bool = True,
) -> dict[str, TuningResult]:
    """Grid-search every baseline's learning rate on ``n_tasks`` *training* tasks (never the held-out ones)."""
    if not names:
        raise ValueError("names is empty: give at least one baseline, e.g. ('Adam',)")
    return {
        name: tune_learning_rate(name, problem, grid, n_tasks, steps, criterion, device)
        for name in _progress(names, progress, "tuning learning rates")
    }


def tune_near(
    problem: Problem,
    tuned: Mapping[str, TuningResult],
    factors: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0),
    n_tasks: int = 4,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, TuningResult]:
    """Re-tune every baseline of ``tuned`` on ``problem``'s training tasks, on a grid around its tuned rate.

    ``factors`` multiply each baseline's earlier best rate: a cheaper search where a full grid is too
    expensive (neural art at twice the training resolution, notebook 09), still on training tasks only.
    """
    if not tuned:
        raise ValueError("tuned is empty: tune at least one baseline first (tune_baselines)")
    if not factors or min(factors) <= 0:
        raise ValueError(f"factors={list(factors)!r} must be a non-empty list of positive numbers")
    return {
        name: tune_learning_rate(name, problem, [t.best_lr * f for f in factors], n_tasks, steps, t.criterion, device)
        for name, t in _progress(tuned.items(), progress, "re-tuning learning rates", len(tuned))
    }


def held_out_comparison(
    problem: Problem,
    learned: Mapping[str, CoordinatewiseLSTM],
    tuned: Mapping[str, TuningResult],
    n_tasks: int = 20,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, EvalResult]:
    """Every learned optimizer and every tuned baseline on the same ``n_tasks`` held-out (test) tasks."""
    from .baselines import make_baseline

    rules: dict[str, Any] = {name: LearnedRule(net, name) for name, net in learned.items()}
    rules.update({name: make_baseline(name, t.best_lr) for name, t in tuned.items()})
    return {
        name: evaluate(rule, problem, n_tasks, steps, "test", device, name=name)
        for name, rule in _progress(rules.items(), progress, "held-out tasks", len(rules))
    }


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


# --------------------------------------------------------------------------------------------
# Shipped optimizers: load, or retrain with the stored recipe


@dataclass
class Recipe:
    """How a shipped optimizer was trained: architecture, meta-training settings and problem."""

    optimizer: OptimizerConfig
    training: MetaTrainConfig
    problem_name: str
    problem_args: dict[str, Any]
    command: str

    def problem(self) -> Problem:
        """The problem family it was meta-trained on."""
        return make_problem(self.problem_name, **self.problem_args)


def recipe_of(name: str) -> Recipe:
    """The recipe stored with the shipped optimizer ``name`` (``ValueError`` if unknown)."""
    payload = read_checkpoint(pretrained_path(name))
    meta, training = payload.get("metadata", {}), payload.get("training")
    if not training or "problem_name" not in meta:
        raise ValueError(f"pretrained {name!r} stores no training recipe; it cannot be retrained automatically")
    return Recipe(
        OptimizerConfig.from_dict(payload["config"]),
        MetaTrainConfig(**training["config"]),
        meta["problem_name"],
        dict(meta.get("problem_args") or {}),
        meta.get("command", ""),
    )


def optimizer_for(
    name: str,
    retrain: bool = False,
    device: torch.device | str = "cpu",
    epochs: int | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, Any], MetaTrainResult], None] | None = None,
    problem: Problem | None = None,
) -> tuple[CoordinatewiseLSTM, str]:
    """The shipped optimizer ``name``, or (``retrain=True``) one meta-trained here with its stored recipe.

    ``epochs`` overrides the recipe's epoch count (for quick runs); ``problem`` replaces the recipe's
    problem family when retraining (e.g. neural art with other features). Returns (network, a line
    saying where it came from).
    """
    from .pretrained import load_pretrained

    if not retrain:
        return load_pretrained(name, device), f"shipped optimizer '{name}' (trained by: {recipe_of(name).command})"
    recipe = recipe_of(name)
    config = recipe.training
    if epochs is not None:
        config = MetaTrainConfig(**{**config.__dict__, "epochs": check_positive_int("epochs", epochs)})
    family = problem or recipe.problem()
    shared = retrain_path(name, recipe.optimizer, config, family)
    if shared is not None and shared.is_file():
        net, meta = load_optimizer(shared, device)
        if meta.get("epochs_done") == config.epochs:  # finished earlier in this run
            return net, (
                f"retrained earlier in this run with the recipe of '{name}': {config.epochs} epochs, best "
                f"validation at epoch {meta.get('best_epoch')} ({shared})"
            )
    torch.manual_seed(config.seed)
    net = CoordinatewiseLSTM(recipe.optimizer).to(device)
    resume = shared if shared is not None and shared.is_file() else None  # interrupted earlier: continue it
    result = meta_train(
        net, family, config, checkpoint_path=shared, resume=resume, progress=progress, callback=callback
    )
    return net, (
        f"retrained here with the recipe of '{name}': {config.epochs} epochs, best validation at epoch "
        f"{result.best_epoch}"
    )


#: Set by the notebook runner: a folder where optimizers retrained in one run are kept for the next notebooks.
RETRAIN_DIR_ENV = "L2L_RETRAIN_DIR"


def retrain_path(name: str, optimizer: OptimizerConfig, config: MetaTrainConfig, problem: Problem) -> Path | None:
    """Where a run shares an optimizer retrained with this exact recipe (None outside ``make run``).

    With ``PROFILE=paper`` notebooks 06, 07 and 08 all retrain the MNIST optimizer: the first one trains
    it (checkpointing as it goes), the others load it.
    """
    folder = os.environ.get(RETRAIN_DIR_ENV)
    if not folder:
        return None
    key = json.dumps([name, optimizer.to_dict(), asdict(config), problem.describe()], sort_keys=True, default=str)
    return Path(folder) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"


# --------------------------------------------------------------------------------------------
# The learned optimizer in a plain PyTorch training loop


def mlp_model(hidden: Sequence[int] = (20,), activation: str = "sigmoid") -> nn.Sequential:
    """A plain ``nn.Sequential`` MNIST MLP with PyTorch's default initialisation (seed it beforehand)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is unknown; use one of: {', '.join(ACTIVATIONS)}")
    acts = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
    sizes = (784, *hidden, 10)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(acts[activation]())
    return nn.Sequential(*layers)


def torch_training_curve(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
) -> np.ndarray:
    """An ordinary training loop; returns the minibatch loss before each step and after the last, (steps + 1,)."""
    check_positive_int("steps", steps)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for t in range(steps + 1):
        idx = torch.randint(0, len(labels), (batch_size,), generator=gen).to(images.device)
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        losses.append(float(loss.detach()))
        if t < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return np.array(losses)


def _torch_curves(
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    problem: MNISTProblem,
    split: str,
    n_models: int,
    steps: int,
    device: torch.device | str,
) -> np.ndarray:
    held_out = split == "test"
    data = problem.data
    images = (data.test_images if held_out else data.train_images).to(device)
    labels = (data.test_labels if held_out else data.train_labels).to(device)
    curves = []
    for seed in task_seeds(split, range(n_models)):
        torch.manual_seed(seed)
        model = mlp_model(problem.hidden, problem.activation).to(device)
        curves.append(
            torch_training_curve(model, make_optimizer(model), images, labels, steps, problem.batch_size, seed)
        )
    return np.stack(curves)


def sequential_comparison(
    net: CoordinatewiseLSTM,
    problem: MNISTProblem | None = None,
    grid: Sequence[float] = DEFAULT_LR_GRID,
    n_tune: int = 4,
    n_models: int = 20,
    steps: int = 100,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """``LearnedOptimizer(net)`` vs ``torch.optim.Adam`` on ``nn.Sequential`` MLPs with PyTorch's init.

    Adam's learning rate is the best of ``grid`` on ``n_tune`` models trained on the meta-training
    images; both optimizers are then run on ``n_models`` fresh models (held-out seeds) trained on the
    held-out images. Returns ``{"adam_lr", "adam_scores", "curves": {"LSTM": (n_models, steps + 1),
    "Adam": ...}}``.
    """
    problem = problem or MNISTProblem()
    scores = {}
    for lr in _progress(grid, progress, "tuning torch.optim.Adam"):
        curves = _torch_curves(
            lambda m, lr=lr: torch.optim.Adam(m.parameters(), lr=lr), problem, "train", n_tune, steps, device
        )
        final = float(curves[:, -1].mean())
        scores[float(lr)] = final if math.isfinite(final) else math.inf
    adam_lr = min(scores, key=scores.__getitem__)
    curves = {
        "LSTM": _torch_curves(
            lambda m: LearnedOptimizer(m.parameters(), net), problem, "test", n_models, steps, device
        ),
        "Adam": _torch_curves(
            lambda m: torch.optim.Adam(m.parameters(), lr=adam_lr), problem, "test", n_models, steps, device
        ),
    }
    return {"adam_lr": adam_lr, "adam_scores": scores, "curves": curves}


def as_eval_results(curves: Mapping[str, np.ndarray], lrs: Mapping[str, float] | None = None) -> dict[str, EvalResult]:
    """Wrap plain loss arrays (n_runs, steps + 1) as :class:`EvalResult` for plotting and tables."""
    lrs = lrs or {}
    return {
        name: EvalResult(name, torch.as_tensor(c, dtype=torch.float32), lrs.get(name)) for name, c in curves.items()
    }


# --------------------------------------------------------------------------------------------
# What the optimizer reads (notebook 08)


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
    """Gradients the learned optimizer reads along its own held-out trajectories, and their preprocessing.

    Runs held-out tasks ``first_index ..`` and samples up to ``max_per_step`` coordinates at steps 0,
    every, 2*every, ... Returns
    ``{"grad": g, "log_channel": ..., "second_channel": ..., "step": ...}`` (flat arrays of equal length).
    """
    check_positive_int("every", every)
    tasks = problem.tasks("test", range(first_index, first_index + check_positive_int("n_tasks", n_tasks)), device)
    rule = LearnedRule(net)
    theta = tasks.init_theta()
    state = rule.init_state(theta)
    gen = torch.Generator().manual_seed(seed)
    grads, step_ids = [], []
    net.eval()
    for t in range(steps):
        theta.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(tasks.loss(theta, t).sum(), theta)
        if t % every == 0:
            flat = grad.reshape(-1)
            pick = torch.randperm(flat.numel(), generator=gen)[:max_per_step].to(flat.device)
            grads.append(flat[pick].cpu())
            step_ids.append(torch.full((len(pick),), t))
        with torch.no_grad():
            update, state = rule.step(grad, state)
            theta = (theta + update).detach()
    g = torch.cat(grads).double()
    x = preprocess(g, net.config.preprocessing, net.config.p)
    return {
        "grad": g.numpy(),
        "log_channel": x[:, 0].numpy(),
        "second_channel": x[:, -1].numpy(),
        "step": torch.cat(step_ids).numpy(),
    }


def input_statistics(inputs: Mapping[str, np.ndarray], p: float = 10.0) -> dict[str, float]:
    """Summary of :func:`optimizer_inputs`: share of exact zeros, of gradients below e^-p, median log10 |g|."""
    g = np.abs(inputs["grad"])
    nonzero = g[g > 0]
    return {
        "zero_fraction": float((g == 0).mean()),
        "below_threshold_fraction": float((g < math.exp(-p)).mean()),
        "median_log10": float(np.median(np.log10(nonzero))) if nonzero.size else -math.inf,
        "p90_log10": float(np.quantile(np.log10(nonzero), 0.9)) if nonzero.size else -math.inf,
    }


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the empirical CDFs of ``a`` and ``b``."""
    a, b = np.sort(np.asarray(a, dtype=float).ravel()), np.sort(np.asarray(b, dtype=float).ravel())
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples must be non-empty")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


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
    from .evaluation import trajectory

    if not at_steps or min(at_steps) < 0:
        raise ValueError(f"at_steps={list(at_steps)!r} must be a non-empty list of step counts >= 0")
    tasks = problem.tasks("test", [task], device)
    out = {}
    for name, rule in rules.items():
        _, thetas = trajectory(rule, tasks, max(at_steps))
        for t in at_steps:
            out[f"{name}, step {t}"] = tasks.images(thetas[t].to(device))[0].clamp(0, 1).cpu()
    return out


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
    out = {kind: np.zeros((len(seeds), len(scales))) for kind in kinds}
    for row, seed in enumerate(_progress(seeds, progress, "seeds")):
        for kind in kinds:
            torch.manual_seed(seed)
            net = CoordinatewiseLSTM(preprocessing=kind, p=p).to(device)
            meta_train(net, make_problem("quadratic"), config, progress=False)
            for col, scale in enumerate(scales):
                problem = make_problem("quadratic", scale=scale)
                result = evaluate(LearnedRule(net), problem, eval_tasks, steps, device=device)
                out[kind][row, col] = result.mean_final / scale
    return out
