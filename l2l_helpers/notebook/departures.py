"""Paper vs this run: every setting of an experiment next to the paper's value, departures marked.

The notebooks show this table beside their claims:
a reader sees at once which of the paper's choices this run kept and which it changed. The rows are
*generated* from what was actually used: the optimizer's stored architecture and meta-training recipe
(:class:`~l2l_helpers.meta.pretrained.Recipe`) and the problem object, never typed by hand in a notebook.

The paper's values come from Andrychowicz et al. (2016), Sections 2-3 and Appendix A; where the paper is
silent the authors' TensorFlow code (deepmind/learning-to-learn) is cited and the row says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.optimizees.base import Problem
from l2l_helpers.optimizer.coordinatewise_lstm import OptimizerConfig
from l2l_helpers.optimizer.grouped_lstm import AnyConfig, GroupedConfig

#: Experiments with paper values: the problem family each one meta-trains on.
EXPERIMENTS = ("quadratic", "mnist", "conv", "neural_art")


@dataclass(frozen=True)
class Setting:
    """One row: a setting, the paper's value, ours, and whether ours departs from the paper."""

    name: str
    paper: str
    ours: str
    departs: bool


def _row(name: str, paper: str, ours: Any, same: bool) -> Setting:
    return Setting(name, paper, str(ours), not same)


def optimizer_rows(experiment: str, optimizer: AnyConfig) -> list[Setting]:
    """The optimizer network's settings against the paper's (Section 2, Appendix A; Section 3.3 for the convnet's
    two LSTMs)."""
    _check(experiment)
    groups = []
    if experiment == "conv":
        grouped = isinstance(optimizer, GroupedConfig)
        ours = f"one LSTM per group: {', '.join(optimizer.names)}" if grouped else "one LSTM for every parameter"
        paper = "two LSTMs: one for the convolutional layers, one for the fully connected ones (Section 3.3)"
        groups.append(_row("LSTMs", paper, ours, grouped and set(optimizer.names) == {"conv", "fc"}))
    if isinstance(optimizer, GroupedConfig):
        if len({cfg for _, cfg in optimizer.groups}) > 1:
            raise ValueError("the table compares one architecture: give every group the same network settings")
        optimizer = optimizer.groups[0][1]
    arch = f"{optimizer.num_layers} layers x {optimizer.hidden_size} units, coordinatewise"
    pre = (
        optimizer.preprocessing
        if optimizer.preprocessing == "none"
        else f"{optimizer.preprocessing}, p = {optimizer.p:g}"
    )
    scale = optimizer.output_scale
    if experiment == "quadratic":  # the authors' quadratic configuration: raw gradient in, update out unscaled
        pre_row = _row(
            "preprocessing", "none: the raw gradient (authors' code)", pre, optimizer.preprocessing == "none"
        )
        scale_row = _row("output scale", "1 (authors' code)", f"{scale:g}", scale == 1.0)
    else:
        pre_row = _row(
            "preprocessing",
            "log_sign, p = 10 (Appendix A; authors' code: a smooth variant, p = 5)",
            pre,
            optimizer.preprocessing == "log_sign" and optimizer.p == 10.0,
        )
        where = {"conv": "authors' MNIST code; nothing given for the convnet", "neural_art": "authors' MNIST code"}
        where = where.get(experiment, "authors' code")
        scale_row = _row("output scale", f"0.01 ({where}; the paper does not say)", f"{scale:g}", scale == 0.01)
    rows = [
        *groups,
        _row(
            "optimizer network",
            "2 layers x 20 units, coordinatewise",
            arch,
            optimizer.num_layers == 2 and optimizer.hidden_size == 20,
        ),
        pre_row,
        scale_row,
    ]
    return rows + _appendix_rows(optimizer)


def _appendix_rows(optimizer: OptimizerConfig) -> list[Setting]:
    """The appendix's information sharing, where a network uses it (notebook 11); the appendix gives no sizes."""
    rows = []
    if optimizer.gac_cells:
        rows.append(
            _row(
                "Global Averaging Cells (Appendix)",
                "a subset of each layer's cells, averaged over coordinates (size not given)",
                f"{optimizer.gac_cells} of {optimizer.hidden_size} cells per layer",
                True,
            )
        )
    if optimizer.memory_slots:
        rows.append(
            _row(
                "NTM-BFGS memory (Appendix)",
                "n x n, every write accumulated; 1 read head, 3 write heads can simulate BFGS",
                f"the last {optimizer.memory_slots} rank-one writes (first in, first out), {optimizer.write_heads} "
                "per step; the read M r is the update",
                False,
            )
        )
    return rows


def training_rows(experiment: str, training: MetaTrainConfig) -> list[Setting]:
    """Meta-training settings against the paper's (Section 3's training details and the authors' code)."""
    _check(experiment)
    tasks = 128 if experiment == "quadratic" else 1  # the authors' code has no convnet: its MNIST value
    weights = {"ones": "1 for every t", "final": "1 only at t = T", "linear": "2t / (T + 1): later steps count more"}
    select = {"sum": "lowest validation sum of losses", "final": "lowest validation final loss"}
    horizon = (128, 32) if experiment == "neural_art" else (100, 20)  # Section 3.4: 128 steps, unrolled 32
    rows = [
        _row(
            "horizon T, unroll",
            f"{horizon[0]} steps, unrolls of {horizon[1]}",
            f"{training.steps} steps, unrolls of {training.unroll}",
            (training.steps, training.unroll) == horizon,
        ),
        _row(
            "w_t (weights of the losses)",
            "1 for every t (Section 2)",
            weights[training.weights],
            training.weights == "ones",
        ),
        _row(
            "second derivatives",
            "dropped (Section 2.1)",
            "kept" if training.second_order else "dropped",
            not training.second_order,
        ),
        _row(
            "meta-training length",
            "10,000 trajectories (authors' code)",
            f"{training.epochs:,} trajectories",
            training.epochs >= 10_000,
        ),
        _row(
            f"{'functions' if experiment == 'quadratic' else 'networks'} per meta-step",
            f"{tasks} (authors' code)",
            training.tasks_per_epoch,
            training.tasks_per_epoch == tasks,
        ),
        _row(
            "meta-optimizer",
            "Adam, lr by random search (authors' code: 0.001)",
            f"Adam, lr {training.lr:g}",
            training.lr == 0.001,
        ),
        _row(
            "meta-gradient clipping",
            "none",
            "none" if training.grad_clip is None else f"norm {training.grad_clip:g}",
            training.grad_clip is None,
        ),
        _row(
            "selection",
            "early stopping on held-out functions (authors' code: lowest final loss)",
            select[training.select],
            training.select == "final",
        ),
    ]
    return rows


def problem_rows(experiment: str, problem: Problem) -> list[Setting]:
    """The optimizee family against the paper's (Section 3.1 quadratics, Section 3.2 MNIST)."""
    _check(experiment)
    if experiment == "quadratic":
        dim, init = getattr(problem, "dim", None), getattr(problem, "init_scale", None)
        return [
            _row(
                "functions",
                "||W theta - y||^2, W 10x10 and y 10-d, i.i.d. N(0, 1)",
                problem.describe(),
                dim == 10 and getattr(problem, "scale", 1.0) == 1.0,
            ),
            _row("initial theta", "N(0, 0.01^2) (authors' code)", f"N(0, {init:g}^2)", init == 0.01),
        ]
    if experiment == "conv":
        return _conv_rows(problem)
    if experiment == "neural_art":
        return _neural_art_rows(problem)
    hidden, act = getattr(problem, "hidden", None), getattr(problem, "activation", None)
    init = getattr(problem, "init", None)
    init_text = f"N(0, {problem.init_scale:g}^2)" if init == "normal" else f"{init} (see the problem's docstring)"
    data = getattr(problem, "data", None)
    full = getattr(data, "source", "") == "full"
    return [
        _row(
            "network",
            "784-20-10, sigmoid",
            f"784-{'-'.join(map(str, hidden))}-10, {act}",
            hidden == (20,) and act == "sigmoid",
        ),
        _row("minibatch", "128", getattr(problem, "batch_size", "?"), getattr(problem, "batch_size", None) == 128),
        _row(
            "initialisation", "N(0, 0.01^2) (authors' code)", init_text, init == "normal" and problem.init_scale == 0.01
        ),
        _row(
            "data",
            "MNIST: 60,000 training images to meta-train, the 10,000 test images to evaluate",
            data.description if data is not None else "?",
            full,
        ),
    ]


def _conv_rows(problem: Problem) -> list[Setting]:
    """Section 3.3's convnet (sizes from the authors' code) against the conv problem."""
    arch, data = getattr(problem, "arch", {}), getattr(problem, "data", None)
    c, size = getattr(problem, "shape", (None, None))
    ours = (
        f"{arch.get('conv_layers')} conv layers ({arch.get('channels')} channels, {arch.get('kernel')}x"
        f"{arch.get('kernel')}), batch norm, ReLU, max pooling; fc {arch.get('hidden')}"
    )
    paper_arch = {"conv_layers": 3, "channels": 16, "kernel": 5, "hidden": 32}
    labels = getattr(problem, "labels", ())
    return [
        _row(
            "network",
            "3 conv layers (16 channels, 5x5), batch norm, ReLU, max pooling; fc 32",
            ours,
            arch == paper_arch,
        ),
        _row("minibatch", "128", getattr(problem, "batch_size", "?"), getattr(problem, "batch_size", None) == 128),
        _row("initialisation", "not given", "PyTorch's defaults (batch norm: scale 1, shift 0)", True),
        _row(
            "data",
            "CIFAR-10: 32x32 colour images, 50,000 to meta-train, the test set to evaluate",
            data.description if data is not None else "?",
            getattr(data, "source", "") == "cifar10" and (c, size) == (3, 32),
        ),
        _row(
            "labels",
            "all 10 (CIFAR-10), or a subset of 5 or 2 (CIFAR-5, CIFAR-2)",
            f"{len(labels)}: {list(labels)}",
            True,
        ),
    ]


def _neural_art_rows(problem: Problem) -> list[Setting]:
    """Section 3.4's style transfer against the neural-art problem (its losses, images and painting)."""
    from l2l_helpers.optimizees.neural_art import CONTENT_PHOTOS, VGGFeatures

    features = getattr(problem, "features", None)
    vgg = isinstance(features, VGGFeatures) and features.pretrained  # random-weight VGG is not the paper's network
    photos = {split: len(names) for split, names in CONTENT_PHOTOS.items()}
    size = getattr(problem, "size", None)
    weights = (
        f"content {problem.content_weight:g}, style {problem.style_weight:g}, total variation {problem.tv_weight:g} "
        "(style weight chosen here: at 1e5 tuned Adam leaves a tinted photo after 100 steps, at 1e6 it styles it)"
    )
    return [
        _row(
            "feature network",
            "ImageNet-trained VGG-19 (Gatys et al.)",
            "ImageNet VGG-19, relu1_1-relu3_1"
            if vgg
            else "VGG-19 with random weights, relu1_1-relu3_1"
            if isinstance(features, VGGFeatures)
            else "seeded random-weight convnet, 3 layers (32-64-128)",
            vgg,
        ),
        _row(
            "content images",
            "64x64 ImageNet images: 1,800 to meta-train, 20 to validate, 100 to test",
            f"random square crops of photos: {photos['train']} scikit-image photos to meta-train, {photos['val']} to "
            f"validate, {photos['dev']} for development ({', '.join(CONTENT_PHOTOS['dev'])}); {photos['test']} other "
            f"photographs held out for the claims ({', '.join(CONTENT_PHOTOS['test'])})",
            False,
        ),
        _row("loss weights", "not given", weights, True),
        _row("starting image", "not given", "the content photo", True),
        _row(
            "resolution",
            "64x64 to meta-train; 64x64 and 128x128 to test",
            f"{size}x{size} here",
            size in (64, 128),
        ),
        _row(
            "styles",
            "one painting to meta-train; the same and a new one to test",
            f"{getattr(problem, 'style', '?')} here",
            True,
        ),
    ]


def paper_vs_run(
    experiment: str,
    optimizer: AnyConfig,
    training: MetaTrainConfig | None,
    problem: Problem,
    extra: Sequence[Setting] = (),
) -> list[Setting]:
    """Every row for ``experiment`` (one of :data:`EXPERIMENTS`): network, meta-training (when known), problem,
    then ``extra`` rows a notebook adds for what only it varies (e.g. the baselines' tuning)."""
    rows = optimizer_rows(experiment, optimizer)
    if training is not None:
        rows += training_rows(experiment, training)
    return rows + problem_rows(experiment, problem) + list(extra)


def departures_markdown(rows: Sequence[Setting], title: str = "") -> str:
    """The table for ``IPython.display.Markdown``: setting | paper | this run, departures in bold with a mark."""
    lines = [f"**{title}**\n"] if title else []
    lines += ["| setting | paper | this run | |", "|---|---|---|---|"]
    for r in rows:
        paper, ours = (text.replace("|", "\\|") for text in (r.paper, r.ours))  # ||W theta - y|| in a table cell
        ours = f"**{ours}**" if r.departs else ours
        lines.append(f"| {r.name} | {paper} | {ours} | {'departs' if r.departs else 'same'} |")
    n = sum(r.departs for r in rows)
    lines.append(f"\n{n} of {len(rows)} settings depart from the paper.")
    return "\n".join(lines)


def departures_list(rows: Sequence[Setting]) -> list[str]:
    """The departing rows as short lines (stored beside the claims in ``results/<nb>.json``)."""
    return [f"{r.name}: {r.ours} (paper: {r.paper})" for r in rows if r.departs]


def _check(experiment: str) -> None:
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment={experiment!r} has no paper values here; use one of: {', '.join(EXPERIMENTS)}")


def recipe_rows(name: str, problem: Problem | None = None, extra: Sequence[Setting] = ()) -> list[Setting]:
    """:func:`paper_vs_run` for the shipped optimizer ``name``, from its stored recipe; ``problem`` defaults to
    the family it was meta-trained on (pass the one a notebook evaluates on, e.g. with its data loaded)."""
    from l2l_helpers.meta.pretrained import recipe_of

    recipe = recipe_of(name)
    return paper_vs_run(recipe.problem_name, recipe.optimizer, recipe.training, problem or recipe.problem(), extra)
