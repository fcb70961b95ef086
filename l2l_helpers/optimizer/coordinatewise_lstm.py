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

from l2l_helpers import kernels
from l2l_helpers.optimizer.preprocessing import PAPER_P, PREPROCESSING_INPUTS, check_preprocessing, preprocess


@dataclass(frozen=True)
class OptimizerConfig:
    """Architecture of the optimizer network; stored with every checkpoint."""

    num_layers: int = 2  # paper: 2
    hidden_size: int = 20  # paper: 20
    preprocessing: str = "log_sign"  # paper: log_sign (Appendix A); or log_sign_smooth, none
    p: float = PAPER_P  # paper: 10
    output_scale: float = 0.1  # authors' code: 1.0 (quadratics), 0.01 (MNIST)
    gac_cells: int = 0  # paper's Appendix: Global Averaging Cells per layer; 0 = the coordinatewise LSTM of Section 2.1
    memory_slots: int = 0  # paper's Appendix, NTM-BFGS: rank-one slots of a memory shared by an optimizee's coordinates
    write_heads: int = 3  # NTM-BFGS: rank-one writes per step (paper: 3 can simulate BFGS); used when memory_slots > 0

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
        self._check_memory()
        check_preprocessing(self.preprocessing, self.p)
        scale = self.output_scale
        if not isinstance(scale, (int, float)) or not (0 < scale < float("inf")):
            raise ValueError(f"output_scale={scale!r} must be a positive finite number")

    def _check_memory(self) -> None:
        slots, heads = self.memory_slots, self.write_heads
        for name, value in (("memory_slots", slots), ("write_heads", heads)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name}={value!r} must be a non-negative integer")
        if slots and slots > self.hidden_size - 1:
            raise ValueError(
                f"memory_slots={slots} must be at most hidden_size - 1 = {self.hidden_size - 1}: the memory rides in "
                "the recurrent state as one more layer of hidden_size-wide rows (its slots, then the last read)"
            )
        if slots and not 1 <= heads <= slots:
            raise ValueError(f"write_heads={heads} must be from 1 to memory_slots={slots} (the slots one step writes)")

    @property
    def input_size(self) -> int:
        """Number of LSTM inputs per coordinate: the preprocessed gradient, and with a memory its last read."""
        return PREPROCESSING_INPUTS[self.preprocessing] + (1 if self.memory_slots else 0)

    @property
    def state_layers(self) -> int:
        """Leading size of the recurrent state: one (h, c) per LSTM layer, one more holding the NTM memory."""
        return self.num_layers + (1 if self.memory_slots else 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form, as stored in checkpoints (the appendix's options only when used: plain LSTMs' files
        unchanged)."""
        data = asdict(self)
        if not data["gac_cells"]:
            del data["gac_cells"]
        if not data["memory_slots"]:
            del data["memory_slots"], data["write_heads"]
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
        if config.memory_slots:  # NTM-BFGS write heads: left vectors a (zero at first: an empty memory), right b
            self.write_a = nn.Linear(config.hidden_size, config.write_heads)
            self.write_b = nn.Linear(config.hidden_size, config.write_heads)
            with torch.no_grad():
                self.write_a.weight.zero_()
                self.write_a.bias.zero_()

    def init_state(
        self, n_coords: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Zero (h, c) for ``n_coords`` coordinates: shape ``(num_layers, 2, n_coords, hidden_size)`` (one layer more
        with an NTM memory: empty slots and a zero last read)."""
        ref = self.output.weight
        return torch.zeros(
            self.config.state_layers,
            2,
            n_coords,
            self.config.hidden_size,
            device=ref.device if device is None else device,
            dtype=ref.dtype if dtype is None else dtype,
        )

    def forward(
        self, grad: torch.Tensor, state: torch.Tensor, in_place: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map gradients (any shape, N elements) and state to (update of grad's shape, new state).

        ``in_place=True`` lets the step write the new state over ``state`` (the native step does, where it records
        no graph): for a caller that drops the old state, as evaluation does (:meth:`LearnedRule.step_`).

        The step is computed by the backend :func:`l2l_helpers.kernels.backend_for` picks: on CPUs the native
        C++ step where it is measured faster, else the fused PyTorch step (both with a hand-written backward),
        and the plain ``nn.LSTMCell`` stack below when ``grad`` itself needs a gradient (second-order
        meta-training) or ``kernels.forced("cells")`` asks for it. All give the same numbers to float rounding
        (``tests/test_kernels_fused.py``, ``tests/test_kernels_native.py``).
        """
        self._check_state(grad, state)
        x = preprocess(grad.reshape(-1), self.config.preprocessing, self.config.p)  # (N, input_size)
        optimizees = grad.shape[0] if grad.dim() == 2 else 1  # rows of a (tasks, dim) gradient are separate optimizees
        if self.config.memory_slots:
            update, new_state = self._memory_step(x, state, optimizees)
            return update.reshape(grad.shape), new_state
        if self.config.gac_cells:  # the kernels know no averaging: the plain stack, each optimizee averaged alone
            update, new_state = self._cells_step(x, state, optimizees)
            return update.reshape(grad.shape), new_state
        backend = kernels.backend_for(x, state)
        if backend == "cells":
            update, new_state = self._cells_step(x, state)
        else:
            params, scale = self._flat_parameters(), self.config.output_scale
            if backend == "native":
                update, new_state = kernels.native_step(x, state, params, scale, in_place=in_place)
            else:
                update, new_state = kernels.STEPS[backend](x, state, params, scale)
        return update.reshape(grad.shape), new_state

    def _check_state(self, grad: torch.Tensor, state: torch.Tensor) -> None:
        expected = (self.config.state_layers, 2, grad.numel(), self.config.hidden_size)
        if state.shape != expected:
            raise ValueError(
                f"state has shape {tuple(state.shape)}, expected {expected}: make it with net.init_state(grad.numel())"
            )

    def _cells_step(
        self, x: torch.Tensor, state: torch.Tensor, optimizees: int = 1, head: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        new_state = []
        for layer, cell in enumerate(self.cells):
            h, c = cell(x, (state[layer, 0], state[layer, 1]))  # (N, hidden) each
            if self.config.gac_cells:
                h = global_average(h, self.config.gac_cells, optimizees)
            new_state.append(torch.stack([h, c]))
            x = h
        if not head:  # the caller reads the top layer itself (NTM-BFGS)
            return x, torch.stack(new_state)
        update = self.output(x).squeeze(-1) * self.config.output_scale  # (N,)
        return update, torch.stack(new_state)

    def _memory_step(self, x: torch.Tensor, state: torch.Tensor, optimizees: int) -> tuple[torch.Tensor, torch.Tensor]:
        """NTM-BFGS (paper's Appendix): the LSTM(+GAC) controller reads its last read result beside the gradient,
        writes ``write_heads`` rank-one terms a b^T into its optimizee's memory and reads it with the read vector r
        it proposes; the read result M r is the update (see :func:`memory_write_read`)."""
        cfg = self.config
        layers, slots, hidden = cfg.num_layers, cfg.memory_slots, cfg.hidden_size
        memory = state[layers]  # (2, N, hidden): a slots | last read ; b slots | unused
        a_slots, b_slots, last_read = memory[0, :, :slots], memory[1, :, :slots], memory[0, :, slots]
        x = torch.cat([x, (last_read / cfg.output_scale).unsqueeze(-1)], dim=1)  # (N, input_size)
        h, lstm_state = self._cells_step(x, state[:layers], optimizees, head=False)  # h: top layer (N, hidden)
        r = self.output(h).squeeze(-1) * cfg.output_scale  # read vector (N,)
        a_slots, b_slots, read = memory_write_read(a_slots, b_slots, self.write_a(h), self.write_b(h), r, optimizees)
        n = x.shape[0]
        pad = x.new_zeros(n, hidden - slots - 1)
        new_memory = torch.stack(
            [torch.cat([a_slots, read.unsqueeze(-1), pad], dim=1), torch.cat([b_slots, pad, x.new_zeros(n, 1)], dim=1)]
        )
        return read, torch.cat([lstm_state, new_memory.unsqueeze(0)])

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


def memory_write_read(
    a_slots: torch.Tensor,
    b_slots: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    r: torch.Tensor,
    optimizees: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the NTM-BFGS memory (paper's Appendix, Figures 9-10), per optimizee of D coordinates.

    The memory is M = I + sum_j a_j b_j^T (D x D), kept as its rank-one terms: ``a_slots``, ``b_slots`` (N, m) hold
    coordinate i's entries of the m left and right write vectors. A step writes the k new pairs ``a``, ``b`` (N, k)
    into the slots, dropping the k oldest (a limited memory, as L-BFGS keeps its last pairs), then reads with the
    read vector ``r`` (N,): the read result is M r = r + sum_j a_j (b_j . r), the dot products over each optimizee's
    own coordinates. With an empty memory the read is r itself; BFGS's inverse-Hessian update is three such rank-one
    terms per step, and its step -H g is such a read. Returns (new a slots, new b slots, read result (N,)).
    """
    n, slots = a_slots.shape
    if optimizees < 1 or n % optimizees:
        raise ValueError(f"{n} coordinates do not split into {optimizees} optimizees of equal size")
    k = a.shape[1]
    a_slots = torch.cat([a_slots[:, k:], a], dim=1)  # (N, m)
    b_slots = torch.cat([b_slots[:, k:], b], dim=1)
    dim = n // optimizees
    dots = (b_slots * r.unsqueeze(-1)).view(optimizees, dim, slots).sum(dim=1, keepdim=True)  # (tasks, 1, m)
    read = r + (a_slots.view(optimizees, dim, slots) * dots).sum(-1).reshape(n)
    return a_slots, b_slots, read


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

    def step_(self, grad: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` for a caller that drops ``state`` afterwards (evaluation's loop): the new state may be
        written over it. The same numbers; on the native CPU step no new state (80 floats per coordinate) is
        allocated, whose page faults cost as much as the step itself at 40 MNIST networks."""
        if isinstance(self.net, CoordinatewiseLSTM):
            return self.net(grad, state, in_place=True)
        return self.net(grad, state)
