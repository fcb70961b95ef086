"""l2l_helpers.panels: every panel renders its defaults headless and re-renders when a control moves."""

from __future__ import annotations

import pytest

import l2l_helpers as l2l
from l2l_helpers.plotting import (
    figure_data,
)


def test_lstm_vs_baselines_and_the_optimizee_panel():
    """The panel's function compares the learned optimizer with Adam tuned on the given grid."""
    net = l2l.CoordinatewiseLSTM()
    results = l2l.studies.lstm_vs_baselines(net, (5,), "relu", n_tasks=1, steps=3, grid=(0.01,), baselines=("Adam",))
    assert list(results) == ["LSTM", "Adam"] and results["Adam"].lr == 0.01
    assert results["LSTM"].losses.shape == (1, 4)
    panel = l2l.panels.optimizee_panel(net, hidden=5, activation="tanh", n_tasks=1)
    assert panel.values() == {"hidden": 5, "layers": 1, "activation": "tanh"}


def test_panels_render_their_defaults():
    """Each panel's render function gives a figure for its default control values."""
    tasks = l2l.QuadraticProblem(dim=2).tasks("test", [0])
    panel = l2l.panels.trajectory_panel(tasks, {"LSTM": l2l.CoordinatewiseLSTM()}, lr=0.05, steps=10)
    fig = panel.render(**panel.values())
    names = [d["name"] for d in figure_data(fig)]
    assert any(n.startswith("SGD (lr 0.05): f_T =") for n in names) and any(n.startswith("LSTM") for n in names)
    # each baseline its own rate, the slider a factor on all of them
    own = l2l.panels.trajectory_panel(tasks, {}, lr={"SGD": 0.1, "Adam": 0.3}, steps=10)
    names = [d["name"] for d in figure_data(own.render(factor=0.5, steps=10, names=("SGD", "Adam")))]
    assert any(n.startswith("SGD (lr 0.05)") for n in names) and any(n.startswith("Adam (lr 0.15)") for n in names)
    for p in (l2l.panels.architecture_panel(100), l2l.panels.preprocessing_panel(10.0)):
        assert figure_data(p.render(**p.values()))


def test_architecture_training_panel_renders_and_refreshes(monkeypatch):
    """Headless it renders its defaults; moving a control re-renders, with a live meta-loss plot first."""
    import IPython.display
    import ipywidgets

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: shown.extend(objs))
    panel = l2l.panels.architecture_training_panel(epochs=2, tasks_per_epoch=2, eval_tasks=2)
    assert set(panel.values()) == {"num_layers", "hidden_size", "preprocessing", "output_scale"}
    panel.show(interactive=False)
    assert len(shown) == 1 and shown[0].layout.title.text.startswith("2 x 20 LSTM, log_sign")
    shown.clear()
    panel.controls["num_layers"].value = 3  # what a reader's slider move does
    live, fig = shown
    assert isinstance(live, ipywidgets.Output) and not panel.live
    assert fig.layout.title.text.startswith("3 x 20 LSTM") and len(figure_data(fig)) == 4
    with pytest.raises(ValueError, match="epochs"):
        l2l.panels.architecture_training_panel(epochs=0)
