"""Neural art's optimizee step: the package's Gram matrices against the plain formula, side by side (a script).

One image-step is what every evaluation of notebook 09 repeats: the style-transfer loss of a batch of images and its
gradient with respect to the pixels (forward and backward through the random-feature network, three Gram matrices, the
content and total-variation terms). Two ways of computing the Gram matrices, timed interleaved round by round:

- plain: ``flat @ flat.transpose(1, 2) / n`` on the maps reshaped to (B, C, HW), autograd's backward (a copy of the
  channels-last maps to that layout, two products and a feature-sized add in mixed layouts);
- package: :func:`l2l_helpers.optimizees.neural_art.gram` (the maps read as (B, HW, C) without a copy, one product in
  the backward).

Both give the same losses and gradients (printed: the largest relative difference). Usage:
``python benchmarks/bench_neural_art.py [--sizes 64 128] [--images 8] [--rounds 3] [--repeats 5] [--threads 2]
[--no-reference]``.
CPU timings are noisy: read the ratio of the medians. Never run it beside another torch job on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import l2l_helpers as l2l
from l2l_helpers.kernels.reference import ReferenceClock
from l2l_helpers.optimizees import neural_art


def plain_gram(feat: torch.Tensor) -> torch.Tensor:
    """The textbook formula, as the package computed it before 2026-12-03."""
    b, c, h, w = feat.shape
    flat = feat.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def image_step(tasks: l2l.TaskBatch, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss (B,) and its gradient with respect to the pixels (B, dim): one optimizee step's work."""
    theta = theta.clone().requires_grad_(True)
    loss = tasks.loss(theta, 0)
    (grad,) = torch.autograd.grad(loss.sum(), theta)
    return loss.detach(), grad


def timed(gram: Callable[[torch.Tensor], torch.Tensor], tasks: l2l.TaskBatch, theta: torch.Tensor, repeats: int):
    """Milliseconds per image-step with ``gram`` in place, and the last step's loss and gradient."""
    neural_art.gram = gram  # the loss looks the function up in its module at every call
    image_step(tasks, theta)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        loss, grad = image_step(tasks, theta)
    return (time.perf_counter() - start) / repeats / theta.shape[0] * 1000, loss, grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true", help="skip timing the reference epoch (tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    package = neural_art.gram
    if not args.no_reference:
        reference_s = ReferenceClock(torch.device("cpu"))()
        print(f"{args.threads} threads; plain reference epoch {reference_s:.2f} s in this run")
    print("| size | plain Gram (ms per image-step) | package (ms per image-step) | speed-up | largest difference |")
    print("|---|---|---|---|---|")
    try:
        for size in args.sizes:
            problem = l2l.NeuralArtProblem(size=size)
            tasks = problem.tasks("test", range(args.images), "cpu")
            theta = tasks.init_theta()
            times: dict[str, list[float]] = {"plain": [], "package": []}
            out = {}
            for _ in range(args.rounds):
                for name, gram in (("plain", plain_gram), ("package", package)):
                    ms, loss, grad = timed(gram, tasks, theta, args.repeats)
                    times[name].append(ms)
                    out[name] = (loss, grad)
            (l0, g0), (l1, g1) = out["plain"], out["package"]
            diff = max(float(((l0 - l1).abs() / l0.abs()).max()), float((g0 - g1).abs().max() / g0.abs().max()))
            plain, ours = statistics.median(times["plain"]), statistics.median(times["package"])
            print(f"| {size}x{size} | {plain:.2f} | {ours:.2f} | {plain / ours:.2f}x | {diff:.1e} |")
    finally:
        neural_art.gram = package


if __name__ == "__main__":
    main()
