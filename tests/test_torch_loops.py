"""l2l_helpers.evaluation.torch_loops: plain nn.Module training with torch.optim optimizers and LearnedOptimizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_optimizees import synthetic_data
from torch.nn import functional as F

import l2l_helpers as l2l
from l2l_helpers.optimizees import MNISTProblem


def test_torch_training_curve_records_minibatch_losses():
    """Loss t is the cross-entropy on minibatch t before step t; with lr 0 nothing changes between batches."""
    data = synthetic_data()
    torch.manual_seed(0)
    model = l2l.mlp_model((5,))
    curve = l2l.torch_training_curve(
        model, torch.optim.SGD(model.parameters(), lr=0.0), data.train_images, data.train_labels, 3, 16, seed=4
    )
    gen = torch.Generator().manual_seed(4)
    expected = []
    for _ in range(4):
        idx = torch.randint(0, len(data.train_labels), (16,), generator=gen)
        expected.append(float(F.cross_entropy(model(data.train_images[idx]), data.train_labels[idx]).detach()))
    np.testing.assert_allclose(curve, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        sgd = torch.optim.SGD(model.parameters(), lr=0.1)
        l2l.torch_training_curve(model, sgd, data.train_images, data.train_labels, 0)


def test_sequential_comparison_tunes_every_baseline_then_tests_on_held_out_models():
    """Each baseline's lr is the argmin of its training scores; every optimizer runs on the same held-out models."""
    problem = MNISTProblem(hidden=(6,), batch_size=8, data=synthetic_data())
    nets = {"LSTM s0": l2l.CoordinatewiseLSTM(), "LSTM s1": l2l.CoordinatewiseLSTM()}
    out = l2l.sequential_comparison(nets, problem, grid=(1e-3, 1e-1), n_tune=2, n_models=3, steps=4, progress=False)
    assert list(out["lrs"]) == ["SGD", "NAG", "RMSprop", "Adam"]
    for name, scores in out["scores"].items():
        assert out["lrs"][name] == min(scores, key=scores.get)
    assert list(out["curves"]) == ["LSTM s0", "LSTM s1", "SGD", "NAG", "RMSprop", "Adam"]
    curves = out["curves"]
    assert all(c.shape == (3, 5) for c in curves.values())
    for c in curves.values():
        np.testing.assert_allclose(c[:, 0], curves["Adam"][:, 0])  # same initial models, same first batches
    assert not np.allclose(curves["LSTM s0"][:, -1], curves["LSTM s1"][:, -1])  # two networks, two trajectories
    results = l2l.as_eval_results(curves, out["lrs"])
    assert results["Adam"].lr == out["lrs"]["Adam"] and results["LSTM s0"].lr is None
    torch.testing.assert_close(results["LSTM s1"].losses, torch.as_tensor(curves["LSTM s1"], dtype=torch.float32))
    one = l2l.sequential_comparison(
        l2l.CoordinatewiseLSTM(),
        problem,
        grid=(1e-2,),
        n_tune=1,
        n_models=2,
        steps=2,
        progress=False,
        baselines=["NAG"],
    )
    assert list(one["curves"]) == ["LSTM", "NAG"]


def test_sequential_comparison_nag_is_nesterov_momentum_and_bad_input_is_refused():
    """NAG is torch.optim.SGD with Nesterov momentum 0.9; unknown baselines and clashing names fail clearly."""
    from l2l_helpers.evaluation.torch_loops import TORCH_BASELINES

    nag = TORCH_BASELINES["NAG"]([torch.zeros(2, requires_grad=True)], 0.1)
    assert isinstance(nag, torch.optim.SGD)
    assert nag.defaults["nesterov"] and nag.defaults["momentum"] == 0.9 and nag.defaults["lr"] == 0.1
    problem = MNISTProblem(hidden=(6,), batch_size=8, data=synthetic_data())
    with pytest.raises(ValueError, match="unknown"):
        l2l.sequential_comparison(l2l.CoordinatewiseLSTM(), problem, baselines=["Adagrad"], progress=False)
    with pytest.raises(ValueError, match="clash"):
        l2l.sequential_comparison({"Adam": l2l.CoordinatewiseLSTM()}, problem, progress=False)
    with pytest.raises(ValueError, match="empty"):
        l2l.sequential_comparison({}, problem, progress=False)
