"""l2l_helpers.torch_loops: plain nn.Module training with torch.optim optimizers and LearnedOptimizer."""

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


def test_sequential_comparison_tunes_adam_then_tests_on_held_out_models():
    """Adam's lr is the argmin of its training scores; both optimizers run on the same held-out models."""
    problem = MNISTProblem(hidden=(6,), batch_size=8, data=synthetic_data())
    out = l2l.sequential_comparison(
        l2l.CoordinatewiseLSTM(), problem, grid=(1e-3, 1e-1), n_tune=2, n_models=3, steps=4, progress=False
    )
    assert out["adam_lr"] == min(out["adam_scores"], key=out["adam_scores"].get)
    assert set(out["curves"]) == {"LSTM", "Adam"}
    lstm, adam = out["curves"]["LSTM"], out["curves"]["Adam"]
    assert lstm.shape == adam.shape == (3, 5)
    np.testing.assert_allclose(lstm[:, 0], adam[:, 0])  # same initial models, same first batches
    results = l2l.as_eval_results(out["curves"], {"Adam": out["adam_lr"]})
    assert results["Adam"].lr == out["adam_lr"] and results["LSTM"].lr is None
    torch.testing.assert_close(results["LSTM"].losses, torch.as_tensor(lstm, dtype=torch.float32))
