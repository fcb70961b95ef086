"""l2l_helpers.kernels: which backend computes a step (backend_for), and pinning one (forced)."""

from __future__ import annotations

import pytest
import torch

from l2l_helpers import kernels
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM


def test_forced_backends_are_used_and_restored():
    net = CoordinatewiseLSTM(num_layers=2, hidden_size=6)
    grad, state = torch.randn(9), net.init_state(9)
    x = torch.randn(9, 2)
    with kernels.forced("cells"):
        assert kernels.backend_for(x, state) == "cells"
        _, new_state = net(grad, state)
        assert "FusedLSTMStep" not in type(new_state.grad_fn).__name__
        with kernels.forced("fused"):  # nested: the innermost wins
            assert kernels.backend_for(x, state) == "fused"
        assert kernels.backend_for(x, state) == "cells"
    assert kernels.backend_for(x, state) == "fused"  # 6 hidden units: the native step is not built for them


def test_a_gradient_that_needs_a_gradient_takes_the_cells():
    """Second-order meta-training differentiates the step twice: only the nn.LSTMCell stack can."""
    state = torch.zeros(2, 2, 4, 20)
    with kernels.forced("native"):
        assert kernels.backend_for(torch.randn(4, 2, requires_grad=True), state) == "cells"


def test_bad_backends_are_refused():
    with pytest.raises(ValueError, match="auto, native, fused, cells"), kernels.forced("gpu"):
        pass
    with kernels.forced("native"), pytest.raises(ValueError, match="native step was forced"):
        kernels.backend_for(torch.randn(4, 2), torch.zeros(2, 2, 4, 6))  # 6 hidden units
