"""What depends on the device, run on ``$L2L_TEST_DEVICE`` (default ``cpu``; ``benchmarks/gpu_check.sh`` sets ``cuda``).

Each test computes the same thing on the device and on the CPU and compares: the tasks are drawn on the CPU and
moved, so every device optimizes the same functions.
"""

from __future__ import annotations

import os

import pytest
import torch
from helpers import TINY, fresh_net, lively_net

import l2l_helpers as l2l
from l2l_helpers.evaluation.loops import evaluate_grid, evaluate_rules
from l2l_helpers.optimizer.baselines import make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import LearnedRule

DEVICE = l2l.resolve_device(os.environ.get("L2L_TEST_DEVICE", "cpu"))
CPU = torch.device("cpu")
PROBLEMS = {
    "quadratic": lambda: l2l.QuadraticProblem(),
    "mnist": lambda: l2l.MNISTProblem(hidden=(8,), batch_size=32),
    "neural_art": lambda: l2l.NeuralArtProblem(size=16),
}


@pytest.mark.parametrize("family", list(PROBLEMS))
def test_the_batched_evaluator_gives_the_cpus_curves(family):
    """A learning-rate grid and a learned optimizer beside a baseline: the same curves on the device as on the CPU."""
    problem = PROBLEMS[family]()
    here = evaluate_grid("adam", problem, [1e-3, 1e-2], n_tasks=2, steps=8, device=DEVICE)
    there = evaluate_grid("adam", problem, [1e-3, 1e-2], n_tasks=2, steps=8, device=CPU)
    for lr in here:
        torch.testing.assert_close(here[lr].losses, there[lr].losses, rtol=1e-3, atol=1e-5)
    net = lively_net(1)
    rules = lambda n: {"LSTM": LearnedRule(n), "NAG": make_baseline("nag", 1e-2)}  # noqa: E731
    here = evaluate_rules(rules(net.to(DEVICE)), problem, 2, 8, device=DEVICE)
    there = evaluate_rules(rules(net.to(CPU)), problem, 2, 8, device=CPU)
    for name in here:
        assert here[name].losses.device == CPU  # results always come back to the CPU
        torch.testing.assert_close(here[name].losses, there[name].losses, rtol=1e-3, atol=1e-5)


def test_the_optimizer_step_and_its_gradient_match_the_cpus():
    """The coordinatewise LSTM's update, new state and meta-gradient on the device equal the CPU's."""
    grad = torch.randn(500) * 10.0 ** torch.randint(-8, 1, (500,)).float()
    results = []
    for device in (DEVICE, CPU):
        net = lively_net(2).to(device)
        state = net.init_state(500, device=device)
        update, new_state = net(grad.to(device), state)
        meta = torch.autograd.grad(update.square().sum(), list(net.parameters()))
        results.append([update.detach().cpu(), new_state.detach().cpu(), *(g.cpu() for g in meta)])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_meta_training_and_checkpoints_on_the_device(tmp_path):
    """A few epochs of meta-training on the device give the CPU's losses; the checkpoint loads on the CPU."""
    histories, nets = [], []
    for device in (DEVICE, CPU):
        net = fresh_net().to(device)
        result = l2l.meta_train(net, l2l.QuadraticProblem(), l2l.MetaTrainConfig(epochs=2, **TINY), progress=False)
        histories.append(torch.tensor([r["meta_loss"] for r in result.history]))
        nets.append(net)
    torch.testing.assert_close(histories[0], histories[1], rtol=1e-3, atol=1e-5)
    path = tmp_path / "device.pt"
    l2l.save_checkpoint(path, nets[0])
    loaded, _ = l2l.load_optimizer(path, CPU)
    for a, b in zip(loaded.parameters(), nets[0].parameters(), strict=True):
        assert a.device == CPU and torch.equal(a, b.cpu())


def test_the_learned_optimizer_trains_a_model_on_the_device():
    """LearnedOptimizer on an nn.Module that lives on the device: the CPU's parameters after three steps."""
    finals = []
    for device in (DEVICE, CPU):
        torch.manual_seed(0)
        model = l2l.mlp_model((8,)).to(device)
        x, y = torch.randn(16, 784).to(device), torch.randint(0, 10, (16,)).to(device)
        opt = l2l.LearnedOptimizer(model.parameters(), lively_net(4).to(device))
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        finals.append(torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()]))
    torch.testing.assert_close(finals[0], finals[1], rtol=1e-4, atol=1e-5)
