"""l2l_helpers: the reusable pieces of the l2l companion to *Learning to learn by gradient descent by
gradient descent* (Andrychowicz et al., NIPS 2016). Notebooks use one namespace, ``import l2l_helpers as l2l``:

* the method and its use as plain names: ``l2l.CoordinatewiseLSTM``, ``l2l.meta_train``, ``l2l.evaluate``, ...;
* the notebooks' face as sub-namespaces, imported on first use: ``l2l.plot`` (the figures of results),
  ``l2l.diagrams`` (figures that explain), ``l2l.panels`` (interactive panels), ``l2l.rules`` (claims' decision
  rules), ``l2l.step_cost``, ``l2l.plan``, ``l2l.kernels`` (fast paths), ``l2l.settings`` (paths and switches).

The code lives in a folder per concept (docs/package.md, "Layout"): ``optimizer/``, ``optimizees/``, ``evaluation/``,
``meta/``, ``notebook/``, ``kernels/``; this door re-exports what the notebooks call.

Importing it has no side effects: call :func:`setup` to seed and pick a device. docs/package.md's "Layout" section
draws the layers and gives the vocabulary.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from l2l_helpers.evaluation.comparison import (
    beats,
    comparison_markdown,
    held_out_by_metric,
    held_out_comparison,
    held_out_comparisons_at,
)
from l2l_helpers.evaluation.conditions import comparisons_by_condition, group_gradient_scales, seed_means
from l2l_helpers.evaluation.inputs import (
    FLOOR,
    InputShift,
    input_shift,
    input_statistics,
    ks_distance,
    median_log10_by_step,
    optimizer_inputs,
)
from l2l_helpers.evaluation.intervals import Paired, paired
from l2l_helpers.evaluation.loops import (
    EvalResult,
    RuleStack,
    as_eval_results,
    evaluate,
    evaluate_grid,
    evaluate_rules,
    optimize,
    run_rule,
    trajectories_2d,
    trajectory,
)
from l2l_helpers.evaluation.torch_loops import sequential_comparison, torch_training_curve
from l2l_helpers.evaluation.tuning import (
    BASELINE_NAMES,
    TuningResult,
    grid_search,
    tune_at_horizons,
    tune_baselines,
    tune_baselines_at,
    tune_learning_rate,
    tune_near,
    tune_near_at,
)
from l2l_helpers.evaluation.verdicts import (
    all_of,
    by_seed,
    by_seed_groups,
    combined,
    lower_than,
    most_tasks,
    win_fraction,
)
from l2l_helpers.meta.checkpoints import CheckpointWriteError, load_optimizer, read_checkpoint, save_checkpoint
from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.meta.meta_training import meta_train, unroll, unroll_trajectory
from l2l_helpers.meta.pretrained import (
    Recipe,
    available_pretrained,
    labelled_seeds,
    load_pretrained,
    optimizer_for,
    optimizers_for,
    pretrained_info,
    recipe_of,
    retrained_optimizer,
    retrained_optimizers,
    seed_names,
)
from l2l_helpers.meta.quick import (
    QuickTraining,
    ScaleAblation,
    architecture_summary,
    quick_meta_training,
    scale_ablation,
)
from l2l_helpers.meta.stacked_training import meta_train_stack
from l2l_helpers.meta.training_state import MetaTrainResult
from l2l_helpers.notebook.departures import Setting, departures_list, departures_markdown, paper_vs_run, recipe_rows
from l2l_helpers.notebook.gallery import class_samples, figure8_row, image_gallery
from l2l_helpers.notebook.results import (
    check,
    claim,
    claims_markdown,
    record,
    report_claims,
    save_figure,
    software_check,
)
from l2l_helpers.notebook.tables import (
    best_baselines_markdown,
    horizon_markdown,
    lstm_vs_baselines,
    networks_markdown,
    relu_bn_markdown,
    statistics_markdown,
    versus_best_baseline,
    window_mean,
)
from l2l_helpers.optimizees import MNISTProblem, Problem, QuadraticProblem, TaskBatch, make_problem, mlp_model
from l2l_helpers.optimizees.conv import GROUPS, ConvProblem, conv_model
from l2l_helpers.optimizees.data import MNISTData, check_unseen, load_mnist, read_idx
from l2l_helpers.optimizees.datasets import ImageData, load_cifar10, load_conv_data, load_fashion_mnist
from l2l_helpers.optimizees.neural_art import (
    CONTENT_PHOTOS,
    NeuralArtProblem,
    gram,
    load_style,
    task_photos,
    total_variation,
)
from l2l_helpers.optimizer.baselines import (
    BASELINES,
    DEFAULT_LR_GRID,
    NAG,
    SGD,
    Adam,
    RMSprop,
    UpdateRule,
    make_baseline,
)
from l2l_helpers.optimizer.coordinatewise_lstm import (
    CoordinatewiseLSTM,
    LearnedRule,
    OptimizerConfig,
    count_parameters,
    global_average,
    memory_write_read,
)
from l2l_helpers.optimizer.grouped_lstm import GroupedConfig, GroupedLSTM, build_optimizer, config_from_dict, route_for
from l2l_helpers.optimizer.learned_optimizer import LearnedOptimizer
from l2l_helpers.optimizer.preprocessing import PAPER_P, log_sign, log_sign_smooth, preprocess
from l2l_helpers.runtime import check_parameters, resolve_device, seed_everything, setup

__version__ = "0.1.0"

#: Sub-namespaces, imported on first use (plotly and ipywidgets load only when a notebook asks for them).
_NAMESPACES = {
    "plot": "notebook.plotting",
    "diagrams": "notebook.diagrams",
    "panels": "notebook.panels",
    "kernels": "kernels",
    "settings": "settings",
    "step_cost": "evaluation.step_cost",
    "rules": "evaluation.rules",
    "plan": "notebook.plan",
}


def __getattr__(name: str) -> ModuleType:
    if name in _NAMESPACES:
        module = importlib.import_module(f".{_NAMESPACES[name]}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'l2l_helpers' has no attribute {name!r}")


__all__ = [
    "BASELINES",
    "BASELINE_NAMES",
    "CONTENT_PHOTOS",
    "DEFAULT_LR_GRID",
    "FLOOR",
    "GROUPS",
    "NAG",
    "PAPER_P",
    "SGD",
    "Adam",
    "CheckpointWriteError",
    "ConvProblem",
    "CoordinatewiseLSTM",
    "EvalResult",
    "GroupedConfig",
    "GroupedLSTM",
    "ImageData",
    "InputShift",
    "LearnedOptimizer",
    "LearnedRule",
    "MNISTData",
    "MNISTProblem",
    "MetaTrainConfig",
    "MetaTrainResult",
    "NeuralArtProblem",
    "OptimizerConfig",
    "Paired",
    "Problem",
    "QuadraticProblem",
    "QuickTraining",
    "RMSprop",
    "Recipe",
    "RuleStack",
    "ScaleAblation",
    "Setting",
    "TaskBatch",
    "TuningResult",
    "UpdateRule",
    "all_of",
    "architecture_summary",
    "as_eval_results",
    "available_pretrained",
    "beats",
    "best_baselines_markdown",
    "build_optimizer",
    "by_seed",
    "by_seed_groups",
    "check",
    "check_parameters",
    "check_unseen",
    "claim",
    "claims_markdown",
    "class_samples",
    "combined",
    "comparison_markdown",
    "comparisons_by_condition",
    "config_from_dict",
    "conv_model",
    "count_parameters",
    "departures_list",
    "departures_markdown",
    "evaluate",
    "evaluate_grid",
    "evaluate_rules",
    "figure8_row",
    "global_average",
    "gram",
    "grid_search",
    "group_gradient_scales",
    "held_out_by_metric",
    "held_out_comparison",
    "held_out_comparisons_at",
    "horizon_markdown",
    "image_gallery",
    "input_shift",
    "input_statistics",
    "ks_distance",
    "labelled_seeds",
    "load_cifar10",
    "load_conv_data",
    "load_fashion_mnist",
    "load_mnist",
    "load_optimizer",
    "load_pretrained",
    "load_style",
    "log_sign",
    "log_sign_smooth",
    "lower_than",
    "lstm_vs_baselines",
    "make_baseline",
    "make_problem",
    "median_log10_by_step",
    "memory_write_read",
    "meta_train",
    "meta_train_stack",
    "mlp_model",
    "most_tasks",
    "networks_markdown",
    "optimize",
    "optimizer_for",
    "optimizer_inputs",
    "optimizers_for",
    "paired",
    "paper_vs_run",
    "preprocess",
    "pretrained_info",
    "quick_meta_training",
    "read_checkpoint",
    "read_idx",
    "recipe_of",
    "recipe_rows",
    "record",
    "relu_bn_markdown",
    "report_claims",
    "resolve_device",
    "retrained_optimizer",
    "retrained_optimizers",
    "route_for",
    "run_rule",
    "save_checkpoint",
    "save_figure",
    "scale_ablation",
    "seed_everything",
    "seed_means",
    "seed_names",
    "sequential_comparison",
    "setup",
    "software_check",
    "statistics_markdown",
    "task_photos",
    "torch_training_curve",
    "total_variation",
    "trajectories_2d",
    "trajectory",
    "tune_at_horizons",
    "tune_baselines",
    "tune_baselines_at",
    "tune_learning_rate",
    "tune_near",
    "tune_near_at",
    "unroll",
    "unroll_trajectory",
    "versus_best_baseline",
    "win_fraction",
    "window_mean",
]
