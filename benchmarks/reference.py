"""The unit every speed figure is stated in: one meta-training epoch of the paper's optimizer written plainly.

The same work takes 2 s on one machine and 4.5 s on another, so the project states times as ratios to this
*reference epoch* measured in the same run (``benchmarks/bench_speed.py``, ``make run``'s summary): the
paper's MNIST task (MLP 784-20-10, 15,910 coordinates, T = 100, unroll 20, one task), meta-trained by an
``nn.LSTMCell`` stack unrolled with autograd, with none of the package's fast paths.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from torch import nn

from l2l_helpers.optimizees import MNISTProblem, TaskBatch
from l2l_helpers.runtime import flushed_denormals


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


def reference_net(device: torch.device) -> ReferenceOptimizer:
    """The reference optimizer, initialised from seed 0 (the same weights in every run)."""
    torch.manual_seed(0)
    return ReferenceOptimizer().to(device)


def reference_epoch(net: ReferenceOptimizer, tasks: TaskBatch, meta_opt: torch.optim.Optimizer) -> None:
    """One trajectory of T = 100 steps, a meta-step of Adam after every unroll of 20 (first order, w_t = 1),
    with subnormal floats flushed (:func:`~l2l_helpers.runtime.flushed_denormals`), as the package's own
    meta-training runs: its ``nn.LSTMCell`` autograd meets subnormal numbers for some initialisations (measured
    2026-12-02: three random inits took 1.8, 1.8 and 5.3-6.9 s per epoch, all three 1.8 s flushed), and a unit
    that depended on a random draw would not be a property of the machine."""
    with flushed_denormals():
        _reference_epoch(net, tasks, meta_opt)


def _reference_epoch(net: ReferenceOptimizer, tasks: TaskBatch, meta_opt: torch.optim.Optimizer) -> None:
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
    """Wait for the device's queued work (a GPU's), so that a timer reads the work's end."""
    if device.type == "cuda":
        torch.cuda.synchronize()


class ReferenceClock:
    """Times epochs of the plain reference in this process, when asked: between CLI runs, before and after
    ``make run``'s notebooks (a machine's speed drifts, so the unit is measured beside what it measures)."""

    def __init__(self, device: torch.device) -> None:
        self.problem, self.device, self.epoch = MNISTProblem(), device, 100
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


if __name__ == "__main__":
    seconds = ReferenceClock(torch.device("cuda" if torch.cuda.is_available() else "cpu"))(3)
    print(f"{seconds:.2f} s per reference epoch (median of 3, after a warm-up epoch)")
