"""The end of each block of notebook 10's convnet, fused: batch normalization (training mode), ReLU, 2x2 max pooling.

The paper's convnet (Section 3.3; :mod:`l2l_helpers.optimizees.conv`) ends each convolutional block with these
three operations. PyTorch runs them as separate passes over the block's maps, forward and backward; on a 2-core
CPU they were about half of a network's step (batch 128 of 28 x 28 images). ``csrc/conv_block.cpp`` computes
them in one forward and one backward (built like the LSTM step, :func:`~l2l_helpers.kernels.native.load_source`);
:func:`plain` is the same computation in PyTorch's operators, what runs wherever the native one does not (GPU,
float64, ``L2L_NATIVE=0``, no compiler, a second-order graph), and what the tests compare it with.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from l2l_helpers import settings
from l2l_helpers.kernels import native
from l2l_helpers.kernels.plain import plain_only, plain_wanted

__all__ = ["bn_relu_pool", "load", "plain", "plain_only", "supported"]
SOURCE = Path(__file__).resolve().parent / "csrc" / "conv_block.cpp"


def load() -> ModuleType | None:
    """The compiled module (built on first use), or None where it cannot be built."""
    return native.load_source(SOURCE, "the convnet's fused block (batch norm, ReLU, pooling)")


def plain(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """max_pool2d(relu(batch_norm(y))) with batch statistics, (B, C, S, S) -> (B, C, S // 2, S // 2)."""
    h = F.batch_norm(y, None, None, gamma, beta, training=True, eps=eps)
    return F.max_pool2d(F.relu(h), 2)


def supported(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> bool:
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
    """:func:`plain`, forward and backward, by ``csrc/conv_block.cpp``."""

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


def bn_relu_pool(y: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Batch normalization of ``y`` (B, C, S, S) with its own statistics, scale ``gamma`` and shift ``beta`` (C,),
    then ReLU and 2x2 max pooling: the native block where :func:`supported`, else :func:`plain`. The same
    numbers to float rounding (the statistics are summed in another order)."""
    if supported(y, gamma, beta):
        return NativeBNReLUPool.apply(y.contiguous(), gamma.contiguous(), beta.contiguous(), float(eps))
    return plain(y, gamma, beta, eps)
