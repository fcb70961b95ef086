"""Several independent meta-training runs at once: seeds and ablation arms in one batched pass (notebooks 03, 04).

Meta-training on a small optimizee costs PyTorch's per-operation overhead, not arithmetic: 32 quadratics of
10 coordinates are 320 rows for the LSTM, and a step is some fifty small operations whatever the rows. K
independent runs (seeds of one recipe, or the arms of an ablation) can share those operations: their LSTMs'
weights are stacked along a leading dimension of size K and every step is one batched matrix product per
layer for all K (:func:`stacked_step`); their training tasks sit side by side in one task batch.

Nothing else is shared. Run k keeps its own training tasks (its config's ``seed``), its own w_t, its own
Adam on its own parameters, its own skips, validation and best-epoch selection, so :func:`meta_train_stack`
gives each network what :func:`~l2l_helpers.meta.meta_training.meta_train` would give it alone, to float
rounding (``tests/test_stacked_training.py``). It has no checkpoints or resume: it is for runs of minutes
inside a notebook; long runs go through ``meta_train`` (the CLI's ``train``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from l2l_helpers.evaluation.loops import evaluate_rules
from l2l_helpers.meta.config import MetaTrainConfig, training_indices
from l2l_helpers.meta.training_state import MetaTrainResult, TrainingState
from l2l_helpers.optimizees.base import Problem, TaskBatch
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule
from l2l_helpers.optimizer.preprocessing import preprocess
from l2l_helpers.runtime import denormals_flushed

#: Settings every run of a stack must share (they fix the shape of the batched pass and the epoch loop).
SHARED = ("epochs", "steps", "unroll", "tasks_per_epoch", "val_every", "val_tasks")


class StackedWeights:
    """The K networks' parameters as batched tensors, rebuilt from the networks (so gradients reach them).

    ``layers[l]`` is (K, in_l + H + 1, 4H): [W_ih, W_hh, b_ih + b_hh] transposed, the cell input g's columns
    doubled (as in :mod:`~l2l_helpers.kernels.fused`), layer 0's W_ih padded with zero columns to the widest
    input (``log_sign`` reads 2 numbers per coordinate, ``none`` 1);
    ``out_w`` (K, H, 1), ``out_b`` (K, 1, 1), ``scale`` (K, 1): each network's output scale.
    """

    def __init__(self, nets: Sequence[CoordinatewiseLSTM]) -> None:
        self.input_size = max(net.config.input_size for net in nets)
        hidden = nets[0].config.hidden_size
        ref = nets[0].output.weight
        double_g = torch.ones(4 * hidden, dtype=ref.dtype, device=ref.device)
        double_g[2 * hidden : 3 * hidden] = 2.0  # tanh(z) = 2 sigmoid(2 z) - 1: one sigmoid for all four gates
        self.layers = []
        for layer in range(nets[0].config.num_layers):
            rows = []
            for net in nets:
                cell = net.cells[layer]
                w_ih = cell.weight_ih
                if layer == 0 and w_ih.shape[1] < self.input_size:
                    w_ih = F.pad(w_ih, (0, self.input_size - w_ih.shape[1]))
                bias = (cell.bias_ih + cell.bias_hh).unsqueeze(1)
                rows.append(torch.cat([w_ih, cell.weight_hh, bias], dim=1).t())
            self.layers.append(torch.stack(rows) * double_g)
        self.out_w = torch.stack([net.output.weight.t() for net in nets])
        self.out_b = torch.stack([net.output.bias for net in nets]).unsqueeze(1)
        self.scale = torch.tensor([[net.config.output_scale] for net in nets], dtype=ref.dtype, device=ref.device)


def stacked_step(x: torch.Tensor, state: torch.Tensor, w: StackedWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of K coordinatewise LSTMs: x (K, N, in), state (K, layers, 2, N, H) -> update (K, N), new state.

    The arithmetic of ``nn.LSTMCell`` (gates i, f, g, o) and the output layer, with each network's weights.
    """
    k, n, _ = x.shape
    ones = x.new_ones(k, n, 1)
    inp, new = x, []
    for layer, weights in enumerate(w.layers):
        h_prev, c_prev = state[:, layer, 0], state[:, layer, 1]  # (K, N, H) each
        gates = torch.sigmoid(torch.bmm(torch.cat([inp, h_prev, ones], dim=2), weights))  # (K, N, 4H)
        i, f, g, o = gates.chunk(4, dim=2)  # g = sigmoid(2 z_g): tanh(z_g) = 2 g - 1
        c = f * c_prev + i * (2.0 * g - 1.0)
        h = o * torch.tanh(c)
        new.append(torch.stack([h, c], dim=1))  # (K, 2, N, H)
        inp = h
    update = torch.baddbmm(w.out_b, inp, w.out_w).squeeze(2) * w.scale  # (K, N)
    return update, torch.stack(new, dim=1)


def _inputs(nets: Sequence[CoordinatewiseLSTM], grad: torch.Tensor, width: int) -> torch.Tensor:
    """Each network's preprocessed view of its own rows of ``grad`` (K * n, D): (K, n * D, width)."""
    kinds = {(net.config.preprocessing, net.config.p) for net in nets}
    if len(kinds) == 1:  # one preprocessing for all: one call
        kind, p = kinds.pop()
        x = preprocess(grad.reshape(-1), kind, p)
        return x.view(len(nets), -1, x.shape[1])
    parts = []
    for net, rows in zip(nets, grad.chunk(len(nets)), strict=True):
        x = preprocess(rows.reshape(-1), net.config.preprocessing, net.config.p)
        parts.append(F.pad(x, (0, width - x.shape[1])) if x.shape[1] < width else x)
    return torch.stack(parts)


def _unroll(
    nets: Sequence[CoordinatewiseLSTM],
    tasks: TaskBatch,
    theta: torch.Tensor,
    state: torch.Tensor,
    start: int,
    length: int,
    weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """:func:`~l2l_helpers.meta.meta_training.unroll` (first order) for K runs: theta (K * n, D), weights (K, T).

    Returns (meta-losses (K,), theta, state, mean loss per run at each step (K,) each).
    """
    k = len(nets)
    n = theta.shape[0] // k
    stack = StackedWeights(nets)
    theta = theta.detach()
    point = theta.requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(tasks.loss(point, start).sum(), point)
    value = theta.new_zeros(k)
    surrogate = theta.new_zeros(k)
    curve = []
    for t in range(start, start + length):
        update, state = stacked_step(_inputs(nets, grad, stack.input_size), state, stack)
        update = update.reshape(theta.shape)
        theta = theta.detach() + update if t == start else theta + update
        point = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = tasks.loss(point, t + 1)  # f(theta_{t+1}), (K * n,)
            (grad,) = torch.autograd.grad(loss.sum(), point)
        loss = loss.detach().view(k, n).mean(dim=1)
        w = weights[:, t]
        value = value + w * loss
        inner = (grad * theta).reshape(k, -1).sum(dim=1)
        surrogate = surrogate + torch.where(w != 0, (w / n) * inner, torch.zeros_like(inner))
        curve.append(loss)
    return value + (surrogate - surrogate.detach()), theta, state, curve


def _trajectory(
    nets: Sequence[CoordinatewiseLSTM],
    tasks: TaskBatch,
    configs: Sequence[MetaTrainConfig],
    optimizers: Sequence[torch.optim.Optimizer],
) -> tuple[torch.Tensor, list[list[str]]]:
    """:func:`~l2l_helpers.meta.meta_training.unroll_trajectory` for K runs: curves (K, T), each run's skips."""
    k, cfg = len(nets), configs[0]
    weights = torch.tensor([c.step_weights() for c in configs], dtype=torch.float32)
    theta = tasks.init_theta()  # (K * n, D)
    net = nets[0]
    state = net.init_state(theta.numel() // k, device=theta.device, dtype=theta.dtype)
    state = state.unsqueeze(0).repeat(k, 1, 1, 1, 1)  # (K, layers, 2, n * D, H)
    weights = weights.to(device=theta.device, dtype=theta.dtype)
    curve = torch.full((k, cfg.steps), float("nan"))
    active, skips = [True] * k, [[] for _ in range(k)]
    for start in range(0, cfg.steps, cfg.unroll):
        theta = theta.detach()
        length = min(cfg.unroll, cfg.steps - start)
        meta_loss, theta, state, part = _unroll(nets, tasks, theta, state.detach(), start, length, weights)
        part_cpu = torch.stack(part, dim=1).cpu()  # (K, length)
        for r in range(k):
            if active[r]:  # an aborted run's curve stays NaN, as meta_train leaves it
                curve[r, start : start + length] = part_cpu[r]
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        go = []
        for r in range(k):
            if not active[r] or not bool(weights[r, start : start + length].any()):
                continue
            if not torch.isfinite(meta_loss[r]):
                skips[r].append(f"non-finite meta-loss on steps {start + 1}-{start + length}")
                active[r] = False
            else:
                go.append(r)
        if go:
            meta_loss[go].sum().backward()  # runs share no parameters: each gets its own meta-gradient
        for r in go:
            clip = configs[r].grad_clip if configs[r].grad_clip is not None else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(nets[r].parameters(), clip)
            if not torch.isfinite(norm) or norm > configs[r].skip_grad_norm:
                skips[r].append(f"meta-gradient norm {float(norm):.3g} on steps {start + 1}-{start + length}")
                active[r] = False
                continue
            optimizers[r].step()
    return curve, skips


def _check_stack(nets: Sequence[CoordinatewiseLSTM], configs: Sequence[MetaTrainConfig]) -> None:
    if not nets:
        raise ValueError("nets is empty: give at least one optimizer network")
    if len(configs) != len(nets):
        raise ValueError(f"{len(nets)} networks but {len(configs)} configs: give one config per network")
    if len({id(net) for net in nets}) != len(nets):
        raise ValueError("the same network appears twice: each run needs its own CoordinatewiseLSTM")
    if grouped := [i for i, net in enumerate(nets) if not isinstance(net, CoordinatewiseLSTM)]:
        raise ValueError(
            f"networks {grouped} are not single CoordinatewiseLSTMs (e.g. one LSTM per parameter group), which the "
            "stacked step does not compute: meta-train them one at a time with meta_train"
        )
    shape = {(net.config.num_layers, net.config.hidden_size) for net in nets}
    if len(shape) != 1:
        raise ValueError(f"networks differ in (num_layers, hidden_size) {sorted(shape)}: stack only equal shapes")
    if appendix := [i for i, net in enumerate(nets) if net.config.gac_cells or net.config.memory_slots]:
        raise ValueError(
            f"networks {appendix} use the appendix's Global Averaging Cells or NTM memory, which the stacked step does "
            "not compute: meta-train them one at a time with meta_train"
        )
    if len({next(net.parameters()).device for net in nets}) != 1:
        raise ValueError("the networks are on different devices: move them to one")
    for name in SHARED:
        values = {getattr(c, name) for c in configs}
        if len(values) != 1:
            shared = ", ".join(SHARED)
            raise ValueError(f"configs differ in {name} ({sorted(values)}): stacked runs must share {shared}")
    if any(c.second_order for c in configs):
        raise ValueError("second_order=True is not stacked: use meta_train for second-order runs")


@denormals_flushed
def meta_train_stack(
    nets: Sequence[CoordinatewiseLSTM],
    problem: Problem,
    configs: Sequence[MetaTrainConfig],
    *,
    progress: bool = True,
    desc: str = "meta-training",
    callback: Callable[[int, list[dict[str, Any]]], None] | None = None,
) -> list[MetaTrainResult]:
    """Meta-train every network of ``nets`` in place with its own config, K runs as one batched computation.

    Each run is what :func:`~l2l_helpers.meta.meta_training.meta_train` does (paper, Section 2): a new trajectory of
    training tasks every epoch (chosen by its config's ``seed``), Adam on phi after every unroll, validation
    every ``val_every`` epochs, the best validated weights left in the network. The configs may differ in
    ``seed``, ``lr``, ``weights``, ``select``, clipping; the networks in preprocessing and output scale; they
    must share :data:`SHARED` and the LSTM's shape. ``callback(epoch, records)`` runs after every epoch.
    Returns one :class:`MetaTrainResult` per network.
    """
    from tqdm.auto import tqdm

    nets, configs = list(nets), list(configs)
    _check_stack(nets, configs)
    device = next(nets[0].parameters()).device
    optimizers = [torch.optim.Adam(net.parameters(), lr=c.lr) for net, c in zip(nets, configs, strict=True)]
    info = {"problem": problem.describe()}
    runs = [TrainingState(n, o, c, None, info, progress) for n, o, c in zip(nets, optimizers, configs, strict=True)]
    cfg = configs[0]
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not progress)
    for epoch in bar:
        indices = [i for c in configs for i in training_indices(c, epoch)]
        curves, skips = _trajectory(nets, problem.tasks("train", indices, device), configs, optimizers)
        records = []
        for r, run in enumerate(runs):
            run.after_trajectory(epoch, skips[r])
            curve = curves[r]
            record = {"epoch": epoch + 1, "meta_loss": float(curve.sum()), "final_loss": float(curve[-1])}
            record["skipped"] = len(skips[r])
            records.append(record)
        if cfg.val_every and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
            rules = {str(r): LearnedRule(net) for r, net in enumerate(nets)}
            val = evaluate_rules(rules, problem, cfg.val_tasks, cfg.steps, "val", device)
            for r, run in enumerate(runs):
                records[r]["val_meta_loss"] = run.validate(val[str(r)], epoch + 1)
        for run, record in zip(runs, records, strict=True):
            run.result.history.append(record)
            run.end_epoch(epoch + 1)
        bar.set_postfix(best_val=" ".join(f"{run.result.best_val:.3g}" for run in runs))
        if callback is not None:
            callback(epoch + 1, records)
    bar.close()
    return [run.finish() for run in runs]
