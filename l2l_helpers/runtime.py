"""One explicit call that prepares a notebook or script run: seeds, device, plotly renderer, versions."""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch

DEVICES = ("auto", "cpu", "cuda")


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
    """Seed everything, pick the device, set plotly's offline renderer and print versions.

    Returns the ``torch.device`` to use. Notebooks call this once, in their first code cell.
    """
    seed_everything(seed)
    dev = resolve_device(device)
    try:
        import plotly.io as pio

        # plotly_mimetype renders offline in JupyterLab and keeps notebooks small.
        pio.renderers.default = os.environ.get("L2L_PLOTLY_RENDERER", "plotly_mimetype")
    except ImportError:
        pass
    if verbose:
        gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
        info = ", ".join(f"{k} {v}" for k, v in versions().items())
        print(f"device: {dev}{gpu}; seed: {seed}; {info}; {sys.platform}")
    return dev
