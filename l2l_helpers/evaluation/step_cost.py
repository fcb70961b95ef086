"""The price of a learned step (notebook 11; the seeds' review: "the extra calculation of optimizer g is unreported").

The paper compares optimizers per step. A coordinatewise LSTM does far more arithmetic per step than Adam, and
keeps far more state per coordinate. This module counts both (multiply-adds, bytes of state) and times them on the
reader's machine, in the loop a user writes (``zero_grad``, forward, ``backward``, ``step``), so that the loss can
be read against seconds as well as against steps.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from l2l_helpers.optimizer.coordinatewise_lstm import OptimizerConfig
from l2l_helpers.runtime import check_positive_int

#: Numbers of state each hand-designed optimizer keeps per coordinate (torch.optim's defaults).
BASELINE_STATE_FLOATS = {"SGD": 0, "NAG": 1, "RMSprop": 1, "Adam": 2}


def lstm_step_macs(n_coords: int, config: OptimizerConfig) -> int:
    """Multiply-adds of one step of the coordinatewise LSTM on ``n_coords`` coordinates (gates and output layer):
    per coordinate and layer, the four gates [W_ih, W_hh, b] @ [x, h, 1]; then the hidden_size-wide output layer."""
    hidden, total, inp = config.hidden_size, 0, config.input_size
    for _ in range(config.num_layers):
        total += 4 * hidden * (inp + hidden + 1)
        inp = hidden
    return n_coords * (total + hidden)


def mlp_step_macs(sizes: Sequence[int], batch: int) -> int:
    """Multiply-adds of one training step of an MLP with layer widths ``sizes`` (784, 20, 10 for the paper's) on a
    minibatch of ``batch``: the forward products, their weight gradients, and the input gradients of every layer
    but the first (the images need none)."""
    if len(sizes) < 2:
        raise ValueError(f"sizes={list(sizes)!r}: give at least an input and an output width")
    products = [a * b for a, b in itertools.pairwise(sizes)]
    return batch * (2 * sum(products) + sum(products[1:]))


def state_bytes_per_coordinate(config: OptimizerConfig, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of recurrent state the LSTM keeps per coordinate: (h, c) of every layer (and an NTM memory's row)."""
    return config.state_layers * 2 * config.hidden_size * torch.tensor([], dtype=dtype).element_size()


def timed_training_curve(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
) -> tuple[list[float], list[float]]:
    """An ordinary training loop with a clock: the minibatch loss before each step and after the last (steps + 1),
    and the seconds spent training when each was measured (0 at the start; each step's forward, backward and
    optimizer step counted, the drawing of minibatches and the reading of the loss not)."""
    check_positive_int("steps", steps)
    gen = torch.Generator().manual_seed(seed)
    losses, seconds, elapsed = [], [], 0.0
    for t in range(steps + 1):
        idx = torch.randint(0, len(labels), (batch_size,), generator=gen).to(images.device)
        x, y = images[idx], labels[idx]
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        if t < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        _sync(images.device)
        if t > 0:
            elapsed += time.perf_counter() - start
        losses.append(float(loss.detach()))
        seconds.append(elapsed)
    return losses, seconds


def step_times(
    make_model: Callable[[], nn.Module],
    optimizers: Mapping[str, Callable[[Any], torch.optim.Optimizer]],
    images: torch.Tensor,
    labels: torch.Tensor,
    repeats: int = 30,
    warmup: int = 3,
) -> dict[str, dict[str, float]]:
    """Median seconds of ``optimizer.step()`` alone and of a whole training step (zero_grad, forward, backward,
    step) on one minibatch, for each optimizer by name (``optimizers[name](model.parameters())``), each on its own
    copy of ``make_model()``. The optimizers take turns step by step, so that a machine whose speed drifts slows
    them alike; ``warmup`` steps each are not counted."""
    check_positive_int("repeats", repeats)
    if not optimizers:
        raise ValueError("optimizers is empty: give at least one name -> factory")
    runs = {}
    for name, make in optimizers.items():
        model = make_model().to(images.device)
        runs[name] = (model, make(model.parameters()))
    step: dict[str, list[float]] = {name: [] for name in runs}
    whole: dict[str, list[float]] = {name: [] for name in runs}
    device = images.device
    for r in range(warmup + repeats):
        for name, (model, opt) in runs.items():
            _sync(device)
            t0 = time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            _sync(device)
            t1 = time.perf_counter()
            opt.step()
            _sync(device)
            t2 = time.perf_counter()
            if r >= warmup:
                step[name].append(t2 - t1)
                whole[name].append(t2 - t0)
    return {name: {"step_s": statistics.median(step[name]), "whole_s": statistics.median(whole[name])} for name in runs}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cost_markdown(n_coords: int, config: OptimizerConfig, sizes: Sequence[int], batch: int) -> str:
    """A table of one step's arithmetic and state: the LSTM, the optimizee's own training step, and Adam's."""
    lstm, mlp = lstm_step_macs(n_coords, config), mlp_step_macs(sizes, batch)
    lstm_state = n_coords * state_bytes_per_coordinate(config) / 2**20
    adam_state = n_coords * BASELINE_STATE_FLOATS["Adam"] * 4 / 2**20
    return (
        f"| per step, {n_coords:,} coordinates | LSTM | the optimizee's forward and backward | Adam |\n"
        "|---|---|---|---|\n"
        f"| multiply-adds | {lstm / 1e6:.1f} M | {mlp / 1e6:.1f} M | none (about 10 elementwise operations each) |\n"
        f"| state (float32) | {lstm_state:.2f} MiB | | {adam_state:.2f} MiB |\n\n"
        f"The LSTM does {lstm / mlp:.1f}x the optimizee's own arithmetic per step and keeps "
        f"{lstm_state / adam_state:.0f}x Adam's state."
    )


def times_markdown(times: Mapping[str, Mapping[str, float]], ours: str = "LSTM", theirs: str = "Adam") -> str:
    """A table of :func:`step_times`' medians for two optimizers and their ratio."""
    a, b = times[theirs], times[ours]
    return (
        f"| median of the timed steps | {theirs} | {ours} | {ours} / {theirs} |\n|---|---|---|---|\n"
        f"| `optimizer.step()` alone | {a['step_s'] * 1e3:.3f} ms | {b['step_s'] * 1e3:.3f} ms "
        f"| {b['step_s'] / a['step_s']:.1f}x |\n"
        f"| whole training step | {a['whole_s'] * 1e3:.3f} ms | {b['whole_s'] * 1e3:.3f} ms "
        f"| {b['whole_s'] / a['whole_s']:.1f}x |"
    )
