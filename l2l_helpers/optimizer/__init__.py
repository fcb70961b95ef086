"""The optimizers (paper, Section 2): the learned one and the hand-designed ones it is compared with.

* :mod:`.preprocessing`: the gradient's log-and-sign preprocessing (Appendix A);
* :mod:`.coordinatewise_lstm`: the coordinatewise two-layer LSTM m(grad; phi), with its Global Averaging Cells and
  NTM-BFGS options (Section 3.1), and :class:`LearnedRule`, the update rule it defines;
* :mod:`.grouped_lstm`: one LSTM per parameter group (the convnet's conv and fully connected layers, Section 3.3);
* :mod:`.learned_optimizer`: a trained LSTM as a ``torch.optim``-style optimizer for any ``nn.Module``;
* :mod:`.baselines`: SGD, NAG (Nesterov momentum 0.9), RMSprop and Adam written as the same update-rule interface.

An update rule is ``init(n, theta) -> state`` and ``step(grad, state) -> (update, state)`` on flat parameter vectors;
the state is passed explicitly.
"""

from l2l_helpers.optimizer.baselines import BASELINES, DEFAULT_LR_GRID, UpdateRule, make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig
from l2l_helpers.optimizer.grouped_lstm import GroupedConfig, GroupedLSTM, build_optimizer
from l2l_helpers.optimizer.learned_optimizer import LearnedOptimizer
from l2l_helpers.optimizer.preprocessing import preprocess

__all__ = [
    "BASELINES",
    "DEFAULT_LR_GRID",
    "CoordinatewiseLSTM",
    "GroupedConfig",
    "GroupedLSTM",
    "LearnedOptimizer",
    "LearnedRule",
    "OptimizerConfig",
    "UpdateRule",
    "build_optimizer",
    "make_baseline",
    "preprocess",
]
