"""Meta-training the optimizer network with truncated back-propagation through time (paper, Section 2; notebook 04).

The meta-loss of one trajectory of T steps is L(phi) = sum_{t=1..T} w_t f(theta_t), with
theta_{t+1} = theta_t + g_t and (g_t, h_{t+1}) = m(grad f(theta_t), h_t; phi). The trajectory is cut
into unrolls of ``unroll`` steps; after each unroll phi takes one Adam step on that unroll's part of the
meta-loss, and theta and the LSTM state are carried into the next unroll (detached from the graph).
Every epoch starts new trajectories on freshly sampled training tasks.

The optimizee gradients grad f(theta_t) enter the optimizer as constants: no second derivatives of f
are computed (the dashed edges of the paper's Figure 2), unless ``second_order=True``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from l2l_helpers.evaluation.loops import evaluate
from l2l_helpers.kernels.plain import plain_only
from l2l_helpers.meta.config import MetaTrainConfig, training_indices
from l2l_helpers.meta.training_state import MetaTrainResult, TrainingState
from l2l_helpers.optimizees.base import Problem, TaskBatch
from l2l_helpers.optimizer.coordinatewise_lstm import LearnedRule
from l2l_helpers.optimizer.grouped_lstm import OptimizerNet, route_for
from l2l_helpers.runtime import denormals_flushed


def unroll(
    net: OptimizerNet,
    tasks: TaskBatch,
    theta: torch.Tensor,
    state: torch.Tensor,
    start: int,
    length: int,
    weights: Sequence[float],
    second_order: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Steps ``start .. start + length - 1`` of a trajectory, keeping the graph back to phi.

    ``theta`` (n_tasks, dim) is the starting point (its history, if any, is cut); ``weights[t]`` is
    w_{t+1}. Returns (meta_loss = sum_t w_t mean_tasks f(theta_t) over the unroll, theta, state, mean loss
    per step).

    First-order (the paper's choice), the optimizee's gradients are constants, so the meta-gradient of
    f(theta_{t+1}) with respect to theta_{t+1} is the very gradient that step t + 1 feeds to the LSTM.
    The graph therefore only has to hold the LSTM and the sums theta_{t+1} = theta_t + update_t: the
    optimizee is evaluated once per step without a graph, and ``meta_loss`` carries the value of the
    losses with the gradient of sum_t w_t <grad f(theta_t), theta_t>, which is the same meta-gradient.
    ``second_order=True`` keeps the optimizee in the graph and differentiates through its gradients.
    """
    if second_order:  # twice differentiated: the optimizees' hand-written kernels give way to PyTorch's operators
        with plain_only():
            return _unroll_second_order(net, tasks, theta, state, start, length, weights)
    theta = theta.detach()
    point = theta.requires_grad_(True)
    with torch.enable_grad():
        loss = tasks.loss(point, start)  # f(theta_start)
        (grad,) = torch.autograd.grad(loss.sum(), point)
    value = theta.new_zeros(())
    surrogate = theta.new_zeros(())
    curve = []
    n_tasks = theta.shape[0]
    for t in range(start, start + length):
        update, state = net(grad, state)  # grad is a constant
        theta = theta.detach() + update if t == start else theta + update
        point = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = tasks.loss(point, t + 1)  # f(theta_{t+1})
            (grad,) = torch.autograd.grad(loss.sum(), point)
        loss = loss.detach()
        value = value + weights[t] * loss.mean()
        if weights[t]:
            surrogate = surrogate + (weights[t] / n_tasks) * (grad * theta).sum()
        curve.append(loss.mean())
    meta_loss = value + (surrogate - surrogate.detach())  # the value of the losses, the gradient of the surrogate
    return meta_loss, theta, state, curve


def _unroll_second_order(
    net: OptimizerNet,
    tasks: TaskBatch,
    theta: torch.Tensor,
    state: torch.Tensor,
    start: int,
    length: int,
    weights: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """:func:`unroll` with the optimizee's gradients differentiated too (their second derivatives kept)."""
    if not theta.requires_grad:
        theta = theta.detach().requires_grad_(True)
    loss = tasks.loss(theta, start)  # f(theta_start), shape (B,)
    meta_loss = theta.new_zeros(())
    curve = []
    for t in range(start, start + length):
        (grad,) = torch.autograd.grad(loss.sum(), theta, retain_graph=True, create_graph=True)
        update, state = net(grad, state)
        theta = theta + update
        loss = tasks.loss(theta, t + 1)  # f(theta_{t+1})
        meta_loss = meta_loss + weights[t] * loss.mean()
        curve.append(loss.detach().mean())
    return meta_loss, theta, state, curve


def unroll_trajectory(
    net: OptimizerNet,
    tasks: TaskBatch,
    config: MetaTrainConfig,
    meta_optimizer: torch.optim.Optimizer,
) -> tuple[torch.Tensor, list[str]]:
    """Run one trajectory of T steps on ``tasks``, updating phi after every unroll.

    A meta-step whose meta-loss is not finite, or whose meta-gradient is not finite or larger than
    ``config.skip_grad_norm``, is skipped (phi is left as it was) and the trajectory ends there.
    Returns (mean loss over tasks at t = 1..T, shape (T,), NaN after an abort; why each skip happened).
    """
    weights = config.step_weights()
    theta = tasks.init_theta()  # (B, D)
    state = net.init_state(theta.numel(), device=theta.device, dtype=theta.dtype)
    curve: list[torch.Tensor] = []
    skips: list[str] = []
    for start in range(0, config.steps, config.unroll):
        # Truncation: theta and the LSTM state carry over, their history does not.
        theta = theta.detach().requires_grad_(True)
        length = min(config.unroll, config.steps - start)
        meta_loss, theta, state, part = unroll(
            net, tasks, theta, state.detach(), start, length, weights, config.second_order
        )
        curve.extend(part)
        if not any(weights[start : start + length]):
            continue  # w_t = 0 on this whole unroll: no signal, no step
        meta_optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(meta_loss):
            skips.append(f"non-finite meta-loss on steps {start + 1}-{start + length}")
            break  # theta has diverged: the rest of this trajectory carries no signal
        meta_loss.backward()
        clip = config.grad_clip if config.grad_clip is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        if not torch.isfinite(norm) or norm > config.skip_grad_norm:
            skips.append(f"meta-gradient norm {float(norm):.3g} on steps {start + 1}-{start + length}")
            meta_optimizer.zero_grad(set_to_none=True)
            break
        meta_optimizer.step()
    while len(curve) < config.steps:  # an aborted trajectory
        curve.append(torch.tensor(math.nan))
    return torch.stack([c.cpu() for c in curve]), skips


@denormals_flushed
def meta_train(
    net: OptimizerNet,
    problem: Problem,
    config: MetaTrainConfig | None = None,
    *,
    checkpoint_path: str | Path | None = None,
    resume: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, Any], MetaTrainResult], None] | None = None,
) -> MetaTrainResult:
    """Meta-train ``net`` on ``problem`` in place (paper, Section 2): every epoch, one trajectory of new training
    tasks, phi updated by Adam after every unroll; every ``config.val_every`` epochs a validation on held-out
    ``val`` tasks, whose best weights ``net`` holds at the end.

    What keeps a run safe is :class:`~l2l_helpers.meta.training_state.TrainingState`: with ``checkpoint_path`` the
    state is saved every ``config.checkpoint_every`` epochs, at the end and when interrupted (Ctrl-C, a kernel
    interrupt, SIGINT/SIGTERM in the CLI), after rolling back to the last finished epoch (then
    ``result.interrupted``); ``resume`` continues such a file with the same epoch counter, meta-optimizer and RNG
    state, so an interrupted and resumed run ends with the same weights as an uninterrupted one; meta-steps with a
    non-finite loss or an exploding meta-gradient are skipped and reported (``result.events``).
    ``callback(record, result)`` runs after every epoch (e.g. a live plot).
    """
    from tqdm.auto import tqdm

    config = config or MetaTrainConfig()
    device = next(net.parameters()).device
    route_for(net, problem)  # one LSTM per parameter group: which coordinates are whose
    meta_optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    info = {"problem": problem.describe(), **(metadata or {})}
    run = TrainingState(net, meta_optimizer, config, checkpoint_path, info, progress)
    start = run.resume(resume) if resume is not None else 0
    bar = tqdm(
        range(start, config.epochs), desc="meta-training", disable=not progress, initial=start, total=config.epochs
    )
    try:
        for epoch in bar:
            tasks = problem.tasks("train", training_indices(config, epoch), device)
            curve, skips = unroll_trajectory(net, tasks, config, meta_optimizer)
            run.after_trajectory(epoch, skips)  # skipped meta-steps reported; a broken phi rolled back
            record = {"epoch": epoch + 1, "meta_loss": float(curve.sum()), "final_loss": float(curve[-1])}
            record["skipped"] = len(skips)
            if config.val_every and ((epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs):
                record["val_meta_loss"] = run.validate(
                    evaluate(LearnedRule(net), problem, config.val_tasks, config.steps, "val", device), epoch + 1
                )
            run.result.history.append(record)
            bar.set_postfix(meta_loss=f"{record['meta_loss']:.3g}", best_val=f"{run.result.best_val:.3g}")
            run.end_epoch(epoch + 1)  # the snapshot an interruption rolls back to; a periodic checkpoint
            if callback is not None:
                callback(record, run.result)
    except KeyboardInterrupt:
        return run.interrupted()
    finally:
        bar.close()
    return run.finish()
