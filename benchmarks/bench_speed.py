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
c. time to quality (``--quality``): meta-train with the shipped MNIST recipe until the LSTM beats every tuned
   baseline (SGD, NAG, RMSprop, Adam) on held-out networks after 100 steps, by paired 95% intervals, or
   ``--budget-min`` runs out; the training time also in reference epochs;
d. one baseline's whole learning-rate grid search on the same MNIST task (the default grid of 11 rates, 8
   training tasks, 100 steps, every baseline): the batched evaluator (one pass per grid,
   ``l2l.tune_learning_rate``) against running the rates one at a time (``l2l.evaluate`` per rate), timed
   interleaved, with the reference epoch timed beside them;
e. evaluation's LSTM step on the coordinates of ``--eval-networks`` MNIST networks at once (no graph, as
   ``l2l.evaluate`` runs it): the new state in a fresh tensor (``net(grad, state)``) against written over the old
   one (``in_place=True``, what evaluation's loop does), interleaved, with the same update and state both ways.

Usage: ``python benchmarks/bench_speed.py [--threads 2] [--epochs 4] [--cli 2 8] [--cli-repeats 3]
[--march native|haswell] [--quality --budget-min 10] [--grid-repeats 2] [--eval-repeats 10]``.
``--march haswell`` times the 8-lane AVX2 build of the native step (what a CPU without AVX-512 gets) on any x86
CPU with AVX2, in this process and the CLI runs.
The header says the CPU, its vector width and the step the auto-selection picked (what users get by default).
Prints a table and writes ``benchmarks/results/speed.json``. CPU timings are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from reference import EPOCH_STEPS, ReferenceClock, reference_epoch, reference_net, sync
from torch import nn

import l2l_helpers as l2l
from l2l_helpers import kernels
from l2l_helpers.evaluation.step_cost import lstm_step_macs
from l2l_helpers.kernels import native
from l2l_helpers.meta.config import training_indices
from l2l_helpers.meta.meta_training import unroll_trajectory
from l2l_helpers.runtime import flushed_denormals

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- the plain reference


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
    """(c) Meta-train with the shipped MNIST recipe; every ``every`` epochs run the LSTM and the four baselines (SGD,
    NAG, RMSprop, Adam, learning rates tuned on training networks) on the same ``n_tasks`` held-out networks for 100
    steps; stop when the LSTM beats *every* one of them (``l2l.lower_than``: paired 95% intervals all below 0) or
    the budget is spent. Training time is also given in reference epochs timed in this run (before and after)."""
    problem = l2l.MNISTProblem(init="normal")
    clock = ReferenceClock(device)
    references = [clock(2)]
    eval_start = time.perf_counter()
    tuned = l2l.tune_baselines(problem, n_tasks=8, steps=100, device=device, progress=False)
    eval_s = time.perf_counter() - eval_start
    torch.manual_seed(0)
    net = l2l.CoordinatewiseLSTM().to(device)
    recipe = l2l.recipe_of("mnist").training  # the recipe of `make pretrained` (mnist), run without an end
    config = dataclasses.replace(recipe, epochs=10**6, val_every=0)
    meta_opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    train_s, history, epoch, verdict = 0.0, [], 0, None
    lrs = {name: t.best_lr for name, t in tuned.items()}
    start = time.perf_counter()  # the baselines' curves do not change: run once, the LSTM joins them on the same tasks
    baselines = l2l.held_out_comparison(problem, {}, tuned, n_tasks, 100, device, progress=False)
    eval_s += time.perf_counter() - start
    while train_s + eval_s < budget_min * 60:
        start = time.perf_counter()
        with flushed_denormals():
            for _ in range(every):
                tasks = problem.tasks("train", training_indices(config, epoch), device)
                unroll_trajectory(net, tasks, config, meta_opt)
                epoch += 1
        train_s += time.perf_counter() - start
        start = time.perf_counter()
        results = {"LSTM": l2l.evaluate(l2l.LearnedRule(net), problem, n_tasks, 100, "dev", device), **baselines}
        verdict = l2l.lower_than(results, "LSTM", list(tuned))
        eval_s += time.perf_counter() - start
        means = {name: r.mean_final for name, r in results.items()}
        history.append({"epoch": epoch, "train_s": train_s, "mean_final": means, "verdict": verdict["verdict"]})
        best = min(lrs, key=lambda name: means[name])
        print(
            f"  epoch {epoch}: LSTM {means['LSTM']:.4f}, best baseline {best} {means[best]:.4f}: "
            f"{verdict['verdict']} ({train_s:.0f} s training)"
        )
        if verdict["verdict"] == "reproduced":
            break
    references.append(clock(2))
    reference_s = statistics.median(references)
    return {
        "baseline_lrs": lrs,
        "eval_tasks": n_tasks,
        "beaten": bool(history) and history[-1]["verdict"] == "reproduced",
        "epochs": epoch,
        "train_s": train_s,
        "total_s": train_s + eval_s,
        "reference_epoch_s": reference_s,
        "train_reference_epochs": train_s / reference_s,
        "history": history,
    }


def grid_search_times(repeats: int, device: torch.device) -> dict[str, object]:
    """(d) Seconds of each baseline's grid search on MNIST, batched vs one rate at a time, interleaved; the
    median of ``repeats`` of each, with the reference epoch timed after each round."""
    problem, grid = l2l.MNISTProblem(), list(l2l.DEFAULT_LR_GRID)
    clock = ReferenceClock(device)
    times: dict[str, dict[str, list[float]]] = {}
    references, agree = [], True
    for _ in range(repeats):
        for name in l2l.BASELINE_NAMES:
            row = times.setdefault(name, {"batched": [], "one_at_a_time": []})
            sync(device)
            start = time.perf_counter()
            tuned = l2l.tune_learning_rate(name, problem, grid, n_tasks=8, steps=100, device=device, extend=0)
            sync(device)
            row["batched"].append(time.perf_counter() - start)
            start = time.perf_counter()
            scores = {
                lr: l2l.evaluate(l2l.make_baseline(name, lr), problem, 8, 100, "train", device).mean_final
                for lr in grid
            }
            sync(device)
            row["one_at_a_time"].append(time.perf_counter() - start)
            finite = {lr: v if math.isfinite(v) else math.inf for lr, v in scores.items()}
            agree &= min(finite, key=finite.__getitem__) == tuned.best_lr
        references.append(clock(1))
    medians = {name: {k: statistics.median(v) for k, v in row.items()} for name, row in times.items()}
    return {"grid_search_s": medians, "grid_reference_s": statistics.median(references), "grid_same_best": agree}


def eval_state_times(repeats: int, networks: int, device: torch.device) -> dict[str, object]:
    """(e) Seconds of one LSTM step on ``networks`` MNIST networks' coordinates without a graph, the new state in a
    fresh tensor vs written over the old one, interleaved; medians of ``repeats`` each, and whether both agree."""
    torch.manual_seed(0)
    net = l2l.CoordinatewiseLSTM().to(device).eval()
    n = networks * l2l.MNISTProblem().dim
    grad = torch.randn(n, device=device) * 10.0 ** torch.randint(-6, 0, (n,), device=device).float()
    state = torch.randn(net.config.num_layers, 2, n, net.config.hidden_size, device=device)
    times: dict[str, list[float]] = {"fresh": [], "in_place": []}
    with torch.no_grad():
        fresh_update, fresh_state = net(grad, state)
        spare = state.clone()
        update, written = net(grad, spare, in_place=True)
        same = bool(torch.equal(update, fresh_update) and torch.equal(written, fresh_state))
        del fresh_update, fresh_state, update, written
        for _ in range(repeats):
            for name in times:
                spare.copy_(state)  # both time a step from the same state
                sync(device)
                start = time.perf_counter()
                net(grad, spare, in_place=name == "in_place")
                sync(device)
                times[name].append(time.perf_counter() - start)
    return {
        "eval_networks": networks,
        "eval_coordinates": n,
        "eval_step_s": {name: statistics.median(t) for name, t in times.items()},
        "eval_step_same": same,
        "eval_step_backend": kernels.backend_for(torch.zeros(1, 2, device=device), state[:, :, :1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per trainer in (a)")
    parser.add_argument("--cli", type=int, nargs=2, default=[2, 8], metavar=("N1", "N2"), help="0 0 skips the CLI")
    parser.add_argument("--repeats", type=int, default=30, help="timed optimizer steps in (b)")
    parser.add_argument("--cli-repeats", type=int, default=3, help="(a) pairs of CLI runs; the median marginal")
    parser.add_argument("--quality", action="store_true", help="also run (c), time to beat every tuned baseline")
    parser.add_argument("--budget-min", type=float, default=10.0, help="(c) gives up after this many minutes")
    parser.add_argument("--every", type=int, default=25, help="(c) epochs between evaluations")
    parser.add_argument("--eval-tasks", type=int, default=20, help="(c) held-out networks per evaluation")
    parser.add_argument("--march", choices=list(native.TARGETS), help="the native step's build (L2L_NATIVE_MARCH)")
    parser.add_argument("--grid-repeats", type=int, default=2, help="(d) rounds of grid searches; 0 skips (d)")
    parser.add_argument("--eval-repeats", type=int, default=10, help="(e) timed steps each way; 0 skips (e)")
    parser.add_argument("--eval-networks", type=int, default=40, help="(e) MNIST networks' coordinates per step")
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
    if args.grid_repeats > 0:
        grids = grid_search_times(args.grid_repeats, device)
        results |= grids
        ref = grids["grid_reference_s"]
        print(f"{'(d) grid search on MNIST, 11 rates x 8 tasks x 100 steps':<58}{'batched':>9}{'one by one':>11}")
        note = f"(reference epoch {ref:.2f} s in the same run)"
        print(f"    {note:<54}{'seconds':>9}{'seconds':>11}{'speed-up':>10}")
        for name, t in grids["grid_search_s"].items():
            batched, single = t["batched"], t["one_at_a_time"]
            print(f"    {name:<54}{batched:>9.2f}{single:>11.2f}{single / batched:>9.2f}x")
        print(f"    same best rate both ways: {grids['grid_same_best']}")
    if args.eval_repeats > 0:
        ev = eval_state_times(args.eval_repeats, args.eval_networks, device)
        results |= ev
        head = f"(e) evaluation's LSTM step, {ev['eval_networks']} MNIST networks ({ev['eval_coordinates']:,} coords)"
        print(f"{head:<58}{'seconds':>9}{'speed-up':>10}")
        fresh, in_place = ev["eval_step_s"]["fresh"], ev["eval_step_s"]["in_place"]
        print(f"    {'new state in a fresh tensor, ' + ev['eval_step_backend'] + ' step':<54}{fresh:>9.4f}")
        print(f"    {'new state written over the old one (evaluation)':<54}{in_place:>9.4f}{fresh / in_place:>9.2f}x")
        print(f"    same update and state both ways: {ev['eval_step_same']}")
    if args.quality:
        print(f"(c) time to beat every tuned baseline on held-out MNIST networks (budget {args.budget_min:g} min)")
        quality = time_to_quality(args.budget_min, args.every, args.eval_tasks, device)
        results["quality"] = quality
        verdict = f"after {quality['epochs']} epochs" if quality["beaten"] else "not within the budget"
        print(
            f"    beaten {verdict}: {quality['train_s']:.0f} s training = {quality['train_reference_epochs']:.0f} "
            f"reference epochs of {quality['reference_epoch_s']:.2f} s; {quality['total_s']:.0f} s with evaluations"
        )
    results["load_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
