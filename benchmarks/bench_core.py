"""Speed of the core pieces, measured side by side in one run (a script, not a test).

1. seconds per meta-training epoch on the MNIST task (MLP 784-20-10, T = 100, unroll 20, one task);
2. one optimizee step of the same MLP as an ``nn.Module``: ``LearnedOptimizer.step`` vs ``torch.optim.Adam.step``,
   alone and with the forward/backward pass around it.

Usage: ``python benchmarks/bench_core.py [--epochs 3] [--repeats 50] [--threads 2]``. Prints a table and
writes ``benchmarks/results/core.json``. CPU timings are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

import l2l_helpers as l2l
from l2l_helpers.meta_training import unroll_trajectory


def time_meta_epoch(epochs: int, device: torch.device) -> float:
    """Mean seconds per meta-training epoch on the paper's MNIST task, after one warm-up epoch."""
    problem = l2l.MNISTProblem()
    net = l2l.CoordinatewiseLSTM().to(device)
    config = l2l.MetaTrainConfig(epochs=epochs, val_every=0)
    meta_opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    unroll_trajectory(net, problem.tasks("train", range(1), device), config, meta_opt)  # warm-up
    start = time.perf_counter()
    for epoch in range(epochs):
        unroll_trajectory(net, problem.tasks("train", range(epoch + 1, epoch + 2), device), config, meta_opt)
    return (time.perf_counter() - start) / epochs


def time_optimizee_step(repeats: int, device: torch.device) -> dict[str, float]:
    """Seconds per step of the MNIST MLP: optimizer step alone, and forward + backward + step."""
    data = l2l.load_mnist(verbose=False)
    x, y = data.train_images[:128].to(device), data.train_labels[:128].to(device)
    out = {}
    for name in ("Adam", "LSTM"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 20), nn.Sigmoid(), nn.Linear(20, 10)).to(device)
        if name == "Adam":
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        else:
            opt = l2l.LearnedOptimizer(model.parameters(), l2l.CoordinatewiseLSTM().to(device))
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(3):  # warm-up
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        step_time = full_time = 0.0
        for _ in range(repeats):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            t1 = time.perf_counter()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            step_time += t2 - t1
            full_time += t2 - t0
        out[f"{name}_step"] = step_time / repeats
        out[f"{name}_full"] = full_time / repeats
    return out


def lstm_step_flops(n_coords: int, config: l2l.OptimizerConfig) -> int:
    """Multiply-adds of one coordinatewise LSTM step: the arithmetic floor of the learned optimizer."""
    h, total, inp = config.hidden_size, 0, config.input_size
    for _ in range(config.num_layers):
        total += 4 * h * (inp + h)  # gates: W_ih x + W_hh h
        inp = h
    return n_coords * (total + h)  # + output layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "core.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = l2l.resolve_device(args.device)
    epoch = time_meta_epoch(args.epochs, device)
    steps = time_optimizee_step(args.repeats, device)
    n = l2l.MNISTProblem().dim
    macs = lstm_step_flops(n, l2l.OptimizerConfig())
    results = {"device": str(device), "threads": args.threads, "meta_epoch_s": epoch, **steps, "lstm_step_macs": macs}
    print(f"device {device}, {args.threads} threads, MNIST MLP 784-20-10 ({n} parameters)")
    print(f"{'what':<52}{'seconds':>12}")
    print(f"{'meta-training epoch (T=100, unroll 20, 1 task)':<52}{epoch:>12.3f}")
    print(f"{'optimizer step: torch.optim.Adam':<52}{steps['Adam_step']:>12.5f}")
    print(f"{'optimizer step: LearnedOptimizer (2x20 LSTM)':<52}{steps['LSTM_step']:>12.5f}")
    print(f"{'forward + backward + step: Adam':<52}{steps['Adam_full']:>12.5f}")
    print(f"{'forward + backward + step: LearnedOptimizer':<52}{steps['LSTM_full']:>12.5f}")
    print(
        f"LearnedOptimizer / Adam: step {steps['LSTM_step'] / steps['Adam_step']:.1f}x, "
        f"full step {steps['LSTM_full'] / steps['Adam_full']:.1f}x; "
        f"LSTM arithmetic floor {macs / 1e6:.1f} M multiply-adds per step"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
