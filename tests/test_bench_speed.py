"""benchmarks/bench_speed.py compares like with like: its plain reference computes the trainer's method."""

from __future__ import annotations

import pytest
import torch

import l2l_helpers as l2l


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_speed")


def test_epoch_work_counts(bench):
    """The multiply-adds and bytes the benchmark reports, against a hand count for the paper's 2 x 20 LSTM."""
    config = l2l.OptimizerConfig()
    # per coordinate and step: forward 4*20*(2+20+1) + 4*20*(20+20+1) + 20 (output) = 5140; backward: input
    # gradients 4*20*20 (layer 1: h only) + 4*20*40, weight gradients 4*20*23 + 4*20*41, output layer 2*20
    assert bench.lstm_epoch_macs(1, config, steps=1) == 5140 + 1600 + 3200 + 1840 + 3280 + 40
    assert bench.lstm_epoch_macs(10, config, steps=100) == 1000 * 15100
    # per coordinate: state 2*2*20 floats, gates 2*4*20; forward reads the state, writes the new one and the
    # gates; backward reads state, half the new state (h), gates, d new state, writes d state
    state, gates = 80 * 4, 160 * 4
    assert bench.native_step_bytes(1, config) == (2 * state + gates) + (3.5 * state + gates)


def test_native_step_keeps_the_gates_the_count_assumes(bench):
    """What the native forward keeps for the backward is the gate tensor the byte count includes."""
    from l2l_helpers.kernels import native

    net = l2l.CoordinatewiseLSTM()
    x, state = torch.randn(64, 2), net.init_state(64)
    if not native.shape_supported(x, state) or native.load() is None:
        pytest.skip("the native step is not built here")
    wt, (w_out, b_out) = native._matrices(list(net.parameters())), native._output(list(net.parameters()))
    _, new_state, saved = native.load().forward(x, state, wt, w_out, b_out, 0.1, True, False)
    count = bench.native_step_bytes(64, net.config)
    assert count == 5.5 * state.numel() * 4 + 2 * saved.numel() * 4
    assert new_state.shape == state.shape


def test_evaluation_step_row_times_both_ways_from_the_same_state(bench):
    """(e) times the fresh-state and in-place steps from the same state and finds them equal, whatever the backend."""
    row = bench.eval_state_times(2, 1, torch.device("cpu"))
    assert row["eval_coordinates"] == l2l.MNISTProblem().dim and row["eval_step_same"] is True
    assert set(row["eval_step_s"]) == {"fresh", "in_place"} and all(t > 0 for t in row["eval_step_s"].values())
    assert row["eval_step_backend"] in ("native", "fused")
