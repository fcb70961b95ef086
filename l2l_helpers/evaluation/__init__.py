"""How optimizers are compared (paper, Section 3): on the same held-out tasks, baselines tuned on training tasks.

* :mod:`.loops`: running update rules on a batch of tasks (:func:`evaluate_rules`), :class:`EvalResult`;
* :mod:`.tuning`: each baseline's learning rate by grid search on training tasks, per horizon and criterion;
* :mod:`.comparison`: the held-out comparison of learned optimizers against tuned baselines;
* :mod:`.intervals` and :mod:`.verdicts`: paired per-task log ratios, the sign test's interval of their median, and
  a claim's verdict; :mod:`.rules`: the decision rules several claims share;
* :mod:`.inputs`: what the optimizer reads and how it shifts (Figure 5's ReLU failure);
* :mod:`.conditions`: comparisons over several conditions at once (image sizes, label sets);
* :mod:`.step_cost` and :mod:`.torch_loops`: wall-clock cost of a step, and ``torch.optim``-style training loops.
"""

from l2l_helpers.evaluation.comparison import held_out_comparison
from l2l_helpers.evaluation.intervals import Paired, paired
from l2l_helpers.evaluation.loops import EvalResult, evaluate, evaluate_rules
from l2l_helpers.evaluation.tuning import tune_baselines, tune_learning_rate
from l2l_helpers.evaluation.verdicts import by_seed, lower_than

__all__ = [
    "EvalResult",
    "Paired",
    "by_seed",
    "evaluate",
    "evaluate_rules",
    "held_out_comparison",
    "lower_than",
    "paired",
    "tune_baselines",
    "tune_learning_rate",
]
