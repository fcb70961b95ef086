"""l2l_helpers: the reusable pieces of the l2l companion to *Learning to learn by gradient descent by
gradient descent* (Andrychowicz et al., NIPS 2016). Notebooks use it as ``import l2l_helpers as l2l``.

Importing it has no side effects: call :func:`setup` to seed and pick a device.
"""

from .baselines import BASELINES, DEFAULT_LR_GRID, NAG, SGD, Adam, RMSprop, UpdateRule, make_baseline
from .checkpoints import load_optimizer, read_checkpoint, save_checkpoint
from .coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig, count_parameters
from .data import MNISTData, load_mnist, read_idx
from .evaluation import EvalResult, TuningResult, compare, evaluate, run_rule, tune_learning_rate
from .learned_optimizer import LearnedOptimizer
from .meta_training import MetaTrainConfig, MetaTrainResult, meta_train, unroll, unroll_trajectory
from .optimizees import MNISTProblem, Problem, QuadraticProblem, TaskBatch, make_problem
from .preprocessing import PAPER_P, log_sign, log_sign_smooth, preprocess
from .pretrained import available_pretrained, load_pretrained, pretrained_info
from .results import check, claim, claims_markdown, record, save_figure
from .runtime import check_parameters, resolve_device, seed_everything, setup

__version__ = "0.1.0"

__all__ = [
    "BASELINES",
    "DEFAULT_LR_GRID",
    "NAG",
    "PAPER_P",
    "SGD",
    "Adam",
    "CoordinatewiseLSTM",
    "EvalResult",
    "LearnedOptimizer",
    "LearnedRule",
    "MNISTData",
    "MNISTProblem",
    "MetaTrainConfig",
    "MetaTrainResult",
    "OptimizerConfig",
    "Problem",
    "QuadraticProblem",
    "RMSprop",
    "TaskBatch",
    "TuningResult",
    "UpdateRule",
    "available_pretrained",
    "check",
    "check_parameters",
    "claim",
    "claims_markdown",
    "compare",
    "count_parameters",
    "evaluate",
    "load_mnist",
    "load_optimizer",
    "load_pretrained",
    "log_sign",
    "log_sign_smooth",
    "make_baseline",
    "make_problem",
    "meta_train",
    "preprocess",
    "pretrained_info",
    "read_checkpoint",
    "read_idx",
    "record",
    "resolve_device",
    "run_rule",
    "save_checkpoint",
    "save_figure",
    "seed_everything",
    "setup",
    "tune_learning_rate",
    "unroll",
    "unroll_trajectory",
]
