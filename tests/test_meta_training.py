"""l2l_helpers.meta.meta_training: truncated BPTT, meta-steps, validation and the best weights (paper, Section 2)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers import TINY, lively_net

from l2l_helpers.evaluation.loops import EvalResult, evaluate
from l2l_helpers.evaluation.tuning import tune_learning_rate
from l2l_helpers.meta import meta_training as mt
from l2l_helpers.meta.checkpoints import read_checkpoint
from l2l_helpers.meta.config import MetaTrainConfig, training_indices
from l2l_helpers.meta.meta_training import meta_train, unroll_trajectory
from l2l_helpers.optimizees import QuadraticProblem, TaskBatch
from l2l_helpers.optimizer.baselines import make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule


def quad_loss(tasks, theta):
    """||W theta - y||^2 per task, written out independently."""
    return ((torch.einsum("bij,bj->bi", tasks.W, theta) - tasks.y) ** 2).sum(-1)


def quad_grad(tasks, theta):
    """2 W^T (W theta - y) per task."""
    return 2 * torch.einsum("bji,bj->bi", tasks.W, torch.einsum("bij,bj->bi", tasks.W, theta) - tasks.y)


@pytest.fixture(scope="module")
def trained():
    """A short meta-training on quadratics (about 7 s on 2 cores), shared by the slow tests."""
    torch.manual_seed(0)
    net = CoordinatewiseLSTM()
    problem = QuadraticProblem()
    before = evaluate(LearnedRule(net), problem, 32, 100)
    config = MetaTrainConfig(epochs=60, tasks_per_epoch=16, lr=3e-3, val_every=20, val_tasks=16)
    result = meta_train(net, problem, config, progress=False)
    return net, result, before


class ZeroLR(torch.optim.SGD):
    """A meta-optimizer that takes no step, so phi stays fixed along the trajectory."""

    def __init__(self, params):
        super().__init__(params, lr=0.0)


class RecordingAdam(torch.optim.Adam):
    """Adam that keeps a copy of the parameters in force before each of its steps (and the final ones)."""

    def __init__(self, net, lr):
        super().__init__(net.parameters(), lr=lr)
        self.net = net
        self.snapshots = [copy.deepcopy(net.state_dict())]

    def step(self, closure=None):
        out = super().step(closure)
        self.snapshots.append(copy.deepcopy(self.net.state_dict()))
        return out


class ExplodingTasks(TaskBatch):
    """||theta||^2 whose loss becomes infinite from step 3 on: a diverged optimizee."""

    def __init__(self):
        self.seeds, self.dim, self.device = [0, 1], 3, torch.device("cpu")

    def init_theta(self):
        return torch.ones(2, 3)

    def loss(self, theta, step=0):
        return (theta**2).sum(-1) + (math.inf if step >= 3 else 0.0)


@pytest.mark.slow
def test_meta_training_beats_untrained_optimizer(trained):
    """A short meta-training turns a do-nothing LSTM into one that beats tuned SGD on held-out test tasks."""
    net, result, before = trained
    problem = QuadraticProblem()
    after = evaluate(LearnedRule(net), problem, 32, 100)
    # measured: untrained ~9.8, trained ~0.24 (seeds 0-2: 0.21-0.27)
    assert before.mean_final > 5
    assert after.mean_final < 1.0
    assert after.mean_final < before.mean_final / 10
    assert len(result.history) == 60 and [r["epoch"] for r in result.history] == list(range(1, 61))
    assert [v["epoch"] for v in result.val_history] == [20, 40, 60]
    assert result.skipped == 0 and result.events == [] and not result.interrupted
    # the paper's comparison: better than SGD with its learning rate tuned on training tasks (~2.7)
    sgd = tune_learning_rate("sgd", problem, grid=[0.003, 0.01, 0.03], n_tasks=8, steps=100)
    sgd_test = evaluate(make_baseline("sgd", sgd.best_lr), problem, 32, 100)
    assert after.mean_final < sgd_test.mean_final / 3


@pytest.mark.slow
def test_trained_trajectory_continues_across_unrolls(trained):
    """With a trained net and real meta-steps, the loss after each unroll boundary continues, far below f(theta_0)."""
    net = copy.deepcopy(trained[0])
    tasks = QuadraticProblem().tasks("train", range(1000, 1008))
    config = MetaTrainConfig(steps=20, unroll=5)
    curve, skips = unroll_trajectory(net, tasks, config, torch.optim.Adam(net.parameters(), lr=1e-3))
    assert skips == []
    f0 = float(quad_loss(tasks, tasks.init_theta()).mean())  # measured: ~8.9, curve[5] ~2.2, curve[-1] ~0.7
    for b in (5, 10, 15):
        assert float(curve[b]) < 0.5 * f0
        assert abs(float(curve[b] - curve[b - 1])) < 0.25 * (f0 - float(curve[b]))
    assert float(curve[-1]) < float(curve[5])


def test_trajectory_is_continuous_across_unrolls():
    """With phi fixed, unroll=5 over 20 steps gives exactly the uninterrupted 20-step trajectory."""
    net = lively_net()
    problem = QuadraticProblem()
    tasks = problem.tasks("train", range(4))
    config = MetaTrainConfig(steps=20, unroll=5)
    curve, skips = unroll_trajectory(net, tasks, config, ZeroLR(net.parameters()))
    assert skips == [] and curve.shape == (20,)
    # independent reference: one uninterrupted run, theta and state carried every step
    theta, state = tasks.init_theta(), net.init_state(40)
    reset_theta, reset_state = tasks.init_theta(), net.init_state(40)
    ref, reset = [], []
    with torch.no_grad():
        for t in range(20):
            u, state = net(quad_grad(tasks, theta), state)
            theta = theta + u
            ref.append(quad_loss(tasks, theta).mean())
            if t % 5 == 0:  # what a reset of the LSTM state at every unroll boundary would give
                reset_state = net.init_state(40)
            u, reset_state = net(quad_grad(tasks, reset_theta), reset_state)
            reset_theta = reset_theta + u
            reset.append(quad_loss(tasks, reset_theta).mean())
    ref, reset = torch.stack(ref), torch.stack(reset)
    torch.testing.assert_close(curve, ref, rtol=1e-4, atol=1e-5)
    assert (ref - reset).abs().max() > 1e-2  # the comparison can tell a state reset apart
    # and a reset of theta would show: the trajectory has moved well away from where it started
    assert abs(float(ref[5] - ref[0])) > 0.1 * float(ref[0])


def test_trajectory_with_meta_updates_matches_replay():
    """With real meta-steps, unroll k runs phi_k from the theta and LSTM state where unroll k-1 stopped."""
    net = lively_net()
    tasks = QuadraticProblem().tasks("train", range(4))
    config = MetaTrainConfig(steps=20, unroll=5)
    opt = RecordingAdam(net, lr=3e-2)
    curve, skips = unroll_trajectory(net, tasks, config, opt)
    assert skips == [] and len(opt.snapshots) == 5  # one meta-step per unroll
    replay = lively_net()
    theta, state, ref = tasks.init_theta(), replay.init_state(40), []
    with torch.no_grad():
        for k in range(4):
            replay.load_state_dict(opt.snapshots[k])
            for _ in range(5):
                u, state = replay(quad_grad(tasks, theta), state)
                theta = theta + u
                ref.append(quad_loss(tasks, theta).mean())
    torch.testing.assert_close(curve, torch.stack(ref), rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(opt.snapshots[0][k], opt.snapshots[4][k]) for k in opt.snapshots[0])


@pytest.mark.parametrize("second_order", [False, True])
def test_meta_step_uses_the_unroll_meta_gradient(second_order):
    """One unroll's meta-step is a step along the gradient of unroll()'s meta-loss, of the configured order."""
    torch.manual_seed(0)
    net = CoordinatewiseLSTM(num_layers=1, hidden_size=3, preprocessing="none").double()
    with torch.no_grad():
        net.output.weight.normal_()
    tasks = QuadraticProblem(dim=2).tasks("train", range(2))
    tasks.W, tasks.y, tasks._theta0 = tasks.W.double(), tasks.y.double(), tasks._theta0.double()
    expected = {}
    for order in (False, True):
        theta = tasks.init_theta().requires_grad_(True)
        loss, *_ = mt.unroll(net, tasks, theta, net.init_state(4), 0, 3, [1.0] * 3, second_order=order)
        expected[order] = torch.autograd.grad(loss, list(net.parameters()))
    before = [p.detach().clone() for p in net.parameters()]
    config = MetaTrainConfig(steps=3, unroll=3, second_order=second_order)
    _, skips = unroll_trajectory(net, tasks, config, torch.optim.SGD(net.parameters(), lr=1.0))
    assert skips == []
    delta = torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, net.parameters(), strict=True)])
    want = torch.cat([g.reshape(-1) for g in expected[second_order]])
    other = torch.cat([g.reshape(-1) for g in expected[not second_order]])
    torch.testing.assert_close(delta, want, rtol=1e-9, atol=1e-12)
    assert (delta - other).norm() > 1e-4 * want.norm()


def test_diverged_trajectory_is_skipped():
    """A non-finite meta-loss skips the meta-step, ends the trajectory and pads the curve with NaN."""
    net = lively_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    config = MetaTrainConfig(steps=10, unroll=5)
    curve, skips = unroll_trajectory(net, ExplodingTasks(), config, torch.optim.Adam(net.parameters(), lr=0.1))
    assert len(skips) == 1 and "non-finite meta-loss on steps 1-5" in skips[0]
    assert curve.shape == (10,)
    assert torch.isfinite(curve[:2]).all() and torch.isinf(curve[2:5]).all() and torch.isnan(curve[5:]).all()
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


@pytest.mark.parametrize(("weights", "meta_steps"), [("ones", 2), ("final", 1)])
def test_meta_steps_per_trajectory(tmp_path, weights, meta_steps):
    """One meta-step per unroll, none for an unroll whose weights are all zero (weights='final')."""
    net = lively_net()
    config = MetaTrainConfig(epochs=1, weights=weights, checkpoint_every=1, **{**TINY, "val_every": 0})
    meta_train(net, QuadraticProblem(dim=3), config, checkpoint_path=tmp_path / "c.pt", progress=False)
    opt_state = read_checkpoint(tmp_path / "c.pt")["training"]["meta_optimizer"]["state"]
    assert {int(s["step"]) for s in opt_state.values()} == {meta_steps}


def test_training_indices():
    """Every epoch trains on new tasks; the same seed gives the same tasks, another seed others."""
    config = MetaTrainConfig(tasks_per_epoch=4)
    epochs = [set(training_indices(config, e)) for e in range(50)]
    assert all(len(s) == 4 for s in epochs)
    assert len(set().union(*epochs)) == 200
    assert training_indices(config, 7) == training_indices(MetaTrainConfig(tasks_per_epoch=4), 7)
    assert training_indices(config, 7) != training_indices(MetaTrainConfig(tasks_per_epoch=4, seed=1), 7)


def test_keeps_best_validation_weights(monkeypatch):
    """At the end net holds the weights of the best validation epoch, also in best_state; NaN never wins."""
    scores = iter([5.0, 2.0, math.nan, 3.0])

    def fake_evaluate(rule, problem, n_tasks, steps, split, device):
        assert split == "val"
        s = next(scores)
        return EvalResult("LSTM", torch.tensor([[0.0, s]]))

    monkeypatch.setattr(mt, "evaluate", fake_evaluate)
    seen = {}

    def callback(record, result):
        seen[record["epoch"]] = {k: v.detach().clone() for k, v in mt_net.state_dict().items()}

    mt_net = lively_net()
    config = MetaTrainConfig(epochs=4, **TINY)
    result = meta_train(mt_net, QuadraticProblem(dim=3), config, progress=False, callback=callback)
    assert result.best_epoch == 2 and result.best_val == 2.0
    assert [v["val_meta_loss"] for v in result.val_history] == [5.0, 2.0, math.inf, 3.0]
    for k, v in mt_net.state_dict().items():
        assert torch.equal(v, seen[2][k])
        assert torch.equal(result.best_state[k], seen[2][k])
        assert torch.equal(result.last_state[k], seen[4][k])
    assert any(not torch.equal(seen[2][k], seen[4][k]) for k in seen[2])


def test_select_final_keeps_the_lowest_final_loss(monkeypatch):
    """select='final' ranks validation by the mean final loss, not by the sum of losses; both are recorded."""
    curves = iter([[9.0, 1.0], [1.0, 2.0]])  # epoch 1: worse sum, better final; epoch 2: the reverse

    def fake_evaluate(rule, problem, n_tasks, steps, split, device):
        return EvalResult("LSTM", torch.tensor([[0.0, *next(curves)]]))

    monkeypatch.setattr(mt, "evaluate", fake_evaluate)
    config = MetaTrainConfig(epochs=2, select="final", **TINY)
    result = meta_train(lively_net(), QuadraticProblem(dim=3), config, progress=False)
    assert result.best_epoch == 1 and result.best_val == 1.0
    assert result.val_history[1] == {"epoch": 2, "val_meta_loss": 2.0, "val_sum": 3.0, "val_final": 2.0}


def test_step_weights():
    """ones: all 1; final: only w_T; linear: proportional to t with mean 1."""
    assert MetaTrainConfig(steps=4, unroll=2).step_weights() == [1.0] * 4
    assert MetaTrainConfig(steps=4, unroll=2, weights="final").step_weights() == [0.0, 0.0, 0.0, 1.0]
    linear = MetaTrainConfig(steps=4, unroll=2, weights="linear").step_weights()
    assert linear == pytest.approx([0.4, 0.8, 1.2, 1.6]) and sum(linear) == pytest.approx(4.0)


def test_without_validation_net_holds_last_weights():
    """val_every=0: no validation, no best state, net keeps the last weights."""
    net = lively_net()
    result = meta_train(
        net, QuadraticProblem(dim=3), MetaTrainConfig(epochs=2, **{**TINY, "val_every": 0}), progress=False
    )
    assert result.best_state is None and result.best_epoch is None and result.val_history == []
    for k, v in net.state_dict().items():
        assert torch.equal(v, result.last_state[k])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"steps": -1}, "steps"),
        ({"unroll": 0}, "unroll"),
        ({"steps": 10, "unroll": 11}, "unroll"),
        ({"weights": "foo"}, "weights"),
        ({"lr": 0}, "lr"),
        ({"lr": math.nan}, "lr"),
        ({"tasks_per_epoch": 1.5}, "tasks_per_epoch"),
        ({"val_every": -1}, "val_every"),
        ({"checkpoint_every": True}, "checkpoint_every"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"val_tasks": 0}, "val_tasks"),
        ({"select": "median"}, "select"),
    ],
)
def test_config_validation(kwargs, name):
    """Bad meta-training settings are a ValueError naming the parameter."""
    with pytest.raises(ValueError, match=rf"\b{name}="):
        MetaTrainConfig(**kwargs)
