"""l2l_helpers.meta.stacked_training: K meta-training runs in one batched pass give each run what meta_train gives
it."""

from __future__ import annotations

import pytest
import torch

from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.meta.meta_training import meta_train
from l2l_helpers.meta.stacked_training import StackedWeights, meta_train_stack, stacked_step
from l2l_helpers.optimizees import MNISTProblem, QuadraticProblem
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM
from l2l_helpers.optimizer.preprocessing import preprocess


def nets_for(kinds, scales=None):
    out = []
    for seed, kind in enumerate(kinds):
        torch.manual_seed(seed)
        extra = {} if scales is None else {"output_scale": scales[seed]}
        out.append(CoordinatewiseLSTM(preprocessing=kind, **extra))
    return out


def config(**kw):
    base = {"epochs": 3, "steps": 20, "unroll": 5, "tasks_per_epoch": 4, "lr": 3e-3, "val_every": 2, "val_tasks": 4}
    return MetaTrainConfig(**{**base, **kw})


def test_stacked_step_matches_each_lstm_cell_stack():
    """Oracle: nn.LSTMCell per network (the plain path), with mixed inputs widths and output scales."""
    nets = nets_for(["log_sign", "none", "log_sign"], scales=[0.1, 0.3, 1.0])
    for net in nets:  # lively weights, so that every gate matters
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.3 * torch.randn_like(p))
    n = 37
    grads = torch.randn(len(nets), n) * 10.0 ** torch.randint(-6, 2, (len(nets), n))
    states = torch.randn(len(nets), 2, 2, n, 20)
    w = StackedWeights(nets)
    xs = []
    for net, g in zip(nets, grads, strict=True):
        pre = preprocess(g, net.config.preprocessing, net.config.p)
        xs.append(torch.nn.functional.pad(pre, (0, w.input_size - pre.shape[1])))
    update, new_state = stacked_step(torch.stack(xs), states, w)
    for k, net in enumerate(nets):
        pre = preprocess(grads[k], net.config.preprocessing, net.config.p)
        want_update, want_state = net._cells_step(pre, states[k])
        torch.testing.assert_close(update[k], want_update, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(new_state[k], want_state, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_each_run_gets_what_meta_train_gives_it():
    """Mixed preprocessing, w_t, seeds and selection rules: parameters, histories and best epochs agree."""
    kinds = ["log_sign", "none", "log_sign"]
    configs = [config(seed=0), config(seed=1, weights="final"), config(seed=2, weights="linear", select="final")]
    alone = nets_for(kinds)
    want = [meta_train(net, QuadraticProblem(), c, progress=False) for net, c in zip(alone, configs, strict=True)]
    stacked = nets_for(kinds)
    got = meta_train_stack(stacked, QuadraticProblem(), configs, progress=False)
    for a, b, ra, rb in zip(alone, stacked, want, got, strict=True):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)
        assert rb.best_epoch == ra.best_epoch
        for ha, hb in zip(ra.history, rb.history, strict=True):
            assert ha.keys() == hb.keys()
            for key in ha:
                assert hb[key] == pytest.approx(ha[key], rel=1e-4)
        torch.testing.assert_close(rb.last_state, ra.last_state, rtol=1e-4, atol=1e-5)


def test_a_run_that_skips_every_meta_step_leaves_the_others_alone():
    """One run's explosions (here: every meta-gradient counts as one) skip only its own steps."""
    configs = [config(), config(skip_grad_norm=1e-12), config(seed=3)]
    alone = nets_for(["log_sign"] * 3)
    want = [meta_train(net, QuadraticProblem(), c, progress=False) for net, c in zip(alone, configs, strict=True)]
    stacked = nets_for(["log_sign"] * 3)
    before = [p.detach().clone() for p in stacked[1].parameters()]
    got = meta_train_stack(stacked, QuadraticProblem(), configs, progress=False)
    assert got[1].skipped == want[1].skipped == 3  # one skip per trajectory, then the trajectory ends
    assert got[0].skipped == got[2].skipped == 0
    for p, q in zip(before, stacked[1].parameters(), strict=True):
        assert torch.equal(p, q)
    for r in (0, 2):
        for p, q in zip(alone[r].parameters(), stacked[r].parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)


def test_mnist_tasks_stack_too():
    """A problem with minibatches: two runs on MNIST match meta_train for one short epoch."""
    problem = MNISTProblem()
    configs = [config(epochs=1, tasks_per_epoch=1, val_every=0, seed=s) for s in (0, 1)]
    alone = nets_for(["log_sign", "log_sign"])
    for net, c in zip(alone, configs, strict=True):
        meta_train(net, problem, c, progress=False)
    stacked = nets_for(["log_sign", "log_sign"])
    meta_train_stack(stacked, problem, configs, progress=False)
    for a, b in zip(alone, stacked, strict=True):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("nets", "configs", "message"),
    [
        ([], [], "nets is empty"),
        (["log_sign"], [config(), config()], "1 networks but 2 configs"),
        (["log_sign", "none"], [config(), config(epochs=4)], "differ in epochs"),
        (["log_sign", "none"], [config(), config(unroll=10)], "differ in unroll"),
        (["log_sign"], [config(second_order=True)], "second_order"),
    ],
)
def test_bad_stacks_are_refused_before_any_training(nets, configs, message):
    with pytest.raises(ValueError, match=message):
        meta_train_stack(nets_for(nets), QuadraticProblem(), configs, progress=False)


def test_same_network_twice_and_different_shapes_are_refused():
    net = CoordinatewiseLSTM()
    with pytest.raises(ValueError, match="appears twice"):
        meta_train_stack([net, net], QuadraticProblem(), [config(), config()], progress=False)
    with pytest.raises(ValueError, match="num_layers, hidden_size"):
        meta_train_stack([net, CoordinatewiseLSTM(hidden_size=8)], QuadraticProblem(), [config()] * 2, progress=False)
