"""Speed of meta-training and of the learned optimizer, measured side by side in one run (a script, not a test).

a. seconds per meta-training epoch on the paper's MNIST task (MLP 784-20-10, 15,910 coordinates, T = 100,
   unroll 20, one task): a straightforward reference (an ``nn.LSTMCell`` stack unrolled with autograd,
   written plainly below), the project's trainer with its ``nn.LSTMCell`` path, the fused PyTorch step and the
   native C++ step (each pinned with ``l2l_helpers.kernels.forced``), timed
   interleaved; then the marginal epoch time of
   ``python -m l2l_helpers train --problem mnist`` (``--epochs N2`` minus ``--epochs N1``); and the size of
   the epoch's LSTM work: its multiply-adds and the native step's memory traffic, each with its time at the
   speed this machine reaches on a PyTorch product of the same shape and on a plain copy;
b. one optimizee step of the same MLP as an ``nn.Module``: ``LearnedOptimizer.step`` (inference, no graph)
   vs ``torch.optim.Adam.step``, with the LSTM's multiply-adds and the time they take at the matrix-product
   speed measured in the same run (the arithmetic floor);
c. time to quality (``--quality``): meta-train with the shipped MNIST recipe until the mean final loss on
   held-out tasks (100 steps) beats Adam at its best grid learning rate, or ``--budget-min`` runs out.

Usage: ``python benchmarks/bench_speed.py [--threads 2] [--epochs 4] [--cli 2 8] [--cli-repeats 3]
[--march native|haswell] [--quality --budget-min 10]``. ``--march haswell`` times the 8-lane AVX2 build of the
native step (what a CPU without AVX-512 gets) on any x86 CPU with AVX2, in this process and the CLI runs.
The header says the CPU, its vector width and the step the auto-selection picked (what users get by default).
Prints a table and writes ``benchmarks/results/speed.json``. CPU timings are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

import l2l_helpers as l2l
from l2l_helpers import kernels
from l2l_helpers.kernels import native
from l2l_helpers.meta_training import training_indices, unroll_trajectory

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the plain reference


class ReferenceOptimizer(nn.Module):
    """The paper's optimizer written the obvious way: preprocessing, two nn.LSTMCell, a linear output."""

    def __init__(self, hidden: int = 20, p: float = 10.0, output_scale: float = 0.1) -> None:
        super().__init__()
        self.cells = nn.ModuleList([nn.LSTMCell(2, hidden), nn.LSTMCell(hidden, hidden)])
        self.out = nn.Linear(hidden, 1)
        self.p, self.output_scale = p, output_scale

    def forward(
        self, grad: torch.Tensor, hs: list[torch.Tensor], cs: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        big = grad.abs() >= math.exp(-self.p)  # Appendix A: (log|g| / p, sign g) or (-1, e^p g)
        log = torch.where(big, torch.log(grad.abs().clamp_min(1e-38)) / self.p, -torch.ones_like(grad))
        x = torch.stack([log, torch.where(big, torch.sign(grad), grad * math.exp(self.p))], dim=-1)  # (N, 2)
        new_h, new_c = [], []
        for cell, h, c in zip(self.cells, hs, cs, strict=True):
            h, c = cell(x, (h, c))
            new_h.append(h)
            new_c.append(c)
            x = h
        return self.out(x).squeeze(-1) * self.output_scale, new_h, new_c


EPOCH_STEPS, UNROLL = 100, 20  # one meta-training epoch: T = 100 optimizee steps, truncated every 20


@contextlib.contextmanager
def flushed_denormals() -> Iterator[None]:
    """Subnormal floats flushed to zero inside (then back to IEEE arithmetic, torch's default).

    The reference is the unit every speed figure is stated in, and its ``nn.LSTMCell`` autograd meets subnormal
    numbers for some initialisations: measured 2026-12-02, three random inits took 1.8, 1.8 and 5.3-6.9 s per
    epoch, all three 1.8 s with subnormals flushed (the project's steps took the same time either way). Flushing
    makes the unit a property of the machine, not of a random draw; it can only make the reference faster.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def reference_net(device: torch.device) -> ReferenceOptimizer:
    """The reference optimizer, initialised from seed 0 (the same weights in every run)."""
    torch.manual_seed(0)
    return ReferenceOptimizer().to(device)


def reference_epoch(net: ReferenceOptimizer, tasks: l2l.TaskBatch, meta_opt: torch.optim.Optimizer) -> None:
    """One trajectory of T = 100 steps, a meta-step of Adam after every unroll of 20 (first order, w_t = 1),
    with subnormal floats flushed (:func:`flushed_denormals`)."""
    with flushed_denormals():
        _reference_epoch(net, tasks, meta_opt)


def _reference_epoch(net: ReferenceOptimizer, tasks: l2l.TaskBatch, meta_opt: torch.optim.Optimizer) -> None:
    theta = tasks.init_theta()
    n = theta.numel()
    hs = [theta.new_zeros(n, 20) for _ in range(2)]
    cs = [theta.new_zeros(n, 20) for _ in range(2)]
    for start in range(0, EPOCH_STEPS, UNROLL):
        theta = theta.detach().requires_grad_(True)
        hs, cs = [h.detach() for h in hs], [c.detach() for c in cs]
        loss = tasks.loss(theta, start)
        meta_loss = theta.new_zeros(())
        for t in range(start, start + 20):
            (grad,) = torch.autograd.grad(loss.sum(), theta, retain_graph=True)  # a constant: first order
            update, hs, cs = net(grad.reshape(-1), hs, cs)
            theta = theta + update.view_as(theta)
            loss = tasks.loss(theta, t + 1)
            meta_loss = meta_loss + loss.mean()
        meta_opt.zero_grad()
        meta_loss.backward()
        meta_opt.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_header(device: torch.device) -> dict[str, object]:
    """Print and return the CPU, its vector width, the native build and the step the auto-selection picks."""
    if device.type != "cpu":
        return {}
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "?")
    bits, target = native.vector_bits(), native.target()
    module = native.load()
    lanes = getattr(module, "lanes", None)
    switch = os.environ.pop("L2L_NATIVE", None)  # what a user gets: the auto-selection
    try:
        chosen = kernels.selection.selection()
    finally:
        if switch is not None:
            os.environ["L2L_NATIVE"] = switch
    print(f"CPU {model}: {bits}-bit vectors; native build {target}" + (f", {lanes} lanes" if lanes else ", not built"))
    print(f"default LSTM step (auto-selection): {chosen.step}, {chosen.reason}")
    return {
        "cpu": model,
        "vector_bits": bits,
        "native_target": target,
        "native_lanes": lanes,
        "default_step": chosen.step,
        "default_step_reason": chosen.reason,
        "selection_times_ms": chosen.times_ms,
    }


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return info.readlines()
    except OSError:
        return []


def bench_epochs(epochs: int, device: torch.device) -> dict[str, float]:
    """(a) Median seconds per epoch of the reference and the trainer's steps, interleaved epoch by epoch after a
    warm-up: ``cells`` (the ``nn.LSTMCell`` stack), ``fused`` (the Python fused step) and ``native`` (the C++ step
    of ``l2l_helpers.kernels.native``, where it can be built), each pinned by ``kernels.forced``."""
    problem = l2l.MNISTProblem()
    config = l2l.MetaTrainConfig(val_every=0)
    ref = reference_net(device)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    nets = {}
    names = ["cells", "fused"] + (["native"] if device.type == "cpu" and native.load() is not None else [])
    for name in names:
        torch.manual_seed(0)
        net = l2l.CoordinatewiseLSTM().to(device)
        nets[name] = (net, torch.optim.Adam(net.parameters(), lr=1e-3))
    times: dict[str, list[float]] = {"reference": [], **{name: [] for name in names}}
    for epoch in range(epochs + 1):  # epoch 0 is a warm-up
        for name in times:
            tasks = problem.tasks("train", range(epoch, epoch + 1), device)
            sync(device)
            start = time.perf_counter()
            if name == "reference":
                reference_epoch(ref, tasks, ref_opt)
            else:
                net, opt = nets[name]
                with kernels.forced(name):
                    unroll_trajectory(net, tasks, config, opt)
            sync(device)
            if epoch:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


class ReferenceClock:
    """Times epochs of the plain reference in this process, between the CLI runs (the machine's speed drifts)."""

    def __init__(self, device: torch.device) -> None:
        self.problem, self.device, self.epoch = l2l.MNISTProblem(), device, 100
        self.net = reference_net(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self(1)  # warm-up, not reported

    def __call__(self, epochs: int = 2) -> float:
        """Median seconds of ``epochs`` reference epochs."""
        times = []
        for _ in range(epochs):
            tasks = self.problem.tasks("train", range(self.epoch, self.epoch + 1), self.device)
            self.epoch += 1
            sync(self.device)
            start = time.perf_counter()
            reference_epoch(self.net, tasks, self.opt)
            sync(self.device)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def cli_epoch_time(
    n1: int, n2: int, threads: int, device: str, repeats: int = 3, reference: ReferenceClock | None = None
) -> dict[str, object]:
    """(a) Marginal seconds per epoch of ``l2l train --problem mnist``: (time(N2) - time(N1)) / (N2 - N1).

    A difference of two process timings is noisy: the pair is run ``repeats`` times and the median marginal
    is reported with all of them. With ``reference``, reference epochs are timed before, between and after
    the pairs, and each pair's speed-up is against the mean of the reference times around it.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    marginals, times, refs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            if reference is not None:
                refs.append(reference())
            out = {}
            for n in (n1, n2):
                command = [sys.executable, "-m", "l2l_helpers", "train", "--problem", "mnist", "--epochs", str(n)]
                command += ["--val-every", "0", "--checkpoint-every", "0", "--quiet", "--device", device]
                command += ["--out", str(Path(tmp) / f"{n}.pt")]
                start = time.perf_counter()
                subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
                out[n] = time.perf_counter() - start
            times.append(out)
            marginals.append((out[n2] - out[n1]) / (n2 - n1))
        if reference is not None:
            refs.append(reference())
    result: dict[str, object] = {"cli_n1": n1, "cli_n2": n2, "cli_runs": times, "cli_marginals_s": marginals}
    result["cli_epoch_s"] = statistics.median(marginals)
    if refs:
        speedups = [(refs[i] + refs[i + 1]) / 2 / m for i, m in enumerate(marginals)]
        result |= {"cli_reference_s": refs, "cli_speedups": speedups, "cli_speedup": statistics.median(speedups)}
    return result


# ----------------------------------------------------------------------------- (b) inference step


def lstm_step_macs(n_coords: int, config: l2l.OptimizerConfig) -> int:
    """Multiply-adds of one coordinatewise LSTM step (gates and output layer)."""
    hidden, total, inp = config.hidden_size, 0, config.input_size
    for _ in range(config.num_layers):
        total += 4 * hidden * (inp + hidden + 1)  # gates: [W_ih, W_hh, b] @ [x, h, 1]
        inp = hidden
    return n_coords * (total + hidden)


def lstm_epoch_macs(n_coords: int, config: l2l.OptimizerConfig, steps: int = EPOCH_STEPS) -> int:
    """Multiply-adds of a meta-training epoch's LSTM work: each step's forward, then its backward, which
    takes the gradients of every layer's inputs but the first's (the preprocessed gradient is a constant)
    and of the weights."""
    hidden, inp, backward = config.hidden_size, config.input_size, 0
    for layer in range(config.num_layers):
        k = (0 if layer == 0 else inp) + hidden  # inputs whose gradient is needed
        backward += 4 * hidden * k + 4 * hidden * (inp + hidden + 1)  # input and weight gradients
        inp = hidden
    return steps * (lstm_step_macs(n_coords, config) + n_coords * (backward + 2 * hidden))  # + the output layer's


def native_step_bytes(n_coords: int, config: l2l.OptimizerConfig) -> int:
    """Bytes the native step moves to and from memory per meta-training step, forward and backward (float32).

    Forward: reads the state (L, 2, N, H), writes the new state and the gates i, f, g, o of every layer
    (L, 4H per coordinate) for the backward. Backward: reads the state, the new state's h (for the weight
    gradients), the gates and the gradient of the new state, writes the gradient of the state. The caches
    (a few MB) cannot hold a 20-step unroll's tensors, so all of it goes to memory and back.
    """
    state = config.num_layers * 2 * n_coords * config.hidden_size * 4
    gates = config.num_layers * 4 * config.hidden_size * n_coords * 4
    return (state + state + gates) + (state + state // 2 + gates + state + state)


def copy_bandwidth(device: torch.device, megabytes: int = 200, repeats: int = 5) -> float:
    """Bytes per second (read plus write) of a large tensor copy: what the memory delivers to a simple stream."""
    a = torch.randn(megabytes * 2**20 // 4, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        b.copy_(a)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * a.numel() * 4 / min(times)


def epoch_work(device: torch.device, gemm_macs_per_s: float) -> dict[str, float]:
    """(a) The size of an MNIST epoch's LSTM work: its multiply-adds, and the time they take at
    ``gemm_macs_per_s`` (:func:`gemm_rate`); the native step's memory traffic, and its time at the bandwidth
    of a plain copy (the traffic's floor: the caches cannot hold an unroll)."""
    n, config = l2l.MNISTProblem().dim, l2l.OptimizerConfig()
    macs, rate = lstm_epoch_macs(n, config), gemm_macs_per_s
    traffic, bandwidth = EPOCH_STEPS * native_step_bytes(n, config), copy_bandwidth(device)
    return {
        "epoch_lstm_macs": macs,
        "epoch_macs_at_gemm_rate_s": macs / rate,
        "epoch_native_bytes": traffic,
        "copy_bytes_per_s": bandwidth,
        "epoch_traffic_at_copy_rate_s": traffic / bandwidth,
    }


def gemm_rate(n: int, device: torch.device, repeats: int = 20) -> float:
    """Multiply-adds per second of the LSTM's own matrix product shape (N, 41) @ (41, 80) here."""
    a, b = torch.randn(n, 41, device=device), torch.randn(41, 80, device=device)
    a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return n * 41 * 80 * repeats / (time.perf_counter() - start)


def bench_step(repeats: int, device: torch.device, gemm_macs_per_s: float) -> dict[str, float]:
    """(b) Seconds per optimizer step (and per whole training step) of the MNIST MLP: Adam vs the LSTM, interleaved."""
    data = l2l.load_mnist(verbose=False)
    x, y = data.train_images[:128].to(device), data.train_labels[:128].to(device)
    runs = {}
    for name in ("Adam", "LSTM"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 20), nn.Sigmoid(), nn.Linear(20, 10)).to(device)
        if name == "Adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        else:
            opt = l2l.LearnedOptimizer(model.parameters(), l2l.CoordinatewiseLSTM().to(device))
        runs[name] = (model, opt)
    loss_fn = nn.CrossEntropyLoss()
    step: dict[str, list[float]] = {"Adam": [], "LSTM": []}
    full: dict[str, list[float]] = {"Adam": [], "LSTM": []}
    for r in range(repeats + 3):
        for name, (model, opt) in runs.items():
            sync(device)
            t0 = time.perf_counter()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            sync(device)
            t1 = time.perf_counter()
            opt.step()
            sync(device)
            t2 = time.perf_counter()
            if r >= 3:
                step[name].append(t2 - t1)
                full[name].append(t2 - t0)
    out = {f"{k}_step_s": statistics.median(v) for k, v in step.items()}
    out |= {f"{k}_full_s": statistics.median(v) for k, v in full.items()}
    n = l2l.MNISTProblem().dim
    macs, rate = lstm_step_macs(n, l2l.OptimizerConfig()), gemm_macs_per_s
    return {**out, "lstm_step_macs": macs, "gemm_macs_per_s": rate, "lstm_floor_s": macs / rate}


# ----------------------------------------------------------------------------- (c) time to quality


def time_to_quality(budget_min: float, every: int, n_tasks: int, device: torch.device) -> dict[str, object]:
    """(c) Meta-train with the shipped MNIST recipe; every ``every`` epochs compare with tuned Adam (held-out tasks)."""
    problem = l2l.MNISTProblem(init="normal")
    eval_start = time.perf_counter()
    adam_lr = l2l.tune_learning_rate("adam", problem, n_tasks=8, steps=100, device=device).best_lr
    adam = l2l.evaluate(l2l.make_baseline("adam", adam_lr), problem, n_tasks, 100, "test", device)
    eval_s = time.perf_counter() - eval_start
    torch.manual_seed(0)
    net = l2l.CoordinatewiseLSTM().to(device)
    # the recipe of `make pretrained` (mnist): w_t linear, meta learning rate 0.003
    config = l2l.MetaTrainConfig(epochs=10**6, lr=3e-3, weights="linear", val_every=0)
    meta_opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    train_s, history, epoch = 0.0, [], 0
    result: dict[str, object] = {"adam_lr": adam_lr, "adam_mean_final": adam.mean_final, "eval_tasks": n_tasks}
    while train_s + eval_s < budget_min * 60:
        start = time.perf_counter()
        for _ in range(every):
            tasks = problem.tasks("train", training_indices(config, epoch), device)
            unroll_trajectory(net, tasks, config, meta_opt)
            epoch += 1
        train_s += time.perf_counter() - start
        start = time.perf_counter()
        lstm = l2l.evaluate(l2l.LearnedRule(net), problem, n_tasks, 100, "test", device)
        eval_s += time.perf_counter() - start
        history.append({"epoch": epoch, "train_s": train_s, "lstm_mean_final": lstm.mean_final})
        print(f"  epoch {epoch}: LSTM {lstm.mean_final:.4f} vs Adam {adam.mean_final:.4f} ({train_s:.0f} s training)")
        if lstm.mean_final < adam.mean_final:
            break
    beaten = bool(history) and history[-1]["lstm_mean_final"] < adam.mean_final
    return {
        **result,
        "beaten": beaten,
        "epochs": epoch,
        "train_s": train_s,
        "total_s": train_s + eval_s,
        "history": history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per trainer in (a)")
    parser.add_argument("--cli", type=int, nargs=2, default=[2, 8], metavar=("N1", "N2"), help="0 0 skips the CLI")
    parser.add_argument("--repeats", type=int, default=30, help="timed optimizer steps in (b)")
    parser.add_argument("--cli-repeats", type=int, default=3, help="(a) pairs of CLI runs; the median marginal")
    parser.add_argument("--quality", action="store_true", help="also run (c), time to beat tuned Adam")
    parser.add_argument("--budget-min", type=float, default=10.0, help="(c) gives up after this many minutes")
    parser.add_argument("--every", type=int, default=10, help="(c) epochs between evaluations")
    parser.add_argument("--eval-tasks", type=int, default=10, help="(c) held-out tasks per evaluation")
    parser.add_argument("--march", choices=list(native.TARGETS), help="the native step's build (L2L_NATIVE_MARCH)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speed.json")
    args = parser.parse_args()
    if args.march:
        os.environ["L2L_NATIVE_MARCH"] = args.march  # here and in the CLI runs
    torch.set_num_threads(args.threads)
    device = l2l.resolve_device(args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    results: dict[str, object] = {"device": str(device), "threads": args.threads, "load_before": load}
    results["versions"] = l2l.runtime.versions()
    print(f"device {device}, {args.threads} threads, load average {load:.2f}; MNIST MLP 784-20-10")
    results |= cpu_header(device)
    epochs = bench_epochs(args.epochs, device)
    results |= {f"epoch_{k}_s": v for k, v in epochs.items()}
    print(f"{'(a) seconds per meta-training epoch':<58}{'seconds':>9}{'speed-up':>10}")
    labels = {"reference": "reference (nn.LSTMCell, plain autograd)", "cells": "trainer, nn.LSTMCell path"}
    for name, label in labels.items():
        print(f"    {label:<54}{epochs[name]:>9.3f}{epochs['reference'] / epochs[name]:>9.2f}x")
    labels = {"fused": "trainer, Python fused step", "native": "trainer, native (C++) step"}
    for name, label in labels.items():
        if name in epochs:
            label += ", the default here" if name == results.get("default_step") else ""
            print(f"    {label:<54}{epochs[name]:>9.3f}{epochs['reference'] / epochs[name]:>9.2f}x")
    if args.cli[1] > args.cli[0]:
        clock = ReferenceClock(device)
        cli = cli_epoch_time(args.cli[0], args.cli[1], args.threads, str(device), args.cli_repeats, clock)
        results |= cli
        label = f"l2l train, marginal ({args.cli[0]} -> {args.cli[1]} epochs, median of {args.cli_repeats})"
        print(f"    {label:<54}{cli['cli_epoch_s']:>9.3f}{cli['cli_speedup']:>9.2f}x")
        pairs = zip(cli["cli_marginals_s"], cli["cli_speedups"], strict=True)
        pairs = ", ".join(f"{m:.3f} s ({x:.2f}x)" for m, x in pairs)
        refs = ", ".join(f"{r:.3f}" for r in cli["cli_reference_s"])
        print(f"      each pair against the reference timed around it: {pairs}; reference epochs {refs} s")
    gemm = gemm_rate(l2l.MNISTProblem().dim, device)  # (a)'s work line and (b)'s floor share it
    work = epoch_work(device, gemm)
    results |= work
    macs, traffic = work["epoch_lstm_macs"] / 1e9, work["epoch_native_bytes"] / 1e9
    rate, bandwidth = gemm / 1e9, work["copy_bytes_per_s"] / 1e9
    label = f"LSTM: {macs:.1f} G multiply-adds, at PyTorch's {rate:.0f} G/s"
    print(f"    {label:<54}{work['epoch_macs_at_gemm_rate_s']:>9.3f}")
    label = f"native step: {traffic:.1f} GB to memory and back, at {bandwidth:.0f} GB/s"
    print(f"    {label:<54}{work['epoch_traffic_at_copy_rate_s']:>9.3f}")
    label = "3x the reference means at most"
    print(f"    {label:<54}{epochs['reference'] / 3:>9.3f}")
    step = bench_step(args.repeats, device, gemm)
    results |= step
    print(f"{'(b) one optimizee step of the MLP':<58}{'seconds':>9}")
    print(f"    {'torch.optim.Adam.step':<54}{step['Adam_step_s']:>9.5f}")
    print(f"    {'LearnedOptimizer.step (2 x 20 LSTM, no graph)':<54}{step['LSTM_step_s']:>9.5f}")
    macs, rate = step["lstm_step_macs"] / 1e6, step["gemm_macs_per_s"] / 1e9
    floor = f"arithmetic floor: {macs:.0f} M multiply-adds at {rate:.0f} G/s"
    print(f"    {floor:<54}{step['lstm_floor_s']:>9.5f}")
    print(f"    {'forward + backward + step: Adam':<54}{step['Adam_full_s']:>9.5f}")
    print(f"    {'forward + backward + step: LearnedOptimizer':<54}{step['LSTM_full_s']:>9.5f}")
    if args.quality:
        print(f"(c) time to beat tuned Adam on held-out MNIST tasks (budget {args.budget_min:g} min)")
        quality = time_to_quality(args.budget_min, args.every, args.eval_tasks, device)
        results["quality"] = quality
        verdict = f"after {quality['epochs']} epochs" if quality["beaten"] else "not within the budget"
        print(f"    beaten {verdict}: {quality['train_s']:.0f} s training, {quality['total_s']:.0f} s with evaluations")
    results["load_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
