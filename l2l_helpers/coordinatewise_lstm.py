"""The optimizer network g_phi: a coordinatewise deep LSTM (paper, Section 2.1 and Figure 3; notebook 02).

One small LSTM, whose weights phi are shared by every coordinate of theta, reads the (preprocessed)
gradient of one coordinate and proposes that coordinate's update; each coordinate keeps its own
hidden state. All coordinates of all parameter tensors are processed as one batch: coordinate i is
row i of every tensor below.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from . import kernels
from .preprocessing import PAPER_P, PREPROCESSING_INPUTS, check_preprocessing, preprocess


@dataclass(frozen=True)
class OptimizerConfig:
    """Architecture of the optimizer network; stored with every checkpoint."""

    num_layers: int = 2  # paper: 2
    hidden_size: int = 20  # paper: 20
    preprocessing: str = "log_sign"  # paper: log_sign (Appendix A); or log_sign_smooth, none
    p: float = PAPER_P  # paper: 10
    output_scale: float = 0.1  # authors' code: 1.0 (quadratics), 0.01 (MNIST)
    gac_cells: int = 0  # paper's Appendix: Global Averaging Cells per layer; 0 = the coordinatewise LSTM of Section 2.1

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        gac = self.gac_cells
        if not isinstance(gac, int) or isinstance(gac, bool) or not 0 <= gac <= self.hidden_size:
            raise ValueError(
                f"gac_cells={gac!r} must be an integer from 0 (no averaged cells) to hidden_size={self.hidden_size} "
                "(every cell of a layer averaged)"
            )
        check_preprocessing(self.preprocessing, self.p)
        scale = self.output_scale
        if not isinstance(scale, (int, float)) or not (0 < scale < float("inf")):
            raise ValueError(f"output_scale={scale!r} must be a positive finite number")

    @property
    def input_size(self) -> int:
        """Number of LSTM inputs per coordinate after preprocessing."""
        return PREPROCESSING_INPUTS[self.preprocessing]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, as stored in checkpoints (``gac_cells`` only when used: plain LSTMs' files unchanged)."""
        data = asdict(self)
        if not data["gac_cells"]:
            del data["gac_cells"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizerConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown optimizer config keys: {sorted(unknown)}")
        return cls(**data)


class CoordinatewiseLSTM(nn.Module):
    """Coordinatewise deep LSTM optimizer: ``update, state = net(grad, state)``, theta += update.

    The recurrent state of N coordinates is one tensor of shape ``(num_layers, 2, N, hidden_size)``
    holding (h, c) per layer, so that it can be carried, detached, split and concatenated cheaply.
    The parameter count does not depend on N.
    """

    def __init__(self, config: OptimizerConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        if config is None:
            config = OptimizerConfig(**overrides)
        elif overrides:
            config = OptimizerConfig(**{**config.to_dict(), **overrides})
        self.config = config
        sizes = [config.input_size] + [config.hidden_size] * config.num_layers
        # One LSTMCell per layer; its batch dimension is the coordinate dimension.
        self.cells = nn.ModuleList(nn.LSTMCell(sizes[i], sizes[i + 1]) for i in range(config.num_layers))
        self.output = nn.Linear(config.hidden_size, 1)
        with torch.no_grad():
            # A small first step: the untrained optimizer starts close to "do nothing".
            self.output.weight.mul_(0.1)
            self.output.bias.zero_()

    def init_state(
        self, n_coords: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Zero (h, c) for ``n_coords`` coordinates: shape ``(num_layers, 2, n_coords, hidden_size)``."""
        ref = self.output.weight
        return torch.zeros(
            self.config.num_layers,
            2,
            n_coords,
            self.config.hidden_size,
            device=ref.device if device is None else device,
            dtype=ref.dtype if dtype is None else dtype,
        )

    def forward(self, grad: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map gradients (any shape, N elements) and state to (update of grad's shape, new state).

        The step is computed by the backend :func:`l2l_helpers.kernels.backend_for` picks: on CPUs the native
        C++ step where it is measured faster, else the fused PyTorch step (both with a hand-written backward),
        and the plain ``nn.LSTMCell`` stack below when ``grad`` itself needs a gradient (second-order
        meta-training) or ``kernels.forced("cells")`` asks for it. All give the same numbers to float rounding
        (``tests/test_kernels_fused.py``, ``tests/test_kernels_native.py``).
        """
        self._check_state(grad, state)
        x = preprocess(grad.reshape(-1), self.config.preprocessing, self.config.p)  # (N, input_size)
        if self.config.gac_cells:  # the kernels know no averaging: the plain stack, each optimizee averaged alone
            update, new_state = self._cells_step(x, state, optimizees=grad.shape[0] if grad.dim() == 2 else 1)
            return update.reshape(grad.shape), new_state
        backend = kernels.backend_for(x, state)
        if backend == "cells":
            update, new_state = self._cells_step(x, state)
        else:
            update, new_state = kernels.STEPS[backend](x, state, self._flat_parameters(), self.config.output_scale)
        return update.reshape(grad.shape), new_state

    def _check_state(self, grad: torch.Tensor, state: torch.Tensor) -> None:
        expected = (self.config.num_layers, 2, grad.numel(), self.config.hidden_size)
        if state.shape != expected:
            raise ValueError(
                f"state has shape {tuple(state.shape)}, expected {expected}: make it with net.init_state(grad.numel())"
            )

    def _cells_step(
        self, x: torch.Tensor, state: torch.Tensor, optimizees: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        new_state = []
        for layer, cell in enumerate(self.cells):
            h, c = cell(x, (state[layer, 0], state[layer, 1]))  # (N, hidden) each
            if self.config.gac_cells:
                h = global_average(h, self.config.gac_cells, optimizees)
            new_state.append(torch.stack([h, c]))
            x = h
        update = self.output(x).squeeze(-1) * self.config.output_scale  # (N,)
        return update, torch.stack(new_state)

    def _flat_parameters(self) -> list[torch.Tensor]:
        """[W_ih, W_hh, b_ih, b_hh] of every layer, then the output layer's weight and bias."""
        params: list[torch.Tensor] = []
        for cell in self.cells:
            params += [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
        return [*params, self.output.weight, self.output.bias]

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.to_dict().items())


def global_average(h: torch.Tensor, cells: int, optimizees: int = 1) -> torch.Tensor:
    """Global Averaging Cells (paper, Appendix): the first ``cells`` of the hidden units ``h`` (N, hidden) become
    their average over the coordinates of each optimizee, so every coordinate's LSTM sees a summary of all of them
    (enough, e.g., to express clipping by the global gradient norm). The N rows are ``optimizees`` equal blocks
    (one task each, as ``grad`` of shape (tasks, dim) gives them); coordinates of different tasks never mix.
    """
    n, hidden = h.shape
    if optimizees < 1 or n % optimizees:
        raise ValueError(f"{n} coordinates do not split into {optimizees} optimizees of equal size")
    if cells == 0:
        return h
    blocks = h.view(optimizees, n // optimizees, hidden)
    mean = blocks[:, :, :cells].mean(dim=1, keepdim=True).expand(-1, n // optimizees, -1)
    return torch.cat([mean, blocks[:, :, cells:]], dim=2).reshape(n, hidden)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class LearnedRule:
    """The optimizer network behind the update-rule interface shared with the baselines.

    ``theta`` and ``grad`` have shape ``(n_tasks, dim)``; every coordinate of every task is one row of
    the LSTM batch.
    """

    name = "LSTM"

    def __init__(self, net: CoordinatewiseLSTM, name: str = "LSTM") -> None:
        self.net = net
        self.name = name

    def init_state(self, theta: torch.Tensor) -> torch.Tensor:
        """Zero LSTM state for every coordinate of ``theta``."""
        return self.net.init_state(theta.numel(), device=theta.device, dtype=theta.dtype)

    def step(self, grad: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (update, new state); the caller sets theta = theta + update."""
        return self.net(grad, state)
