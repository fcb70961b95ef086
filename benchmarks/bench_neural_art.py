"""Neural art's optimizee step, three ways side by side: the plain Gram formula and the package's under autograd, and
the package's hand-written image gradient (a script).

One image-step is what every evaluation of notebook 09 repeats: the style-transfer loss of a batch of images and its
gradient with respect to the pixels (forward and backward through the random-feature network, three Gram matrices, the
content and total-variation terms). Timed interleaved round by round:

- plain Gram: ``flat @ flat.transpose(1, 2) / n`` on the maps reshaped to (B, C, HW), autograd's backward (a copy of
  the channels-last maps to that layout, two products and a feature-sized add in mixed layouts);
- package Gram: :func:`l2l_helpers.optimizees.neural_art.gram` (the maps read as (B, HW, C) without a copy, one product
  in the backward), still autograd over the whole loss (inside ``kernels.plain.plain_only()``);
- hand-written: :mod:`l2l_helpers.kernels.style_loss`, what the package runs (each feature map's gradient built in
  one buffer).

All give the same losses and gradients (printed: the largest relative difference from the first). The process keeps
freed memory for reuse as notebooks do (``l2l.setup``); ``--malloc-defaults`` times glibc's defaults instead. Usage:
``python benchmarks/bench_neural_art.py [--sizes 64 128] [--images 8] [--rounds 3] [--repeats 5] [--threads 2]
[--malloc-defaults] [--no-reference]``.
CPU timings are noisy: read the ratio of the medians. Never run it beside another torch job on a 2-core machine.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from reference import ReferenceClock

import l2l_helpers as l2l
from l2l_helpers import runtime
from l2l_helpers.kernels.plain import plain_only
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


def timed(
    gram: Callable[[torch.Tensor], torch.Tensor],
    autograd: bool,
    tasks: l2l.TaskBatch,
    theta: torch.Tensor,
    repeats: int,
):
    """Milliseconds per image-step with ``gram`` in place, by autograd or by the hand-written gradient, and the last
    step's loss and gradient."""
    neural_art.gram = gram  # the loss looks the function up in its module at every call
    with plain_only() if autograd else contextlib.nullcontext():
        image_step(tasks, theta)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            loss, grad = image_step(tasks, theta)
    return (time.perf_counter() - start) / repeats / theta.shape[0] * 1000, loss, grad


#: The three ways: (Gram function or None for the package's, autograd over the whole loss?).
WAYS = {"plain Gram": (plain_gram, True), "package Gram": (None, True), "hand-written": (None, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-reference", action="store_true", help="skip timing the reference epoch (tests)")
    parser.add_argument("--malloc-defaults", action="store_true", help="do not keep freed memory (l2l.setup does)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kept = False if args.malloc_defaults else runtime.keep_freed_memory()
    package = neural_art.gram
    memory = "freed memory kept for reuse" if kept else "glibc's malloc defaults"
    if not args.no_reference:
        reference_s = ReferenceClock(torch.device("cpu"))()
        print(f"{args.threads} threads, {memory}; plain reference epoch {reference_s:.2f} s in this run")
    else:
        print(f"{args.threads} threads, {memory}")
    print("| size | " + " | ".join(f"{w} (ms per image-step)" for w in WAYS) + " | speed-ups | largest difference |")
    print("|---|" + "---|" * (len(WAYS) + 2))
    try:
        for size in args.sizes:
            problem = l2l.NeuralArtProblem(size=size)
            tasks = problem.tasks("dev", range(args.images), "cpu")
            theta = tasks.init_theta()
            times: dict[str, list[float]] = {w: [] for w in WAYS}
            out = {}
            for _ in range(args.rounds):
                for way, (gram, autograd) in WAYS.items():
                    ms, loss, grad = timed(gram or package, autograd, tasks, theta, args.repeats)
                    times[way].append(ms)
                    out[way] = (loss, grad)
            l0, g0 = out["plain Gram"]
            diff = max(
                max(float(((l0 - loss).abs() / l0.abs()).max()), float((g0 - g).abs().max() / g0.abs().max()))
                for loss, g in out.values()
            )
            ms = {w: statistics.median(t) for w, t in times.items()}
            first = ms["plain Gram"]
            ups = ", ".join(f"{first / ms[w]:.2f}x" for w in list(WAYS)[1:])
            print(f"| {size}x{size} | " + " | ".join(f"{ms[w]:.2f}" for w in WAYS) + f" | {ups} | {diff:.1e} |")
    finally:
        neural_art.gram = package


if __name__ == "__main__":
    main()
