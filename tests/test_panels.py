"""l2l_helpers.notebook.panels: every panel renders its defaults headless and re-renders when a control moves."""

from __future__ import annotations

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.notebook.plotting import figure_data


def test_lstm_vs_baselines_and_the_optimizee_panel():
    """The panel's function compares the learned optimizer with Adam tuned on the given grid."""
    net = l2l.CoordinatewiseLSTM()
    results = l2l.lstm_vs_baselines(net, (5,), "relu", n_tasks=1, steps=3, grid=(0.01,), baselines=("Adam",))
    assert list(results) == ["LSTM", "Adam"] and results["Adam"].lr == 0.01
    assert results["LSTM"].losses.shape == (1, 4)
    panel = l2l.panels.optimizee_panel(net, hidden=5, activation="tanh", n_tasks=1)
    assert panel.values() == {"hidden": 5, "layers": 1, "activation": "tanh"}


def test_panels_render_their_defaults():
    """Each panel's render function gives a figure for its default control values."""
    tasks = l2l.QuadraticProblem(dim=2).tasks("dev", [0])
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


def _recording_panel(render):
    """A panel of two controls, the second disabled by its builder, around ``render``."""
    import ipywidgets as w

    controls = {"n": w.IntSlider(value=1, min=1, max=5), "kind": w.Dropdown(options=["a", "b"], disabled=True)}
    return l2l.panels.Panel(controls, render, "test panel")


def test_panel_disables_its_controls_and_says_busy_while_it_renders(monkeypatch):
    """While render runs every control is disabled and the busy line shows; afterwards both are as before."""
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: None)
    seen = []

    def render(n: int, kind: str) -> str:
        seen.append((n, {k: c.disabled for k, c in panel.controls.items()}, panel.busy(), panel.status.value))
        return f"{n} {kind}"

    panel = _recording_panel(render)
    assert not panel.busy() and panel.status.layout.display == "none"
    panel.controls["n"].value = 3  # what a reader's slider move does
    ((n, disabled, busy, status),) = seen
    assert n == 3 and disabled == {"n": True, "kind": True} and busy and "computing" in status
    assert {k: c.disabled for k, c in panel.controls.items()} == {"n": False, "kind": True}
    assert not panel.busy() and panel.status.layout.display == "none" and not panel.live


def test_panel_recovers_and_shows_the_error_when_render_raises(monkeypatch):
    """A failing render leaves the controls enabled and the error in the panel; the next good render clears it."""
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: None)

    def render(n: int, kind: str) -> str:
        if n == 4:
            raise ValueError("n=4 is not allowed here")
        return "ok"

    panel = _recording_panel(render)
    panel.controls["n"].value = 4
    assert {k: c.disabled for k, c in panel.controls.items()} == {"n": False, "kind": True}
    assert panel.status.layout.display != "none" and "ValueError: n=4 is not allowed here" in panel.status.value
    assert not panel.live
    panel.controls["n"].value = 2
    assert panel.status.layout.display == "none" and panel.status.value == ""


def test_architecture_training_panel_trains_on_the_given_device(monkeypatch):
    """The notebook's device reaches the baseline's tuning and the meta-training, headless and on a control move."""
    import types

    import IPython.display

    from l2l_helpers.notebook import panels

    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: None)
    devices = []

    def tune(name, problem, n_tasks, device):
        devices.append(("tune", device))
        return types.SimpleNamespace(best_lr=0.1)

    def train(**kwargs):
        devices.append(("train", kwargs["device"]))
        return kwargs

    monkeypatch.setattr(panels, "tune_learning_rate", tune)
    monkeypatch.setattr(panels, "quick_meta_training", train)
    monkeypatch.setattr(panels, "plot_quick_training", lambda run: run)
    device = torch.device("meta")  # any device the notebook's l2l.setup returned
    panel = panels.architecture_training_panel(epochs=2, tasks_per_epoch=2, eval_tasks=2, device=device)
    run = panel.render(**panel.values())
    assert run["adam_lr"] == 0.1 and run["epochs"] == 2
    panel.controls["hidden_size"].value = 8
    assert devices == [("tune", device), ("train", device), ("train", device)]
