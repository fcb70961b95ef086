"""The native (C++) step of the coordinatewise LSTM: built on first use, with the Python step as fallback.

``csrc/lstm_step.cpp`` computes a whole step of the stacked LSTM (forward, and backward for
meta-training) for blocks of 16 coordinates held in the lanes of one vector register, so that the
matrix products and the gates of a block never leave the core's cache. On a 2-core CPU an MNIST
meta-training epoch takes about 0.6x the time of the PyTorch fused step, 0.4x that of a plain
``nn.LSTMCell`` implementation (``benchmarks/bench_speed.py``).
Same arithmetic, same results to float rounding (``tests/test_native_lstm.py``).

It is compiled with the machine's C++ compiler (``torch.utils.cpp_extension``, ninja) the first time
a process needs it, about 30 s, and cached in torch's extension directory
(``TORCH_EXTENSIONS_DIR``) for later processes. Where that fails (no compiler, Windows, ...) a
warning says why once and :class:`~l2l_helpers.coordinatewise_lstm.CoordinatewiseLSTM` keeps using the
Python step (:func:`l2l_helpers.fused_lstm.fused_step`). It
covers float32 tensors on the CPU with 20 hidden units (the paper's size) and 1 or 2 inputs per
coordinate; everything else takes the Python step. ``L2L_NATIVE=0`` switches it off.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from .fused_lstm import layer_weights, needs_graph

SOURCE = Path(__file__).resolve().parent / "csrc" / "lstm_step.cpp"
HIDDEN_SIZE = 20  # the sizes the C++ code is built for
INPUT_SIZES = (1, 2)
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]

_module: ModuleType | None = None
_tried = False


def _extension_name() -> str:
    """The module's name in torch's extension cache, specific to this CPU (it is built with -march=native)."""
    flags = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line for line in info if line.startswith("flags")), flags)
    except OSError:
        pass
    return "l2l_lstm_step_" + hashlib.sha1(flags.encode()).hexdigest()[:10]


def _put_ninja_on_path() -> None:
    """torch runs ``ninja`` from PATH; the pip package's copy is not there unless the environment is activated."""
    if shutil.which("ninja"):
        return
    try:
        import ninja  # the pip package, a dependency of l2l-helpers
    except ImportError:
        return
    os.environ["PATH"] = str(ninja.BIN_DIR) + os.pathsep + os.environ.get("PATH", "")


def enabled() -> bool:
    """False when the environment variable ``L2L_NATIVE`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get("L2L_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def load(verbose: bool = False) -> ModuleType | None:
    """The compiled module, building it on first use; None (after one warning) when it cannot be built."""
    global _module, _tried
    if _tried:
        return _module
    _tried = True
    try:
        from torch.utils.cpp_extension import load as load_extension

        _put_ninja_on_path()

        _module = load_extension(
            name=_extension_name(),
            sources=[str(SOURCE)],
            extra_cflags=_FLAGS,
            verbose=verbose,
        )
    except Exception as err:  # no compiler, no ninja, an unsupported platform: the Python step still works
        warnings.warn(
            f"the native LSTM step could not be built ({type(err).__name__}: {str(err)[:300]}); "
            "using the Python step, which gives the same results more slowly. "
            "Install a C++ compiler and `pip install ninja` to get it, or set L2L_NATIVE=0 to skip this.",
            RuntimeWarning,
            stacklevel=2,
        )
        _module = None
    return _module


def supports(x: torch.Tensor, state: torch.Tensor) -> bool:
    """Whether the native step handles this input and state (CPU, float32, the built sizes)."""
    return (
        enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and state.dtype == torch.float32
        and not x.requires_grad
        and x.dim() == 2
        and x.shape[1] in INPUT_SIZES
        and state.dim() == 4
        and state.shape[3] == HIDDEN_SIZE
        and load() is not None
    )


# the parameters themselves (so that no other tensor can take their ids), their storages and versions, the matrices
_cache: tuple[list[torch.Tensor], tuple[tuple[int, int], ...], list[torch.Tensor]] | None = None


def _matrices(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per layer: wt = [W_ih, W_hh, b_ih + b_hh]^T, shape (in + H + 1, 4H).

    Rebuilt only when a parameter changed (its version counter moves with every in-place update, e.g. a
    meta-optimizer step; its storage with ``.data =`` or ``.to()``): the 20 steps of an unroll share one copy.
    """
    global _cache
    key = tuple((p.data_ptr(), p._version) for p in params)
    same = _cache is not None and len(_cache[0]) == len(params)
    if same and all(a is b for a, b in zip(_cache[0], params, strict=True)) and _cache[1] == key:
        return _cache[2]
    with torch.no_grad():
        wt = [layer_weights(params, layer).t().contiguous() for layer in range((len(params) - 2) // 4)]
    _cache = (list(params), key, wt)
    return wt


def _output(params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, float]:
    return params[-2].detach().reshape(-1).contiguous(), float(params[-1].detach())


class NativeLSTMStep(torch.autograd.Function):
    """``(update, new_state) = step(x, state, phi)`` computed by the C++ module, forward and backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, state: torch.Tensor, output_scale: float, *params: torch.Tensor) -> Any:
        module = load()
        assert module is not None  # checked by supports()
        wt = _matrices(params)
        w_out, b_out = _output(params)
        update, new_state, saved = module.forward(x, state, wt, w_out, b_out, output_scale, True)
        ctx.output_scale = output_scale
        ctx.n_layers = len(wt)
        ctx.input_size = x.shape[1]
        ctx.save_for_backward(x, state, new_state, saved, w_out, *wt)
        return update, new_state

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, d_update: torch.Tensor, d_new_state: torch.Tensor) -> Any:
        module = load()
        assert module is not None
        x, state, new_state, saved, w_out, *wt = ctx.saved_tensors
        d_state, *grads = module.backward(
            x,
            state,
            new_state,
            saved,
            wt,
            w_out,
            ctx.output_scale,
            d_update.contiguous(),
            d_new_state.contiguous(),
            ctx.needs_input_grad[1],
        )
        param_grads: list[torch.Tensor] = []
        for layer in range(ctx.n_layers):
            d_wt = grads[layer]  # (in + H + 1, 4H)
            inp = ctx.input_size if layer == 0 else HIDDEN_SIZE
            d_bias = d_wt[-1].contiguous()
            param_grads += [d_wt[:inp].t().contiguous(), d_wt[inp:-1].t().contiguous(), d_bias, d_bias.clone()]
        d_w_out, d_b_out = grads[ctx.n_layers], grads[ctx.n_layers + 1]
        param_grads += [d_w_out.unsqueeze(0), d_b_out]
        return (None, d_state if ctx.needs_input_grad[1] else None, None, *param_grads)


def native_step(
    x: torch.Tensor, state: torch.Tensor, params: Sequence[torch.Tensor], output_scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step by the C++ module; call only where :func:`supports` is True."""
    x, state = x.contiguous(), state.contiguous()
    if needs_graph(state, params):
        return NativeLSTMStep.apply(x, state, output_scale, *params)
    module = load()
    assert module is not None
    w_out, b_out = _output(params)
    update, new_state, _ = module.forward(x, state, _matrices(params), w_out, b_out, output_scale, False)
    return update, new_state
