"""The plain functions behind the notebooks' panels and figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers import widgets
from l2l_helpers.plotting import (
    figure_data,
    plot_computational_graph,
    plot_loss_curves,
    plot_meta_training,
    plot_preprocessing,
)


def test_architecture_summary_counts():
    """Parameter counts follow the LSTM formula and do not depend on the number of coordinates."""
    s = widgets.architecture_summary(2, 20, "log_sign", n_coords=100)
    lstm = 4 * 20 * (2 + 20) + 8 * 20 + 4 * 20 * (20 + 20) + 8 * 20
    assert s["parameters"] == lstm + 21
    assert s["parameters"] == widgets.architecture_summary(2, 20, "log_sign", n_coords=10**6)["parameters"]
    assert s["state_per_coordinate"] == 80 and s["state_floats"] == 8000
    assert s["updates"].shape == s["grads"].shape == (10,)


def test_trajectories_2d_follow_the_rules():
    """SGD's path is theta_{t+1} = theta_t - lr grad; every path has steps + 1 points."""
    tasks = l2l.QuadraticProblem(dim=2).tasks("test", [0])
    runs = widgets.trajectories_2d(tasks, ("SGD", "LSTM"), 0.01, 5, {"LSTM": l2l.CoordinatewiseLSTM()})
    path, losses = runs["SGD"]
    assert path.shape == (6, 2) and losses.shape == (6,)
    theta = torch.tensor(path[0]).unsqueeze(0).requires_grad_(True)
    grad = torch.autograd.grad(tasks.loss(theta).sum(), theta)[0][0]
    np.testing.assert_allclose(path[1], path[0] - 0.01 * grad.numpy(), rtol=1e-5)
    xs, ys, z = widgets.quadratic_landscape(tasks, [p for p, _ in runs.values()])
    assert z.shape == (len(ys), len(xs)) and np.isfinite(z).all()
    with pytest.raises(ValueError, match="2-d"):
        widgets.quadratic_landscape(l2l.QuadraticProblem().tasks("test", [0]), [])


def test_panels_render_their_defaults():
    """Each panel's render function gives a figure for its default control values."""
    tasks = l2l.QuadraticProblem(dim=2).tasks("test", [0])
    panel = widgets.trajectory_panel(tasks, {"LSTM": l2l.CoordinatewiseLSTM()}, lr=0.05, steps=10)
    fig = panel.render(**panel.values())
    names = [d["name"] for d in figure_data(fig)]
    assert any(n.startswith("SGD: f_T =") for n in names) and any(n.startswith("LSTM") for n in names)
    for p in (widgets.architecture_panel(100), widgets.preprocessing_panel(10.0)):
        assert figure_data(p.render(**p.values()))


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
    from l2l_helpers.plotting import plot_images

    fig = plot_images({"a": torch.full((3, 4, 5), 2.0), "b": torch.zeros(3, 4, 5)}, cols=2)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert np.asarray(fig.data[0].z).max() == 255 and np.asarray(fig.data[1].z).max() == 0
    assert [a.text for a in fig.layout.annotations] == ["a", "b"]


@pytest.mark.slow
def test_quick_meta_training_beats_the_untrained_optimizer():
    """The panel's default short meta-training (notebooks 02 and 04) lowers the held-out final loss."""
    run = widgets.quick_meta_training()
    untrained, trained = run.curves["untrained LSTM"], run.curves["LSTM"]
    assert trained.mean_final < 0.2 * untrained.mean_final
    assert torch.equal(untrained.losses[:, 0], trained.losses[:, 0]), "both start from the same held-out tasks"


def test_quick_meta_training_shapes_and_callback():
    """One record (and one callback) per epoch; every curve has eval_tasks rows and steps + 1 columns."""
    seen = []
    run = widgets.quick_meta_training(
        1, 4, "none", 0.5, 2, 2, 3, steps=10, adam_lr=0.1, callback=lambda record, _result: seen.append(record)
    )
    assert [r["epoch"] for r in seen] == [1, 2] == [h["epoch"] for h in run.result.history]
    assert list(run.curves) == ["untrained LSTM", "LSTM", "Adam"]
    assert all(c.losses.shape == (3, 11) for c in run.curves.values())
    assert run.net.config == l2l.OptimizerConfig(1, 4, "none", output_scale=0.5)
    fig = widgets.quick_training_figure(run)
    assert fig.layout.title.text.startswith("1 x 4 LSTM, none, output scale 0.5, 2 epochs")
    names = [d["name"] for d in figure_data(fig)]
    assert names == ["meta-loss", "untrained LSTM", "LSTM", "Adam (lr 0.1)"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_layers": 0}, "num_layers"),
        ({"hidden_size": 2.5}, "hidden_size"),
        ({"preprocessing": "sqrt"}, "preprocessing"),
        ({"output_scale": 0.0}, "output_scale"),
        ({"epochs": 0}, "epochs"),
        ({"tasks_per_epoch": -1}, "tasks_per_epoch"),
        ({"eval_tasks": 0}, "eval_tasks"),
        ({"meta_lr": float("nan")}, "meta_lr"),
        ({"adam_lr": -0.1}, "adam_lr"),
    ],
)
def test_quick_meta_training_names_bad_values(kwargs, name):
    """A wrong setting raises ValueError naming it, before any training."""
    with pytest.raises(ValueError, match=name):
        widgets.quick_meta_training(**kwargs)


def test_architecture_training_panel_renders_and_refreshes(monkeypatch):
    """Headless it renders its defaults; moving a control re-renders, with a live meta-loss plot first."""
    import IPython.display
    import ipywidgets

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: shown.extend(objs))
    panel = widgets.architecture_training_panel(epochs=2, tasks_per_epoch=2, eval_tasks=2)
    assert set(panel.values()) == {"num_layers", "hidden_size", "preprocessing", "output_scale"}
    panel.show(interactive=False)
    assert len(shown) == 1 and shown[0].layout.title.text.startswith("2 x 20 LSTM, log_sign")
    shown.clear()
    panel.controls["num_layers"].value = 3  # what a reader's slider move does
    live, fig = shown
    assert isinstance(live, ipywidgets.Output) and not panel.live
    assert fig.layout.title.text.startswith("3 x 20 LSTM") and len(figure_data(fig)) == 4
    with pytest.raises(ValueError, match="epochs"):
        widgets.architecture_training_panel(epochs=0)
