"""How one step of the coordinatewise LSTM is computed: speed as a switch beside the plain path (paper, Section 2.1).

The optimizer network (:mod:`l2l_helpers.optimizer.coordinatewise_lstm`) is the paper's LSTM written plainly with
``nn.LSTMCell``; this package holds two faster ways to compute the same step, with the same numbers to float
rounding:

* :mod:`.fused` (PyTorch): one matrix product and one ``sigmoid`` pass per layer, a hand-written backward;
* :mod:`.native` (C++, ``csrc/lstm_step.cpp``, CPUs): the whole stack, forward and backward, for blocks of
  coordinates held in vector lanes; used where it is measured faster than the fused step.

:func:`backend_for` picks one for a step; :func:`forced` pins one for a block of code (tests, benchmarks).

Two more kernels are optimizees', not the LSTM's, swapped in for plain functions of the optimizee modules
(:func:`.plain.swappable`): :mod:`.conv_block` (``csrc/conv_block.cpp``) fuses batch normalization, ReLU and max
pooling at the end of each block of notebook 10's convnet, and :mod:`.style_loss` computes neural art's image
gradient by hand (notebook 09). ``L2L_PLAIN`` pins any plain path, and :func:`.plain.plain_only` pins the
optimizees' for graphs that are differentiated twice. Each fast path stays only while it makes its notebook's whole
run at least 1.3x faster (``benchmarks/bench_fast_paths.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from l2l_helpers.kernels import conv_block, native, selection, style_loss  # the optimizees' kernels register
from l2l_helpers.kernels.fused import fused_step
from l2l_helpers.kernels.native import native_step
from l2l_helpers.kernels.plain import plain_only, plain_wanted

#: ``auto``: the fastest that applies (native where measured faster, else fused); ``cells``: the plain
#: ``nn.LSTMCell`` stack, which autograd can differentiate twice.
BACKENDS = ("auto", "native", "fused", "cells")
STEPS = {"native": native_step, "fused": fused_step}

_forced: list[str] = []


@contextlib.contextmanager
def forced(backend: str) -> Iterator[None]:
    """Run every optimizer step inside the block with ``backend`` (one of :data:`BACKENDS`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is unknown; use one of: {', '.join(BACKENDS)}")
    _forced.append(backend)
    try:
        yield
    finally:
        _forced.pop()


def backend_for(x: torch.Tensor, state: torch.Tensor) -> str:
    """``native``, ``fused`` or ``cells``: how to compute a step on preprocessed gradients ``x`` (N, inputs).

    A gradient that itself needs a gradient (second-order meta-training) always takes ``cells``. Otherwise the
    backend pinned by :func:`forced`, or by default the native step where :func:`selection.supports` it (CPU,
    float32, 20 hidden units, measured faster here: :func:`selection.selection`) and the fused step elsewhere.
    """
    want = _forced[-1] if _forced else "auto"
    if x.requires_grad or want == "cells":
        return "cells"
    if want == "auto":  # L2L_PLAIN pins the plain path of the steps it names
        if not plain_wanted("native") and selection.supports(x, state):
            return "native"
        return "cells" if plain_wanted("fused") else "fused"
    if want == "native":
        if not native.shape_supported(x, state) or native.load() is None:
            raise ValueError(
                "the native step was forced but cannot run here: it needs float32 CPU tensors, 20 hidden units, "
                "1 or 2 inputs and a C++ compiler; use forced('fused') or forced('auto')"
            )
        return "native"
    return "fused"


__all__ = [
    "BACKENDS",
    "STEPS",
    "backend_for",
    "conv_block",
    "forced",
    "fused_step",
    "native",
    "native_step",
    "plain_only",
    "plain_wanted",
    "selection",
    "style_loss",
]
