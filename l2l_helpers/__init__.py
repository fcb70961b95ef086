"""l2l_helpers: the reusable pieces of the l2l companion to *Learning to learn by gradient descent by
gradient descent* (Andrychowicz et al., NIPS 2016). Notebooks use one namespace, ``import l2l_helpers as l2l``:

* the method and its use as plain names: ``l2l.CoordinatewiseLSTM``, ``l2l.meta_train``, ``l2l.evaluate``, ...;
* the notebooks' face as sub-namespaces, imported on first use: ``l2l.plot`` (every figure), ``l2l.panels``
  (interactive panels), ``l2l.studies`` (one notebook's experiment each), ``l2l.kernels`` (how an LSTM step is
  computed), ``l2l.settings`` (paths and environment switches).

Importing it has no side effects: call :func:`setup` to seed and pick a device. The README's "Layout" section
draws the layers and gives the vocabulary.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .baselines import BASELINES, DEFAULT_LR_GRID, NAG, SGD, Adam, RMSprop, UpdateRule, make_baseline
from .checkpoints import CheckpointWriteError, load_optimizer, read_checkpoint, save_checkpoint
from .comparison import (
    beats,
    comparison_markdown,
    held_out_by_metric,
    held_out_comparison,
    held_out_comparisons_at,
)
from .coordinatewise_lstm import (
    CoordinatewiseLSTM,
    LearnedRule,
    OptimizerConfig,
    count_parameters,
    global_average,
    memory_write_read,
)
from .data import MNISTData, check_unseen, load_mnist, read_idx
from .datasets import ImageData, load_cifar10, load_conv_data, load_fashion_mnist
from .departures import Setting, departures_list, departures_markdown, paper_vs_run, recipe_rows
from .evaluation import (
    BASELINE_NAMES,
    EvalResult,
    RuleStack,
    TuningResult,
    as_eval_results,
    evaluate,
    evaluate_grid,
    evaluate_rules,
    grid_search,
    optimize,
    run_rule,
    trajectory,
    tune_at_horizons,
    tune_baselines,
    tune_baselines_at,
    tune_learning_rate,
    tune_near,
    tune_near_at,
)
from .grouped_lstm import GroupedConfig, GroupedLSTM, build_optimizer, config_from_dict, route_for
from .intervals import Paired, all_of, by_seed, by_seed_groups, combined, lower_than, most_tasks, paired, win_fraction
from .learned_optimizer import LearnedOptimizer
from .meta_training import MetaTrainConfig, meta_train, unroll, unroll_trajectory
from .optimizees import MNISTProblem, Problem, QuadraticProblem, TaskBatch, make_problem, mlp_model
from .optimizees.conv import GROUPS, ConvProblem, conv_model
from .optimizees.neural_art import CONTENT_PHOTOS, NeuralArtProblem, gram, load_style, task_photos, total_variation
from .preprocessing import PAPER_P, log_sign, log_sign_smooth, preprocess
from .pretrained import (
    Recipe,
    available_pretrained,
    labelled_seeds,
    load_pretrained,
    optimizer_for,
    optimizers_for,
    pretrained_info,
    recipe_of,
    seed_names,
)
from .results import check, claim, claims_markdown, record, report_claims, save_figure, software_check
from .runtime import check_parameters, resolve_device, seed_everything, setup
from .stacked_training import meta_train_stack
from .studies import (
    FLOOR,
    InputShift,
    QuickTraining,
    ScaleAblation,
    architecture_summary,
    best_baselines_markdown,
    class_samples,
    comparisons_by_condition,
    figure8_row,
    group_gradient_scales,
    horizon_markdown,
    image_gallery,
    input_shift,
    input_statistics,
    ks_distance,
    lstm_vs_baselines,
    median_log10_by_step,
    networks_markdown,
    optimizer_inputs,
    quick_meta_training,
    relu_bn_markdown,
    scale_ablation,
    seed_means,
    statistics_markdown,
    trajectories_2d,
    versus_best_baseline,
    window_mean,
)
from .torch_loops import sequential_comparison, torch_training_curve
from .training_state import MetaTrainResult

__version__ = "0.1.0"

#: Sub-namespaces, imported on first use (plotly and ipywidgets load only when a notebook asks for them).
_NAMESPACES = {
    "plot": "plotting",
    "panels": "panels",
    "studies": "studies",
    "kernels": "kernels",
    "settings": "settings",
    "step_cost": "step_cost",
    "rules": "rules",
    "plan": "plan",
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
