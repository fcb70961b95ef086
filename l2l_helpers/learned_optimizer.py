"""A trained optimizer network as a ``torch.optim.Optimizer`` for any model (notebooks 06-07).

Usage, in an ordinary training loop::

    net = l2l.load_pretrained("mnist")
    opt = l2l.LearnedOptimizer(model.parameters(), net)
    loss.backward(); opt.step(); opt.zero_grad()

The per-coordinate LSTM state of each parameter lives in ``opt.state[p]["lstm"]`` (so it is saved by
``opt.state_dict()``); all coordinates of all parameters with a gradient go through the LSTM as one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from .coordinatewise_lstm import CoordinatewiseLSTM


class LearnedOptimizer(torch.optim.Optimizer):
    """Apply a (trained) :class:`CoordinatewiseLSTM` to the parameters: p += net(p.grad, state_p).

    Non-finite gradients: a coordinate whose gradient is NaN or +-inf is skipped for that step (its parameter is
    left unchanged and its LSTM state is kept as it was), while every finite coordinate is updated as usual, so
    one bad gradient neither poisons that coordinate's recurrent state for later steps nor stops the others.
    This differs from torch.optim's optimizers, which write the NaN into the parameters. Sparse gradients
    (``nn.Embedding(..., sparse=True)``) are not supported: ``step()`` raises ``RuntimeError``.
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], net: CoordinatewiseLSTM) -> None:
        if not isinstance(net, CoordinatewiseLSTM):
            raise ValueError(f"net must be a CoordinatewiseLSTM, got {type(net).__name__}")
        super().__init__(params, defaults={})
        self.net = net.eval()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient; parameters without one are left alone."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_dense()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None and p.numel() > 0]
        if not params:
            return loss
        ref = next(self.net.parameters())
        grads, states = [], []
        for p in params:
            grads.append(p.grad.reshape(-1).to(ref.device, ref.dtype))  # (n_p,)
            state = self.state[p]
            if "lstm" not in state:
                state["lstm"] = self.net.init_state(p.numel())
            states.append(state["lstm"])
        grad, old_state = torch.cat(grads), torch.cat(states, dim=2)
        finite = torch.isfinite(grad)
        if bool(finite.all()):
            update, new_state = self.net(grad, old_state)  # one batch of coordinates
        else:  # skip the non-finite coordinates: no update, their state kept (the others' numbers are unchanged)
            update, new_state = self.net(grad.masked_fill(~finite, 0), old_state)
            update = update.masked_fill(~finite, 0)
            new_state = torch.where(finite[:, None], new_state, old_state)  # (layers, 2, N, hidden)
        start = 0
        for p in params:
            n = p.numel()
            p.add_(update[start : start + n].view_as(p).to(p.device, p.dtype))
            # a view into this step's state (layers, 2, n_p, hidden); the next step concatenates them anyway
            self.state[p]["lstm"] = new_state[:, :, start : start + n]
            start += n
        return loss

    def _check_dense(self) -> None:
        """Raise ``RuntimeError`` naming the first parameter with a sparse gradient (the LSTM reads dense ones)."""
        for g, group in enumerate(self.param_groups):
            for i, p in enumerate(group["params"]):
                if p.grad is not None and p.grad.layout != torch.strided:
                    raise RuntimeError(
                        f"LearnedOptimizer does not support sparse gradients: parameter {i} of param group {g} "
                        f"(shape {tuple(p.shape)}) has a {p.grad.layout} gradient; make its module with sparse=False "
                        "(e.g. nn.Embedding(..., sparse=False)) or give it to another optimizer"
                    )
