"""The price of a learned step (notebook 11): counts checked by hand, the timed loop against the plain one."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import l2l_helpers as l2l
from l2l_helpers.evaluation.step_cost import (
    lstm_step_macs,
    mlp_step_macs,
    state_bytes_per_coordinate,
    step_times,
    timed_training_curve,
)


def test_lstm_macs_by_hand():
    # layer 1: 4 gates x 20 units x (2 inputs + 20 hidden + 1 bias) = 1,840; layer 2: 80 x 41 = 3,280; output 20
    assert lstm_step_macs(1, l2l.OptimizerConfig()) == 1840 + 3280 + 20
    assert lstm_step_macs(15910, l2l.OptimizerConfig()) == 15910 * 5140
    # NTM-BFGS reads one input more (its last read)
    assert lstm_step_macs(1, l2l.OptimizerConfig(memory_slots=3, write_heads=1)) == 80 * 24 + 3280 + 20


def test_mlp_macs_by_hand():
    # forward 784*20 + 20*10 = 15,880 per example; weight gradients the same; input gradient of layer 2 only: 200
    assert mlp_step_macs([784, 20, 10], 128) == 128 * (2 * 15880 + 200)
    with pytest.raises(ValueError, match="at least"):
        mlp_step_macs([784], 1)


def test_state_bytes():
    assert state_bytes_per_coordinate(l2l.OptimizerConfig()) == 2 * 2 * 20 * 4
    assert state_bytes_per_coordinate(l2l.OptimizerConfig(memory_slots=5, write_heads=1)) == 3 * 2 * 20 * 4
    assert state_bytes_per_coordinate(l2l.OptimizerConfig(), torch.float64) == 2 * 2 * 20 * 8


def _data():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(64, 784, generator=gen), torch.randint(0, 10, (64,), generator=gen)


def test_timed_loop_is_the_plain_loop_with_a_clock():
    images, labels = _data()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = l2l.mlp_model()
        runs.append((model, torch.optim.SGD(model.parameters(), lr=0.1)))
    (m1, o1), (m2, o2) = runs
    losses, seconds = timed_training_curve(m1, o1, images, labels, steps=5, batch_size=16, seed=3)
    plain = l2l.torch_training_curve(m2, o2, images, labels, steps=5, batch_size=16, seed=3)
    assert losses == pytest.approx(list(plain))
    assert len(seconds) == 6 and seconds[0] == 0 and all(b >= a for a, b in itertools.pairwise(seconds))
    assert seconds[-1] > 0


def test_step_times_for_each_optimizer():
    images, labels = _data()
    net = l2l.CoordinatewiseLSTM()
    times = step_times(
        lambda: nn.Sequential(nn.Linear(784, 4), nn.Sigmoid(), nn.Linear(4, 10)),
        {"Adam": lambda p: torch.optim.Adam(p, lr=1e-3), "LSTM": lambda p: l2l.LearnedOptimizer(p, net)},
        images,
        labels,
        repeats=3,
        warmup=1,
    )
    assert set(times) == {"Adam", "LSTM"}
    for t in times.values():
        assert 0 < t["step_s"] <= t["whole_s"]
    with pytest.raises(ValueError, match="optimizers is empty"):
        step_times(l2l.mlp_model, {}, images, labels)
