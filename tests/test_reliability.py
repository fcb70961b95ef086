"""Reliability: interrupted training is kept and resumes exactly, bad steps are skipped, bad input is named."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import l2l_helpers as l2l
from l2l_helpers.optimizees import QuadraticTasks

TINY = {"steps": 10, "unroll": 5, "tasks_per_epoch": 2, "val_every": 1, "val_tasks": 2, "lr": 0.01}


def fresh_net(seed: int = 0, **kwargs) -> l2l.CoordinatewiseLSTM:
    """An untrained optimizer network with seeded weights."""
    torch.manual_seed(seed)
    return l2l.CoordinatewiseLSTM(**kwargs)


def train(epochs: int, **kwargs) -> tuple[l2l.CoordinatewiseLSTM, l2l.MetaTrainResult]:
    """A tiny meta-training run on quadratics from the seeded network."""
    net = fresh_net()
    config = l2l.MetaTrainConfig(epochs=epochs, **TINY)
    return net, l2l.meta_train(net, l2l.QuadraticProblem(), config, progress=False, **kwargs)


def same_weights(a: dict, b: dict) -> bool:
    """Bit-for-bit equality of two state dicts."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_results():
    """Two runs with the same seed give identical weights, histories and evaluations on CPU."""
    net_a, res_a = train(3)
    net_b, res_b = train(3)
    assert same_weights(res_a.last_state, res_b.last_state)
    assert same_weights(net_a.state_dict(), net_b.state_dict())
    assert res_a.history == res_b.history
    problem = l2l.QuadraticProblem()
    ev = [l2l.evaluate(l2l.LearnedRule(n), problem, 3, 10).losses for n in (net_a, net_b)]
    assert torch.equal(ev[0], ev[1])


def test_interrupt_between_epochs_saves_and_resumes_bit_for_bit(tmp_path):
    """Ctrl-C after epoch 2 saves a checkpoint; resuming to epoch 4 equals an uninterrupted 4-epoch run."""
    _, straight = train(4)
    path = tmp_path / "run.pt"

    def interrupt(record, result):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    _, first = train(4, checkpoint_path=path, callback=interrupt)
    assert first.interrupted and [h["epoch"] for h in first.history] == [1, 2]
    assert l2l.read_checkpoint(path)["training"]["epoch"] == 2
    _, resumed = train(4, checkpoint_path=path, resume=path)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert same_weights(resumed.last_state, straight.last_state)
    assert same_weights(resumed.best_state, straight.best_state)
    assert resumed.history == straight.history


class InterruptingTasks(QuadraticTasks):
    """Quadratic tasks whose loss raises KeyboardInterrupt (a kernel interrupt) on one step."""

    def __init__(self, *args, at_step: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at_step = at_step

    def loss(self, theta, step=0):
        if step == self.at_step:
            raise KeyboardInterrupt
        return super().loss(theta, step)


class FaultyProblem(l2l.QuadraticProblem):
    """Quadratics where chosen epochs' tasks misbehave: ``kind`` is 'interrupt' or 'nan' at step 7."""

    def __init__(self, bad_first_index: set[int], kind: str) -> None:
        super().__init__()
        self.bad, self.kind = bad_first_index, kind

    def _make_tasks(self, seeds, device, split):
        if split == "train" and seeds[0] in self.bad:
            if self.kind == "interrupt":
                return InterruptingTasks(seeds, self.dim, self.init_scale, device, at_step=7)
            return NaNTasks(seeds, self.dim, self.init_scale, device)
        return super()._make_tasks(seeds, device, split)


class NaNTasks(QuadraticTasks):
    """Quadratic tasks whose loss is NaN from step 7 on."""

    def loss(self, theta, step=0):
        out = super().loss(theta, step)
        return out * math.nan if step >= 7 else out


def epoch_first_index(epoch: int) -> int:
    """The first training seed of an epoch in the TINY configuration."""
    config = l2l.MetaTrainConfig(epochs=10, **TINY)
    return l2l.meta_training.training_indices(config, epoch)[0]


def test_interrupt_mid_epoch_rolls_back_to_the_last_finished_epoch(tmp_path):
    """An interrupt inside epoch 3 (after phi already stepped once) keeps exactly the state after epoch 2."""
    _, two = train(2)
    net = fresh_net()
    problem = FaultyProblem({epoch_first_index(2)}, "interrupt")
    path = tmp_path / "mid.pt"
    result = l2l.meta_train(net, problem, l2l.MetaTrainConfig(epochs=5, **TINY), checkpoint_path=path, progress=False)
    assert result.interrupted and len(result.history) == 2
    assert same_weights(net.state_dict(), two.last_state)
    assert same_weights(l2l.read_checkpoint(path)["training"]["last_state"], two.last_state)


def test_nan_loss_is_skipped_and_reported():
    """A problem that returns NaN at step 7 of one epoch: that meta-step is skipped, phi stays finite."""
    net = fresh_net()
    problem = FaultyProblem({epoch_first_index(1)}, "nan")
    result = l2l.meta_train(net, problem, l2l.MetaTrainConfig(epochs=3, **TINY), progress=False)
    assert result.skipped == 1
    assert result.history[1]["skipped"] == 1 and math.isnan(result.history[1]["final_loss"])
    assert "epoch 2" in result.events[0] and "non-finite meta-loss" in result.events[0]
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert math.isfinite(result.history[2]["meta_loss"])


def test_exploding_optimizer_output_never_breaks_phi():
    """An optimizer whose output explodes makes theta diverge; every bad step is skipped, phi stays finite."""
    net = fresh_net(output_scale=1e30)
    result = l2l.meta_train(net, l2l.QuadraticProblem(), l2l.MetaTrainConfig(epochs=2, **TINY), progress=False)
    assert result.skipped >= 1
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_exploding_meta_gradient_is_skipped_and_phi_kept():
    """With a tiny explosion threshold every meta-step is refused: phi stays exactly at its start."""
    net = fresh_net()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    config = l2l.MetaTrainConfig(epochs=2, skip_grad_norm=1e-12, **TINY)
    result = l2l.meta_train(net, l2l.QuadraticProblem(), config, progress=False)
    assert result.skipped == 2 and "meta-gradient norm" in result.events[0]
    assert same_weights(net.state_dict(), start)


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    """Start ``python -m l2l_helpers`` in the background."""
    env = {**os.environ, "L2L_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "l2l_helpers", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


CLI_TINY = ["--problem", "quadratic", "--steps", "10", "--unroll", "5", "--tasks-per-epoch", "2"]
CLI_TINY += ["--val-every", "1", "--val-tasks", "2", "--checkpoint-every", "1", "--quiet", "--seed", "3"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_signal_saves_and_resume_matches_uninterrupted(tmp_path, sig):
    """SIGTERM/SIGINT to `l2l train` saves a checkpoint and exits 130; --resume ends bit-for-bit as a straight run."""
    path = tmp_path / "sig.pt"
    proc = run_cli(["train", *CLI_TINY, "--epochs", "100000", "--out", str(path)])
    deadline = time.time() + 60
    while time.time() < deadline:
        if path.exists() and l2l.read_checkpoint(path)["training"]["epoch"] >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in out and "--resume" in out
    done = l2l.read_checkpoint(path)["training"]["epoch"]
    assert done >= 2
    target = str(done + 2)
    resumed = run_cli(["train", *CLI_TINY, "--epochs", target, "--resume", str(path), "--out", str(path)])
    straight_path = tmp_path / "straight.pt"
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    straight = run_cli(["train", *CLI_TINY, "--epochs", target, "--out", str(straight_path)])
    assert straight.wait(timeout=120) == 0, straight.stderr.read()
    a, b = l2l.read_checkpoint(path), l2l.read_checkpoint(straight_path)
    assert a["training"]["epoch"] == b["training"]["epoch"] == done + 2
    assert same_weights(a["training"]["last_state"], b["training"]["last_state"])
    assert same_weights(a["state_dict"], b["state_dict"])


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: l2l.MetaTrainConfig(epochs=0), "epochs"),
        (lambda: l2l.MetaTrainConfig(steps=-5), "steps"),
        (lambda: l2l.MetaTrainConfig(steps=10, unroll=20), "unroll"),
        (lambda: l2l.MetaTrainConfig(skip_grad_norm=0), "skip_grad_norm"),
        (lambda: l2l.make_problem("cifar"), "problem"),
        (lambda: l2l.MNISTProblem(activation="softplus"), "activation"),
        (lambda: l2l.CoordinatewiseLSTM(preprocessing="sqrt"), "preprocessing"),
        (lambda: l2l.resolve_device("tpu"), "device"),
        (lambda: l2l.evaluate(l2l.make_baseline("sgd", 0.1), l2l.QuadraticProblem(), n_tasks=0), "n_tasks"),
        (lambda: l2l.evaluate(l2l.make_baseline("sgd", 0.1), l2l.QuadraticProblem(), steps=0), "steps"),
        (lambda: l2l.check_parameters({"SMOKE": "yes"}), "SMOKE"),
        (lambda: l2l.check_parameters({"EPOCHS": 2.5}), "EPOCHS"),
        (lambda: l2l.check_parameters({"DEVICE": "gpu"}), "DEVICE"),
        (lambda: l2l.check_parameters({"SCALES": [1.0, -2.0]}), "SCALES"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_parameter(make, name):
    """Every bad value raises ValueError whose message starts with or names the parameter."""
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu():
    """Asking for cuda without a GPU is a ValueError that says what to use instead."""
    with pytest.raises(ValueError, match="no CUDA GPU"):
        l2l.resolve_device("cuda")


def test_check_parameters_accepts_the_notebook_defaults():
    """The values in the committed parameters cells pass."""
    l2l.check_parameters({"SEED": 0, "DEVICE": "auto", "SMOKE": False, "INTERACTIVE": True, "EPOCHS": 300})
    l2l.check_parameters({"META_LR": 0.003, "P": 10.0, "SCALES": [0.01, 1], "HIDDEN_SIZE": 20, "TASK": 0})
    l2l.check_parameters({"not_a_parameter": "anything", "In": [], "_": None})


shapes = st.lists(st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=5)


@settings(max_examples=40, deadline=None)
@given(shapes=shapes, with_grad=st.lists(st.booleans(), min_size=5, max_size=5), seed=st.integers(0, 2**16))
def test_learned_optimizer_on_any_parameter_shapes(shapes, with_grad, seed):
    """Empty, scalar and n-d parameters, with and without gradients: each updated coordinatewise, or left alone."""
    gen = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    for p, g in zip(params, with_grad, strict=False):
        if g:
            p.grad = torch.randn(p.shape, generator=gen)
    before = [p.detach().clone() for p in params]
    net = fresh_net(output_scale=1.0)
    opt = l2l.LearnedOptimizer(params, net)
    opt.step()
    for p, b in zip(params, before, strict=True):
        if p.grad is None or p.numel() == 0:
            assert torch.equal(p.detach(), b)
            assert "lstm" not in opt.state[p]
        else:
            # coordinatewise: the update of each parameter depends only on its own gradient
            with torch.no_grad():
                expected, _ = net(p.grad.reshape(-1), net.init_state(p.numel()))
            torch.testing.assert_close(p.detach() - b, expected.view_as(p), atol=1e-6, rtol=1e-5)
            assert opt.state[p]["lstm"].shape == (2, 2, p.numel(), 20)
