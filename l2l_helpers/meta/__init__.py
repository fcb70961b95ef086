"""Learning the optimizer (paper, Section 2): meta-training phi by truncated backpropagation through time.

* :mod:`.config`: a recipe (:class:`MetaTrainConfig`: epochs, horizon T, unroll, w_t, Adam's rate, validation);
* :mod:`.meta_training`: the unroll and its meta-gradient, and :func:`meta_train`'s epoch loop;
* :mod:`.stacked_training`: several independent runs in one batched pass (seeds, ablation arms);
* :mod:`.training_state`, :mod:`.checkpoints`: what a run produced, saved and resumed;
* :mod:`.pretrained`: the shipped optimizers (three seeds per recipe); loading one never trains one, retraining is
  its own call (:func:`retrain_pretrained`);
* :mod:`.quick`: minutes-long meta-training inside a notebook's panel.
"""

from l2l_helpers.meta.checkpoints import load_optimizer, save_checkpoint
from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.meta.meta_training import meta_train
from l2l_helpers.meta.pretrained import load_pretrained
from l2l_helpers.meta.stacked_training import meta_train_stack
from l2l_helpers.meta.training_state import MetaTrainResult

__all__ = [
    "MetaTrainConfig",
    "MetaTrainResult",
    "load_optimizer",
    "load_pretrained",
    "meta_train",
    "meta_train_stack",
    "save_checkpoint",
]
