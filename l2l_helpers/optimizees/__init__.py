"""Optimizees f(theta): families of problems sampled by seed (paper, Section 3), one module per family.

* :mod:`.base`: the interface (:class:`Problem`, :class:`TaskBatch`), disjoint train / val / test seeds and
  :func:`make_problem`, which builds a family by name;
* :mod:`.quadratic`: 10-d quadratics ||W theta - y||^2 (Section 3.1);
* :mod:`.mnist`: MLPs on MNIST, and their ``nn.Sequential`` twin (Section 3.2);
* :mod:`.neural_art`: an image under a style-transfer loss (Section 3.4), imported on first use;
* :mod:`.conv`: the convnet of Section 3.3 on Fashion-MNIST, parameter groups for one LSTM per layer type, imported
  on first use.
"""

from l2l_helpers.optimizees.base import (
    PROBLEMS,
    SPLIT_OFFSETS,
    SPLIT_SIZE,
    Problem,
    TaskBatch,
    make_problem,
    task_seeds,
)
from l2l_helpers.optimizees.mnist import ACTIVATIONS, INITS, MLPTasks, MNISTProblem, mlp_model
from l2l_helpers.optimizees.quadratic import QuadraticProblem, QuadraticTasks, landscape

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "PROBLEMS",
    "SPLIT_OFFSETS",
    "SPLIT_SIZE",
    "MLPTasks",
    "MNISTProblem",
    "Problem",
    "QuadraticProblem",
    "QuadraticTasks",
    "TaskBatch",
    "landscape",
    "make_problem",
    "mlp_model",
    "task_seeds",
]
