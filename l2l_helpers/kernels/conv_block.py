"""The end of each block of notebook 10's convnet, fused: batch normalization (training mode), ReLU, 2x2 max pooling.

The paper's convnet (Section 3.3; :mod:`l2l_helpers.optimizees.conv`) ends each convolutional block with these
three operations. PyTorch runs them as separate passes over the block's maps, forward and backward; on a 2-core
CPU they were about half of a network's step (batch 128 of 28 x 28 images). ``csrc/conv_block.cpp`` computes
them in one forward and one backward (built like the LSTM step, :func:`~l2l_helpers.kernels.native.load_source`).
It is swapped in for :func:`l2l_helpers.optimizees.conv.bn_relu_pool`, the same computation in PyTorch's operators,
which runs wherever the native one does not (GPU, float64, ``L2L_NATIVE=0``, ``L2L_PLAIN=conv_block``, no compiler,
a second-order graph) and which the tests compare it with. Measured on notebook 10's whole run
(``benchmarks/bench_fast_paths.py``).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from l2l_helpers import settings
from l2l_helpers.kernels import native
from l2l_helpers.kernels.plain import plain_wanted, register

__all__ = ["load", "native_bn_relu_pool", "supported"]
SOURCE = Path(__file__).resolve().parent / "csrc" / "conv_block.cpp"


def load() -> ModuleType | None:
    """The compiled module (built on first use), or None where it cannot be built."""
    return native.load_source(SOURCE, "the convnet's fused block (batch norm, ReLU, pooling)")


def supported(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> bool:
    """Whether the native block runs for these tensors: float32 on the CPU, square maps of at least 2 x 2."""
    return (
        not plain_wanted("conv_block")  # inside plain_only(): a graph differentiated twice
        and settings.native_mode() != "off"
        and y.device.type == "cpu"
        and all(t.dtype == torch.float32 for t in (y, gamma, beta))
        and y.dim() == 4
        and y.shape[2] == y.shape[3] >= 2
        and load() is not None
    )


class NativeBNReLUPool(torch.autograd.Function):
    """The plain block (:func:`l2l_helpers.optimizees.conv.bn_relu_pool`), forward and backward, by
    ``csrc/conv_block.cpp``."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
        module = load()
        assert module is not None  # checked by supported()
        out, mean, invstd, idx = module.forward(y, gamma, beta, eps)
        ctx.save_for_backward(y, gamma, mean, invstd, idx, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_out: torch.Tensor) -> Any:
        module = load()
        assert module is not None
        dy, d_gamma, d_beta = module.backward(d_out.contiguous(), *ctx.saved_tensors)
        return dy, d_gamma, d_beta, None


def native_bn_relu_pool(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Batch normalization of ``y`` (B, C, S, S) with its own statistics, scale ``gamma`` and shift ``beta`` (C,),
    then ReLU and 2x2 max pooling, by the native block: the plain version's numbers to float rounding (the statistics
    are summed in another order)."""
    return NativeBNReLUPool.apply(y.contiguous(), gamma.contiguous(), beta.contiguous(), float(eps))


register("conv_block", native_bn_relu_pool, supported)
