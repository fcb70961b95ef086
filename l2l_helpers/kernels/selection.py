"""Which LSTM step runs on this machine: the native (C++) or the fused (PyTorch) one, whichever is faster here.

The first time a native build is used on a CPU with a given number of threads, :func:`measure` times a few
forward and backward steps of both on an MNIST-sized batch (about a second); the choice is cached beside the
build (``selection.json``, keyed by the CPU's flags and the thread count) and said once on stderr.
``L2L_NATIVE=1`` or ``0`` forces a step; where the native step cannot be built or run, the fused one runs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from l2l_helpers import settings
from l2l_helpers.kernels import native
from l2l_helpers.kernels.fused import fused_step


@dataclass(frozen=True)
class Selection:
    """The step the optimizer network runs on this CPU, and why."""

    step: str  # "native" or "fused"
    reason: str
    times_ms: dict[str, float] = field(default_factory=dict)  # per step, forward and backward, when measured

    def describe(self) -> str:
        """One line for people: which step and why."""
        return f"LSTM step: {self.step} ({self.reason})"


def pick(times_ms: Mapping[str, float]) -> str:
    """The faster of the measured steps (``native`` or ``fused``); the fused one on a tie."""
    return "native" if times_ms["native"] < times_ms["fused"] else "fused"


def _random_phi(input_size: int, layers: int = 2, seed: int = 0) -> list[torch.Tensor]:
    """Random paper-sized LSTM parameters in the order of ``CoordinatewiseLSTM._flat_parameters``."""
    gen = torch.Generator().manual_seed(seed)
    sizes, params = [input_size] + [native.HIDDEN_SIZE] * layers, []
    for layer in range(layers):
        params += [torch.randn(4 * native.HIDDEN_SIZE, sizes[layer], generator=gen) * 0.2]
        params += [torch.randn(4 * native.HIDDEN_SIZE, native.HIDDEN_SIZE, generator=gen) * 0.2]
        params += [torch.randn(4 * native.HIDDEN_SIZE, generator=gen) * 0.1 for _ in range(2)]
    params += [torch.randn(1, native.HIDDEN_SIZE, generator=gen) * 0.1, torch.zeros(1)]
    return [p.requires_grad_(True) for p in params]


def measure(n_coords: int = 16_000, steps: int = 3, repeats: int = 5) -> dict[str, float]:
    """Milliseconds per step of each step function, forward and backward, as meta-training runs them: ``steps``
    chained steps of a 2-layer net on ``n_coords`` coordinates (the MNIST MLP has 15,910), then the backward;
    the two interleaved, median of ``repeats`` after a warm-up. Its random inputs come from a generator of its own:
    the first LSTM step on a new machine leaves the global random state where it was."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n_coords, 2, generator=gen)
    state0 = torch.randn(2, 2, n_coords, native.HIDDEN_SIZE, generator=gen) * 0.1
    phi = _random_phi(2)
    steps_by_name: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
        "native": native.native_step,
        "fused": fused_step,
    }
    times: dict[str, list[float]] = {name: [] for name in steps_by_name}
    with torch.inference_mode(False), torch.enable_grad():
        for repeat in range(repeats + 1):
            for name, step in steps_by_name.items():
                start = time.perf_counter()
                state, loss = state0.clone().requires_grad_(True), torch.zeros(())
                for _ in range(steps):
                    update, state = step(x, state, phi, 0.1)
                    loss = loss + update.sum()
                (loss + state.sum()).backward()
                if repeat:  # the first round warms up
                    times[name].append((time.perf_counter() - start) * 1000 / steps)
    return {name: statistics.median(t) for name, t in times.items()}


def _cpu_key() -> str:
    return hashlib.sha1(native.cpu_flags().encode()).hexdigest()[:10] + f"-{torch.get_num_threads()}threads"


def _measured_selection(name: str) -> Selection:
    """The auto choice for build ``name``: cached beside the build, or measured now and cached."""
    path, key = native.build_dir(name) / "selection.json", _cpu_key()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: start a new one
        cache = {}
    entry = cache.get(key) if isinstance(cache, dict) else None
    try:
        times = {k: float(entry["times_ms"][k]) for k in ("native", "fused")}  # type: ignore[index]
        when = str(entry["measured"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):  # not measured with this CPU and thread count yet
        times, when = measure(), datetime.date.today().isoformat()
        cache = {**(cache if isinstance(cache, dict) else {}), key: {"times_ms": times, "measured": when}}
        try:
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(cache, indent=1) + "\n")
            os.replace(partial, path)
        except OSError:
            pass  # a read-only cache: the choice holds for this process
    step = pick(times)
    lanes = getattr(native._modules.get(name), "lanes", "?")
    reason = (
        f"faster on this CPU: native {times['native']:.1f} ms vs fused {times['fused']:.1f} ms per step, forward "
        f"and backward, {torch.get_num_threads()} threads, {name} build with {lanes} lanes, measured {when}; "
        "L2L_NATIVE=1 or 0 forces a step"
    )
    return Selection(step, reason, times)


_selections: dict[tuple[str, str, int], Selection] = {}


def selection() -> Selection:
    """Which step the optimizer network runs here (see the module's docstring); reported once on stderr."""
    key = (settings.native_mode(), native.target(), torch.get_num_threads())
    if key in _selections:
        return _selections[key]
    how, name = key[0], key[1]
    if how == "off":
        chosen = Selection("fused", "L2L_NATIVE=0")
    elif native.load() is None:
        chosen = Selection("fused", f"the native step is unavailable: {native._errors.get(name, 'not built')}")
    elif how == "on":
        chosen = Selection("native", f"L2L_NATIVE=1, {name} build, {native._modules[name].lanes} lanes")
    else:
        chosen = _measured_selection(name)
    _selections[key] = chosen
    print(f"l2l_helpers: {chosen.describe()}", file=sys.stderr)
    return chosen


def supports(x: torch.Tensor, state: torch.Tensor) -> bool:
    """Whether the native step runs by default for this input and state: built for it, and selected here."""
    return native.shape_supported(x, state) and selection().step == "native"
