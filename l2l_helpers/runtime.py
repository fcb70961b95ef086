"""One explicit call that prepares a notebook or script run: seeds, device, plotly renderer, versions."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import platform
import random
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import torch

from l2l_helpers import settings

DEVICES = ("auto", "cpu", "cuda")
_F = TypeVar("_F", bound=Callable[..., Any])
_flush_depth = 0


@contextlib.contextmanager
def flushed_denormals() -> Iterator[None]:
    """Subnormal floats (below 1.2e-38 in float32) flushed to zero inside, then IEEE arithmetic again (torch's
    default); nested uses keep flushing until the outermost one ends.

    On x86 CPUs an operation that meets a subnormal number takes a slow path. Meta-training and evaluation meet
    them when an optimizer saturates the MLP's sigmoids (gradients underflow): measured 2026-12-02, a
    w_t = 1 MNIST optimizer after 200 epochs took 5.2-6.5 s per meta-training epoch, 2.2-2.3 s with subnormals
    flushed. A number that small adds nothing a float32 sum can see next to the losses and gradients here, so
    the results are the same to float rounding; meta-training, evaluation and the reference epoch run inside.
    """
    global _flush_depth
    if _flush_depth == 0:
        torch.set_flush_denormal(True)
    _flush_depth += 1
    try:
        yield
    finally:
        _flush_depth -= 1
        if _flush_depth == 0:
            torch.set_flush_denormal(False)


def denormals_flushed(fn: _F) -> _F:
    """Decorator: ``fn`` runs inside :func:`flushed_denormals`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with flushed_denormals():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD and M_MMAP_MAX.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_memory_kept = False


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for the next allocation instead of handing it back to the kernel;
    True where that is in effect (glibc on Linux, ``L2L_KEEP_MEMORY=1``), False elsewhere (nothing changed).

    Every optimizer step here allocates tensors of tens to hundreds of MB (a batch of 128x128 images' feature
    maps, a grid of MNIST networks' activations) and frees them before the next step. glibc serves anything over
    32 MB (its largest mmap threshold) with a fresh ``mmap`` and unmaps it on ``free``, and it trims the top of
    its heap above 128 kB; either way the next step's buffers come back from the kernel as new pages, each one
    faulted in and zeroed. With mmap off (``M_MMAP_MAX = 0``) and trimming above 2 GB only, the same pages are
    reused: measured 2026-12-03 on 2 cores, a step of 16 neural-art images at 128x128 took 165 instead of 210 ms.
    The arithmetic is the same (results are equal bit for bit); the cost is that the process keeps its peak memory
    until it exits. :func:`setup` calls this, so it takes effect only where asked (the headless runner asks for its
    kernels, which exit after their notebook); it holds for the whole process, and glibc offers no way back.
    """
    global _memory_kept
    if _memory_kept:
        return True
    if not settings.keep_memory() or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: other C libraries' mallopt differ or do nothing
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _memory_kept = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return _memory_kept


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is a positive integer, else raise ``ValueError`` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return value


def progress_bar(iterable: Any, enabled: bool, desc: str, total: int | None = None) -> Any:
    """``iterable`` with a tqdm bar (notebook or terminal) when ``enabled``; unchanged otherwise."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU is a ``ValueError`` saying so."""
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is unknown; use one of: {', '.join(DEVICES)}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA GPU is available; use device='auto' or 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    """Versions of the pieces a run depends on."""
    out = {"python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__)}
    for mod in ("plotly", "ipywidgets", "papermill"):
        try:
            out[mod] = str(__import__(mod).__version__)
        except ImportError:
            pass
    return out


def setup(seed: int = 0, device: str | torch.device = "auto", verbose: bool = True) -> torch.device:
    """Seed everything, pick the device, set plotly's offline renderer, keep freed memory for reuse
    (:func:`keep_freed_memory`, only where ``L2L_KEEP_MEMORY=1`` asks: the headless runner does) and print versions.

    Returns the ``torch.device`` to use. Notebooks call this once, in their first code cell.
    """
    seed_everything(seed)
    dev = resolve_device(device)
    kept = keep_freed_memory()
    try:
        import plotly.io as pio

        # plotly_mimetype renders offline in JupyterLab and keeps notebooks small.
        pio.renderers.default = settings.plotly_renderer()
    except ImportError:
        pass
    if verbose:
        gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
        info = ", ".join(f"{k} {v}" for k, v in versions().items())
        memory = "; freed memory kept for reuse" if kept else ""
        print(f"device: {dev}{gpu}; seed: {seed}; {info}; {sys.platform}{memory}")
    return dev


_BOOL_PARAMS = {"SMOKE", "INTERACTIVE", "RETRAIN", "FULL"}
_NON_NEGATIVE_INT_PARAMS = {"SEED", "TASK"}
_POSITIVE_INT_SUFFIXES = (
    "EPOCHS",
    "STEPS",
    "UNROLL",
    "TASKS",
    "TASKS_PER_EPOCH",
    "LAYERS",
    "SIZE",
    "UNITS",
    "REPEATS",
)
_POSITIVE_FLOAT_PARAMS = {"LR", "P"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_parameters(namespace: Mapping[str, Any]) -> None:
    """Check a notebook's ALL_CAPS parameters by their names; ``ValueError`` naming the first bad one.

    Call it as ``l2l.check_parameters(globals())`` after the parameters cell, so that a wrong value passed
    with ``papermill -p`` (say ``-p SMOKE yes``) fails at once with a clear message.
    """
    for name, value in namespace.items():
        if not name.isupper() or name.startswith("_"):
            continue
        problem = None
        if name in _BOOL_PARAMS and not isinstance(value, bool):
            problem = "must be True or False"
        elif name in _NON_NEGATIVE_INT_PARAMS and not (_is_int(value) and value >= 0):
            problem = "must be a non-negative integer"
        elif name.endswith(_POSITIVE_INT_SUFFIXES) and not (_is_int(value) and value > 0):
            problem = "must be a positive integer"
        elif (name in _POSITIVE_FLOAT_PARAMS or name.endswith("_LR")) and not (_is_number(value) and value > 0):
            problem = "must be a positive number"
        elif name == "DEVICE" and value not in DEVICES:
            problem = f"must be one of {', '.join(DEVICES)}"
        elif name.endswith("SCALES") and not (
            isinstance(value, (list, tuple)) and value and all(_is_number(v) and v > 0 for v in value)
        ):
            problem = "must be a non-empty list of positive numbers"
        elif name.endswith("HORIZONS") and not (
            isinstance(value, (list, tuple)) and value and all(_is_int(v) and v > 0 for v in value)
        ):
            problem = "must be a non-empty list of positive integers (numbers of steps)"
        elif name.endswith("LABELS") and not (
            isinstance(value, (list, tuple)) and len(value) >= 2 and all(_is_int(v) and v >= 0 for v in value)
        ):
            problem = "must be a list of at least two labels (non-negative integers), e.g. [0, 1]"
        elif name == "DATASET" and value not in ("auto", "fashion_mnist", "cifar10"):
            problem = "must be one of auto, fashion_mnist, cifar10"
        elif name == "SPLIT" and value not in ("test", "dev"):
            problem = "must be 'test' (the locked held-out tasks of the claims) or 'dev' (development)"
        if problem:
            raise ValueError(f"notebook parameter {name}={value!r} {problem}")
