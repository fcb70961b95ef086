"""A trained optimizer network as a ``torch.optim.Optimizer`` for any model (notebooks 06-07, 10).

Usage, in an ordinary training loop::

    net = l2l.load_pretrained("mnist")
    opt = l2l.LearnedOptimizer(model.parameters(), net)
    loss.backward(); opt.step(); opt.zero_grad()

Parameter groups may carry their own network, as the paper's convnet optimizer has one LSTM for the convolutional
layers and one for the fully connected ones (Section 3.3)::

    opt = l2l.LearnedOptimizer([{"params": convs, "net": conv_net}, {"params": fcs, "net": fc_net}])

The per-coordinate LSTM state of each parameter lives in ``opt.state[p]["lstm"]`` (so it is saved by
``opt.state_dict()``); all coordinates of all parameters that share a network go through it as one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM


class LearnedOptimizer(torch.optim.Optimizer):
    """Apply a (trained) :class:`CoordinatewiseLSTM` to the parameters: p += net(p.grad, state_p).

    ``net`` serves every parameter group that names no ``"net"`` of its own; a group's ``"net"`` serves its
    parameters alone, with states of its own shape. Non-finite gradients: a coordinate whose gradient is NaN or
    +-inf is skipped for that step (its parameter is left unchanged and its LSTM state is kept as it was), while every
    finite coordinate is updated as usual, so one bad gradient neither poisons that coordinate's recurrent state for
    later steps nor stops the others. This differs from torch.optim's optimizers, which write the NaN into the
    parameters. Sparse gradients (``nn.Embedding(..., sparse=True)``) are not supported: ``step()`` raises
    ``RuntimeError``.
    """

    def __init__(
        self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], net: CoordinatewiseLSTM | None = None
    ) -> None:
        self.net = self._checked(net, "net") if net is not None else None
        self._nets: list[CoordinatewiseLSTM] = []  # one per parameter group, beside param_groups (not in state_dict)
        super().__init__(params, defaults={})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """A parameter group, optionally with its own ``"net"`` (else the optimizer's ``net``)."""
        group = dict(param_group)  # the caller's dict is left as it was
        net = group.pop("net", None)
        if net is None and self.net is None:
            raise ValueError(
                f"parameter group {len(self._nets)} has no optimizer network: pass net=<a CoordinatewiseLSTM> or "
                "give the group a 'net' entry"
            )
        net = self._checked(net, f"parameter group {len(self._nets)}'s net") if net is not None else self.net
        super().add_param_group(group)
        self._nets.append(net)

    @staticmethod
    def _checked(net: object, what: str) -> CoordinatewiseLSTM:
        if not isinstance(net, CoordinatewiseLSTM):
            raise ValueError(f"{what} must be a CoordinatewiseLSTM, got {type(net).__name__}")
        return net.eval()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient; parameters without one are left alone."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_dense()
        by_net: dict[int, tuple[CoordinatewiseLSTM, list[torch.Tensor]]] = {}
        for group, net in zip(self.param_groups, self._nets, strict=True):
            params = [p for p in group["params"] if p.grad is not None and p.numel() > 0]
            if params:
                by_net.setdefault(id(net), (net, []))[1].extend(params)
        for net, params in by_net.values():
            self._step_with(net, params)
        return loss

    def _step_with(self, net: CoordinatewiseLSTM, params: list[torch.Tensor]) -> None:
        """All coordinates of ``params`` through ``net`` as one batch."""
        ref = next(net.parameters())
        grads, states = [], []
        for p in params:
            grads.append(p.grad.reshape(-1).to(ref.device, ref.dtype))  # (n_p,)
            state = self.state[p]
            if "lstm" not in state:
                state["lstm"] = net.init_state(p.numel())
            states.append(state["lstm"])
        grad, old_state = torch.cat(grads), torch.cat(states, dim=2)
        finite = torch.isfinite(grad)
        if bool(finite.all()):
            update, new_state = net(grad, old_state)  # one batch of coordinates
        else:  # skip the non-finite coordinates: no update, their state kept (the others' numbers are unchanged)
            update, new_state = net(grad.masked_fill(~finite, 0), old_state)
            update = update.masked_fill(~finite, 0)
            new_state = torch.where(finite[:, None], new_state, old_state)  # (layers, 2, N, hidden)
        start = 0
        for p in params:
            n = p.numel()
            p.add_(update[start : start + n].view_as(p).to(p.device, p.dtype))
            # a view into this step's state (layers, 2, n_p, hidden); the next step concatenates them anyway
            self.state[p]["lstm"] = new_state[:, :, start : start + n]
            start += n

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
