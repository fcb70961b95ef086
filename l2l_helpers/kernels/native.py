"""The native (C++) step of the coordinatewise LSTM: built on first use, chosen only where it is faster.

``csrc/lstm_step.cpp`` computes a whole step of the stacked LSTM (forward, and backward for
meta-training) for blocks of coordinates held in the lanes of one vector register (16 with AVX-512, 8 on
CPUs with 256-bit vectors such as AVX2-only laptops), so that the matrix products and the gates of a block
never leave the core's cache. Same arithmetic as the PyTorch fused step, same results to float rounding
(``tests/test_native_lstm.py``).

Which step runs is decided in :mod:`.selection` (measured once per CPU and thread count); the switches:

* ``L2L_NATIVE=auto`` (the default): the faster of the two *on this machine*. The first time a build is
  used on a CPU with a given number of threads, a few forward and backward steps of each are timed on an
  MNIST-sized batch (about a second) and the choice is cached beside the build (``selection.json``), keyed by
  the CPU's flags and the thread count. One line on stderr says which step runs and why.
* ``L2L_NATIVE=1`` forces the native step (where it builds), ``L2L_NATIVE=0`` the fused PyTorch step.
* ``L2L_NATIVE_MARCH`` picks the build's target: ``native`` (this CPU, the default) or one of
  :data:`TARGETS`, e.g. ``haswell`` to get the 8-lane AVX2 build on any x86 CPU that has AVX2.

The module is compiled with the machine's C++ compiler (``torch.utils.cpp_extension``, ninja) the first time a
process needs it, 30-90 s, into a folder of torch's extension cache (``TORCH_EXTENSIONS_DIR``) named by a hash
of the source's content, the flags, the target, the CPU (for ``native``) and the torch and Python versions:
two checkouts or an installed copy with the same source share one build, and a changed source gets its own.
Where the build fails (no compiler, Windows, ...) or the CPU lacks the target's instructions, a warning says
why once and :class:`~l2l_helpers.optimizer.coordinatewise_lstm.CoordinatewiseLSTM` uses the Python step
(:func:`l2l_helpers.kernels.fused.fused_step`). The native step covers float32 tensors on the CPU with 20
hidden units (the paper's size) and 1 or 2 inputs per coordinate; everything else takes the Python step.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from l2l_helpers import settings
from l2l_helpers.kernels.fused import layer_weights, needs_graph

SOURCE = Path(__file__).resolve().parent / "csrc" / "lstm_step.cpp"
HIDDEN_SIZE = 20  # the sizes the C++ code is built for
INPUT_SIZES = (1, 2)
_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
#: Build targets (``-march``) and the CPU flags (``/proc/cpuinfo``) each needs; ``native`` is this CPU.
TARGETS: dict[str, tuple[str, ...]] = {  # the keys are settings.NATIVE_TARGETS
    "native": (),
    "haswell": ("avx2", "fma"),  # 256-bit vectors, 8 lanes per block
    "skylake-avx512": ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"),  # 512-bit, 16 lanes
}

#: per target (the LSTM step) or (source stem, target) (another csrc/ file): the module, or None when it cannot be built
_modules: dict[Any, ModuleType | None] = {}
_errors: dict[Any, str] = {}  # the same keys: why it could not be built


def target() -> str:
    """The build target, from ``L2L_NATIVE_MARCH`` (:func:`settings.native_target`, default ``native``)."""
    return settings.native_target()


def cpu_flags() -> str:
    """This CPU's feature flags (the ``flags`` line of ``/proc/cpuinfo``; the processor's name elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            line = next((line for line in info if line.startswith("flags")), "")
        if line:
            return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def vector_bits(flags: str | None = None) -> int:
    """Width of this CPU's widest float vectors: 512 (AVX-512), 256 (AVX2) or 128 (anything else)."""
    have = set((cpu_flags() if flags is None else flags).split())
    return 512 if "avx512f" in have else 256 if "avx2" in have else 128


def missing_instructions(name: str, flags: str | None = None) -> list[str]:
    """The CPU flags that target ``name`` needs and this CPU (or ``flags``) lacks."""
    have = set((cpu_flags() if flags is None else flags).split())
    return [flag for flag in TARGETS[name] if flag not in have]


def build_name(name: str, source: Path | None = None) -> str:
    """The extension's name in torch's cache: a hash of everything that makes the binary what it is. ``source``:
    another C++ file of ``csrc/`` built the same way (default: the LSTM step's)."""
    source = SOURCE if source is None else source
    parts = [source.read_bytes(), " ".join(_FLAGS).encode(), name.encode(), torch.__version__.encode()]
    parts.append(platform.python_version().encode())
    if name == "native":  # -march=native: the binary is this CPU's
        parts.append(cpu_flags().encode())
    return f"l2l_{source.stem}_" + hashlib.sha1(b"\0".join(parts)).hexdigest()[:12]


def build_dir(name: str, source: Path | None = None) -> Path:
    """Where the build of target ``name`` lives (its source copy, objects, module and ``selection.json``)."""
    from torch.utils.cpp_extension import get_default_build_root

    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / build_name(name, source)


def _put_ninja_on_path() -> None:
    """torch runs ``ninja`` from PATH; the pip package's copy is not there unless the environment is activated."""
    if shutil.which("ninja"):
        return
    try:
        import ninja  # the pip package, a dependency of l2l-helpers
    except ImportError:
        return
    os.environ["PATH"] = str(ninja.BIN_DIR) + os.pathsep + os.environ.get("PATH", "")


def _build(name: str, verbose: bool, original: Path | None = None, what: str = "the native LSTM step") -> ModuleType:
    """Compile (or reuse) the build of target ``name``: the source (``original``, default the LSTM step's) is
    copied into the build's folder first, so that the build does not depend on where this package lives."""
    from torch.utils.cpp_extension import load as load_extension

    original = SOURCE if original is None else original
    missing = missing_instructions(name)
    if missing:
        raise RuntimeError(f"this CPU lacks {', '.join(missing)}, which the {name} build needs")
    folder = build_dir(name, original)
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / original.name
    if not source.exists() or source.read_bytes() != original.read_bytes():
        partial = source.with_suffix(".tmp")
        shutil.copyfile(original, partial)
        os.replace(partial, source)
    if not (folder / f"{folder.name}.so").exists():
        print(f"l2l_helpers: building {what} (once per machine, 30-90 s) in {folder}", file=sys.stderr)
    _put_ninja_on_path()
    flags = [*_FLAGS, f"-march={name}"]
    return load_extension(
        name=folder.name, sources=[str(source)], extra_cflags=flags, build_directory=str(folder), verbose=verbose
    )


def _load_once(cache: dict[Any, ModuleType | None], key: Any, build: Callable[[], ModuleType], what: str, instead: str):
    """``cache[key]``, built by ``build()`` the first time; where that fails, None and one warning saying why, what
    runs ``instead`` and how to get the build (the reason is kept in ``_errors[key]`` for the step selection)."""
    if key in cache:
        return cache[key]
    try:
        cache[key] = build()
    except Exception as err:  # no compiler, no ninja, an unsupported platform: the PyTorch path still works
        _errors[key] = f"{type(err).__name__}: {str(err)[:300]}"
        warnings.warn(
            f"{what} could not be built ({_errors[key]}); {instead}, which gives the same results more slowly. "
            "Install a C++ compiler and `pip install ninja` to get it, or set L2L_NATIVE=0 to skip this.",
            RuntimeWarning,
            stacklevel=3,
        )
        cache[key] = None
    return cache[key]


def load(verbose: bool = False) -> ModuleType | None:
    """The compiled module of the current :func:`target`, building it on first use; None (after one warning)
    when it cannot be built or this CPU cannot run it."""
    name = target()
    return _load_once(_modules, name, lambda: _build(name, verbose), "the native LSTM step", "using the Python step")


def load_source(source: Path, what: str) -> ModuleType | None:
    """Another C++ file of ``csrc/`` (e.g. the convnet's fused block), built like the LSTM step for the current
    :func:`target` on first use; None, after one warning naming ``what``, where it cannot be built."""
    name = target()
    key = (source.stem, name)
    return _load_once(_modules, key, lambda: _build(name, False, source, what), what, "PyTorch's operators run instead")


def shape_supported(x: torch.Tensor, state: torch.Tensor) -> bool:
    """Whether the C++ code is built for this input and state: CPU, float32, 20 hidden units, 1 or 2 inputs."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and state.dtype == torch.float32
        and not x.requires_grad
        and x.dim() == 2
        and x.shape[1] in INPUT_SIZES
        and state.dim() == 4
        and state.shape[3] == HIDDEN_SIZE
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
        assert module is not None  # checked by kernels.backend_for
        wt = _matrices(params)
        w_out, b_out = _output(params)
        update, new_state, saved = module.forward(x, state, wt, w_out, b_out, output_scale, True, False)
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
    x: torch.Tensor,
    state: torch.Tensor,
    params: Sequence[torch.Tensor],
    output_scale: float,
    in_place: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step by the C++ module; call only where :func:`shape_supported` and :func:`load` allow it.

    ``in_place``: where no graph is recorded, the new state is written over ``state`` and returned (the caller
    drops the old one, as evaluation's loop does), instead of into a fresh tensor of the same size.
    """
    x, state = x.contiguous(), state.contiguous()
    if needs_graph(state, params):
        return NativeLSTMStep.apply(x, state, output_scale, *params)
    module = load()
    assert module is not None
    w_out, b_out = _output(params)
    update, new_state, _ = module.forward(x, state, _matrices(params), w_out, b_out, output_scale, False, in_place)
    return update, new_state
