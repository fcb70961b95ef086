"""Small pieces several test files share: tiny meta-training settings and seeded optimizer networks."""

from __future__ import annotations

import torch

import l2l_helpers as l2l

#: A meta-training run of a few seconds on quadratics: short horizon, two unrolls, validation every epoch.
TINY = {"steps": 10, "unroll": 5, "tasks_per_epoch": 2, "val_every": 1, "val_tasks": 2, "lr": 1e-2}


def fresh_net(seed: int = 0, **kwargs) -> l2l.CoordinatewiseLSTM:
    """An untrained optimizer network with seeded weights."""
    torch.manual_seed(seed)
    return l2l.CoordinatewiseLSTM(**kwargs)


def lively_net(seed: int = 0, hidden: int = 8) -> l2l.CoordinatewiseLSTM:
    """A random net with a non-trivial output layer, so its updates clearly move theta."""
    net = fresh_net(seed, num_layers=2, hidden_size=hidden, output_scale=0.1)
    with torch.no_grad():
        net.output.weight.normal_()
        net.output.bias.normal_(0, 0.1)
    return net


def train(epochs: int, **kwargs) -> tuple[l2l.CoordinatewiseLSTM, l2l.MetaTrainResult]:
    """A tiny meta-training run on quadratics from the seeded network."""
    net = fresh_net()
    config = l2l.MetaTrainConfig(epochs=epochs, **TINY)
    return net, l2l.meta_train(net, l2l.QuadraticProblem(), config, progress=False, **kwargs)


def same_weights(a: dict, b: dict) -> bool:
    """Bit-for-bit equality of two state dicts."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
