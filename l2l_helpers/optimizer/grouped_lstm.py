"""One optimizer network per parameter group: the paper's convnet optimizer (Section 3.3; notebook 10).

The paper optimizes its convnet with two coordinatewise LSTMs, one for the convolutional layers' parameters and one
for the fully connected layers', "since the gradient statistics of the two types of layers differ" (one LSTM for both
"was not sufficient"). :class:`GroupedLSTM` holds one
:class:`~l2l_helpers.optimizer.coordinatewise_lstm.CoordinatewiseLSTM`
per group and a *routing* per optimizee size: which coordinates of theta (dim D) belong to which group. A problem
gives its routing (``problem.groups()``); :func:`route_for` registers it, and meta-training and evaluation call it.

The recurrent state stays one tensor ``(layers, 2, N, hidden)`` in theta's coordinate order, so everything that
carries, detaches, saves or stacks a plain network's state works unchanged; that is why every group's network must
have the same number of layers and hidden units (the paper's two LSTMs are both 2x20). Each coordinate's state is
only ever read and written by its own group's network.

In an ordinary training loop, give each group's network its own parameters::

    opt = l2l.LearnedOptimizer(net.param_groups({"conv": conv_params, "fc": fc_params}))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, OptimizerConfig


@dataclass(frozen=True)
class GroupedConfig:
    """Architecture of a :class:`GroupedLSTM`: one :class:`OptimizerConfig` per named group, in order."""

    groups: tuple[tuple[str, OptimizerConfig], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.groups]
        if len(names) < 2:
            raise ValueError(f"groups {names}: a grouped optimizer needs at least two groups (else use one LSTM)")
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n.isidentifier() for n in names):
            raise ValueError(f"group names {names} must be distinct identifiers, e.g. ('conv', 'fc')")
        shapes = {(cfg.state_layers, cfg.hidden_size) for _, cfg in self.groups}
        if len(shapes) > 1:
            raise ValueError(
                f"the groups' networks have state shapes (layers, hidden) {sorted(shapes)}: they must be equal, since "
                "the state of all coordinates is one tensor; give every group the same --lstm-layers/--lstm-hidden"
            )

    @classmethod
    def same(cls, config: OptimizerConfig, names: Iterable[str]) -> GroupedConfig:
        """Every group with the same architecture (the paper's case)."""
        return cls(tuple((name, config) for name in names))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.groups)

    @property
    def state_layers(self) -> int:
        return self.groups[0][1].state_layers

    @property
    def hidden_size(self) -> int:
        return self.groups[0][1].hidden_size

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, as stored in checkpoints: ``{"groups": {name: OptimizerConfig.to_dict(), ...}}``."""
        return {"groups": {name: cfg.to_dict() for name, cfg in self.groups}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupedConfig:
        if set(data) != {"groups"} or not isinstance(data["groups"], dict):
            raise ValueError(f"a grouped optimizer config is {{'groups': {{name: config}}}}, got keys {sorted(data)}")
        return cls(tuple((name, OptimizerConfig.from_dict(cfg)) for name, cfg in data["groups"].items()))


AnyConfig = OptimizerConfig | GroupedConfig


def config_from_dict(data: dict[str, Any]) -> AnyConfig:
    """The config stored in a checkpoint: a grouped one (``{"groups": ...}``) or one network's."""
    return GroupedConfig.from_dict(data) if "groups" in data else OptimizerConfig.from_dict(data)


def build_optimizer(config: AnyConfig) -> CoordinatewiseLSTM | GroupedLSTM:
    """A fresh network of this architecture (initialised from torch's global RNG, as the constructors are)."""
    return GroupedLSTM(config) if isinstance(config, GroupedConfig) else CoordinatewiseLSTM(config)


def describe_config(config: AnyConfig) -> str:
    """One phrase: "one LSTM" or "one LSTM per group (conv, fc)"."""
    if isinstance(config, GroupedConfig):
        return f"one LSTM per parameter group ({', '.join(config.names)})"
    return "one LSTM for every parameter"


class GroupedLSTM(nn.Module):
    """One coordinatewise LSTM per parameter group: ``update, state = net(grad, state)`` as for one LSTM, where
    coordinate i of theta goes through the network of its group (set by :meth:`route`).

    ``grad`` is (rows, D) (rows = tasks, or copies of them) or a flat (D,) for one optimizee; the routing for D
    must have been registered with :meth:`route` (meta-training and evaluation do it from ``problem.groups()``).
    """

    def __init__(self, config: GroupedConfig) -> None:
        super().__init__()
        self.config = config
        self.nets = nn.ModuleDict({name: CoordinatewiseLSTM(cfg) for name, cfg in config.groups})
        # D -> (sizes per group in config order, permutation to group order or None, its inverse or None)
        self._routes: dict[int, tuple[list[int], torch.Tensor | None, torch.Tensor | None]] = {}

    def route(self, groups: Mapping[str, torch.Tensor]) -> GroupedLSTM:
        """Register which coordinates of a D-dimensional theta belong to each group (positions 0..D-1, every position
        in exactly one group, every group of this network named); returns the network."""
        names = self.config.names
        if set(groups) != set(names):
            raise ValueError(
                f"the routing names groups {sorted(groups)} but this optimizer has one LSTM for each of {list(names)}"
            )
        parts = [torch.as_tensor(groups[name], dtype=torch.long).reshape(-1).cpu() for name in names]
        order = torch.cat(parts)
        dim = order.numel()
        if any(p.numel() == 0 for p in parts) or not torch.equal(order.sort().values, torch.arange(dim)):
            raise ValueError(
                "the routing must put every coordinate 0..D-1 in exactly one group, and each group must be non-empty"
            )
        identity = torch.equal(order, torch.arange(dim))
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(dim)
        self._routes[dim] = ([p.numel() for p in parts], None if identity else order, None if identity else inverse)
        return self

    @property
    def routed_sizes(self) -> list[int]:
        """The optimizee sizes D this network has a routing for."""
        return sorted(self._routes)

    def init_state(
        self, n_coords: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Zero state for ``n_coords`` coordinates, ``(layers, 2, n_coords, hidden)`` as one LSTM's."""
        first = next(iter(self.nets.values()))
        return first.init_state(n_coords, device, dtype)

    def forward(self, grad: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dim = grad.shape[-1]
        if dim not in self._routes:
            known = ", ".join(map(str, self._routes)) or "none"
            raise ValueError(
                f"this grouped optimizer has no routing for optimizees of {dim} coordinates (routed: {known}); "
                "call net.route(problem.groups()) first (meta_train and evaluate do it for you)"
            )
        sizes, order, inverse = self._routes[dim]
        layers, hidden = self.config.state_layers, self.config.hidden_size
        rows = grad.numel() // dim
        expected = (layers, 2, grad.numel(), hidden)
        if state.shape != expected:
            raise ValueError(
                f"state has shape {tuple(state.shape)}, expected {expected}: make it with net.init_state(grad.numel())"
            )
        g = grad.reshape(rows, dim)
        s = state.view(layers, 2, rows, dim, hidden)
        if order is not None:
            order_d, inverse_d = order.to(grad.device), inverse.to(grad.device)
            g, s = g[:, order_d], s[:, :, :, order_d]
        updates, states = [], []
        for net, g_part, s_part in zip(self.nets.values(), g.split(sizes, 1), s.split(sizes, 3), strict=True):
            k = g_part.shape[1]
            update, new = net(g_part, s_part.reshape(layers, 2, rows * k, hidden))  # (rows, k), (L, 2, rows * k, H)
            updates.append(update)
            states.append(new.view(layers, 2, rows, k, hidden))
        update, new_state = torch.cat(updates, 1), torch.cat(states, 3)  # (rows, D), (L, 2, rows, D, H)
        if order is not None:
            update, new_state = update[:, inverse_d], new_state[:, :, :, inverse_d]
        return update.reshape(grad.shape), new_state.reshape(expected)

    def param_groups(self, params: Mapping[str, Iterable[torch.Tensor]]) -> list[dict[str, Any]]:
        """Parameter groups for :class:`~l2l_helpers.optimizer.learned_optimizer.LearnedOptimizer`: each named group's
        parameters with that group's network, e.g. ``net.param_groups({"conv": [...], "fc": [...]})``."""
        if set(params) != set(self.config.names):
            raise ValueError(f"give parameters for exactly the groups {list(self.config.names)}, got {sorted(params)}")
        return [{"params": list(params[name]), "net": net} for name, net in self.nets.items()]

    def extra_repr(self) -> str:
        return f"groups={list(self.config.names)}"


def route_for(net: nn.Module, problem: Any) -> None:
    """Give a grouped network the routing of ``problem`` (its ``groups()``); nothing for one LSTM. A grouped
    network on a problem without parameter groups is an error that says so."""
    if not isinstance(net, GroupedLSTM):
        return
    groups = getattr(problem, "groups", None)
    if groups is None:
        raise ValueError(
            f"{describe_config(net.config)} needs a problem with parameter groups (the conv problem has them); "
            f"{getattr(problem, 'name', type(problem).__name__)} has none: use a one-LSTM optimizer on it"
        )
    net.route(groups())


#: Any optimizer network: one coordinatewise LSTM, or one per parameter group.
OptimizerNet = CoordinatewiseLSTM | GroupedLSTM
