"""l2l_helpers.notebook.plotting: figures carry the data they are given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.notebook.diagrams import plot_computational_graph, plot_preprocessing
from l2l_helpers.notebook.plotting import figure_data, plot_loss_curves, plot_meta_training


def test_loss_curve_figure_matches_results():
    """The plotted mean is the result's mean; the band is drawn below it."""
    losses = torch.tensor([[4.0, 2.0, 1.0], [2.0, 1.0, 0.5]])
    fig = plot_loss_curves({"Adam": l2l.EvalResult("Adam", losses, lr=0.1)})
    (curve,) = figure_data(fig)
    assert curve["name"] == "Adam (lr 0.1)"
    np.testing.assert_allclose(curve["y"], [3.0, 1.5, 0.75])
    assert fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="band"):
        plot_loss_curves([], band="violin")


def test_loss_curves_against_seconds():
    """With a time per step the x axis is seconds: step t at t times that optimizer's time."""
    results = {n: l2l.EvalResult(n, torch.tensor([[4.0, 2.0, 1.0]])) for n in ("Adam", "LSTM")}
    fig = plot_loss_curves(results, seconds_per_step={"Adam": 0.5, "LSTM": 2.0})
    xs = {trace["name"]: list(trace["x"]) for trace in figure_data(fig)}
    assert xs == {"Adam": [0.0, 0.5, 1.0], "LSTM": [0.0, 2.0, 4.0]}
    assert "seconds" in fig.layout.xaxis.title.text
    with pytest.raises(ValueError, match="no time for"):
        plot_loss_curves(results, seconds_per_step={"Adam": 0.5})


def test_other_figures():
    """Meta-training, preprocessing and graph figures hold the data they claim."""
    result = l2l.MetaTrainResult(history=[{"epoch": 1, "meta_loss": 5.0}, {"epoch": 2, "meta_loss": 3.0}])
    result.val_history = [{"epoch": 2, "val_meta_loss": 4.0}]
    data = {d["name"]: d for d in figure_data(plot_meta_training(result))}
    np.testing.assert_allclose(data["training trajectory"]["y"], [5.0, 3.0])
    pre = {d["name"]: d for d in figure_data(plot_preprocessing(p=10.0))}
    assert pre["log channel, g > 0"]["y"].min() == -1.0
    graph = plot_computational_graph(steps=2)
    assert {"dropped (no second derivatives)", "meta-gradient flows"} <= {t.name for t in graph.data}


def test_image_grid():
    """One image trace per named picture, clipped to [0, 255] bytes, titled by name."""
    from l2l_helpers.notebook.plotting import plot_images

    fig = plot_images({"a": torch.full((3, 4, 5), 2.0), "b": torch.zeros(3, 4, 5)}, cols=2)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert np.asarray(fig.data[0].z).max() == 255 and np.asarray(fig.data[1].z).max() == 0
    assert [a.text for a in fig.layout.annotations] == ["a", "b"]
    rows = plot_images([("photo", torch.zeros(3, 4, 5)), ("x", torch.ones(3, 4, 5))] * 2, cols=2)
    assert [a.text for a in rows.layout.annotations] == ["photo", "x", "photo", "x"]  # titles may repeat, row by row
    assert [(t.xaxis, t.yaxis) for t in rows.data][2] == ("x3", "y3")
