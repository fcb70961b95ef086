"""Interactive panels for the notebooks. Each panel's callback calls a plain, unit-tested function.

``panel.show(interactive)`` displays the controls and a live output in JupyterLab; with
``interactive=False`` (headless runs) it renders the same function once with the default values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from l2l_helpers.evaluation.loops import trajectories_2d
from l2l_helpers.evaluation.tuning import tune_learning_rate
from l2l_helpers.meta.quick import architecture_summary, quick_meta_training
from l2l_helpers.notebook.diagrams import plot_preprocessing, plot_trajectories_2d
from l2l_helpers.notebook.plotting import plot_loss_curves, plot_meta_training, plot_quick_training
from l2l_helpers.notebook.tables import lstm_vs_baselines
from l2l_helpers.optimizees import ACTIVATIONS, QuadraticProblem
from l2l_helpers.optimizees.quadratic import QuadraticTasks, landscape
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM
from l2l_helpers.runtime import check_positive_int


class Panel:
    """Controls (ipywidgets) whose values are passed, by name, to ``render`` whenever one changes.

    While ``render`` runs the controls are disabled and a busy line says so; both come back when it ends, also
    when it raises (the error is then shown in the busy line's place). ``live`` is True while ``render`` runs
    inside the panel's output area (interactive sessions), so a slow render may draw its progress there;
    headless renders see False.
    """

    BUSY = "<i>computing&hellip;</i> (the controls wait until it is done)"

    def __init__(self, controls: dict[str, Any], render: Callable[..., Any], title: str = "") -> None:
        import ipywidgets as w

        self.controls, self.render, self.live = controls, render, False
        self.output = w.Output()
        self.status = w.HTML("", layout=w.Layout(display="none"))
        for control in controls.values():
            control.observe(lambda _change: self.refresh(), names="value")
        header = [w.HTML(f"<b>{title}</b>")] if title else []
        row = w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([*header, row, self.status, self.output])

    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def busy(self) -> bool:
        """True while ``render`` runs (its busy line is shown)."""
        return self.status.layout.display != "none"

    def _say(self, html: str) -> None:
        """Show ``html`` in the busy line, or hide the line when it is empty."""
        self.status.value = html
        self.status.layout.display = None if html else "none"

    def refresh(self) -> None:
        """Re-render into the output area, the controls disabled and the busy line shown meanwhile."""
        import html
        import traceback

        from IPython.display import clear_output, display

        was_disabled = {name: control.disabled for name, control in self.controls.items()}
        for control in self.controls.values():
            control.disabled = True
        self._say(self.BUSY)
        failed = ""
        with self.output:
            clear_output(wait=True)
            self.live = True
            try:
                display(self.render(**self.values()))
            except Exception as exc:  # shown in the panel: a callback's error would otherwise only reach the log
                failed = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                self.live = False
                for name, control in self.controls.items():
                    control.disabled = was_disabled[name]
                self._say(f'<span style="color:#c0392b"><b>Failed:</b> {html.escape(failed)}</span>' if failed else "")

    def show(self, interactive: bool = True) -> None:
        """Display the panel (interactive) or, headless, the rendering with the default values once."""
        from IPython.display import display

        if interactive:
            display(self.widget)
            self.refresh()
        else:
            display(self.render(**self.values()))


# --------------------------------------------------------------------------------------------
# Notebook 01: trajectories on a 2-d quadratic


def trajectory_panel(
    tasks: QuadraticTasks,
    learned: dict[str, CoordinatewiseLSTM],
    lr: float | Mapping[str, float] = 0.05,
    steps: int = 30,
) -> Panel:
    """Steps, optimizers and the baselines' learning rates -> their paths on a 2-d quadratic (notebook 01).

    ``lr`` is one rate for every baseline or each baseline's own (tuned) rate; the slider multiplies them
    (1 = as given), so each optimizer starts from its own best rate rather than one shared one.
    """
    import ipywidgets as w

    rates = dict(lr) if isinstance(lr, Mapping) else dict.fromkeys(("SGD", "NAG", "RMSprop", "Adam"), float(lr))
    choices = [*rates, *learned]

    def render(factor: float, steps: int, names: tuple[str, ...]) -> Any:
        scaled = {name: rate * factor for name, rate in rates.items()}
        runs = trajectories_2d(tasks, names, scaled, steps, learned)
        paths = {name: path for name, (path, _) in runs.items()}
        labels = {
            name: f"{name}{f' (lr {scaled[name]:.3g})' if name in scaled else ''}: f_T = {loss[-1]:.3g}"
            for name, (_, loss) in runs.items()
        }
        grid = landscape(tasks, list(paths.values()))
        return plot_trajectories_2d(grid, paths, f"{steps} steps, baselines at {factor:.3g} x their rates", labels)

    controls = {
        "factor": w.FloatLogSlider(value=1.0, base=10, min=-2, max=1, step=0.25, description="lr factor"),
        "steps": w.IntSlider(value=steps, min=5, max=100, step=5, description="steps"),
        "names": w.SelectMultiple(
            options=choices, value=tuple(n for n in ("SGD", "Adam", *learned) if n in choices), description="optimizers"
        ),
    }
    return Panel(controls, render, "Optimizers on a 2-d quadratic")


# --------------------------------------------------------------------------------------------
# Notebook 02: architecture of the coordinatewise LSTM


def architecture_panel(n_coords: int = 15910) -> Panel:
    """Layers, hidden units, preprocessing -> parameter counts and a forward pass (notebook 02)."""
    import ipywidgets as w
    import plotly.graph_objects as go

    def render(num_layers: int, hidden_size: int, preprocessing: str) -> Any:
        s = architecture_summary(num_layers, hidden_size, preprocessing, n_coords)
        fig = go.Figure(go.Bar(x=[f"{g:.0e}" for g in s["grads"]], y=s["updates"], name="update"))
        fig.update_layout(
            title=(
                f"{s['parameters']:,} shared parameters phi; state {s['state_per_coordinate']} floats per coordinate "
                f"({s['state_floats']:,} for {n_coords:,} coordinates); one LSTM per coordinate would need "
                f"{s['one_lstm_per_coordinate']:,}"
            ),
            xaxis_title="gradient of one coordinate",
            yaxis_title="first update (untrained)",
            template="plotly_white",
            title_font_size=12,
        )
        return fig

    controls = {
        "num_layers": w.IntSlider(value=2, min=1, max=4, description="layers"),
        "hidden_size": w.IntSlider(value=20, min=2, max=64, step=2, description="hidden units"),
        "preprocessing": w.Dropdown(options=["log_sign", "log_sign_smooth", "none"], value="log_sign"),
    }
    return Panel(controls, render, "Coordinatewise LSTM: what the architecture costs")


# --------------------------------------------------------------------------------------------
# Notebook 03: the preprocessing constant p


def preprocessing_panel(p: float = 10.0) -> Panel:
    """Slider for p and a choice of preprocessing -> both LSTM input channels over |g| = 1e-12 .. 1e3."""
    import ipywidgets as w

    controls = {
        "p": w.FloatSlider(value=p, min=1, max=20, step=0.5, description="p"),
        "kind": w.Dropdown(options=["log_sign", "log_sign_smooth"], value="log_sign", description="kind"),
    }
    return Panel(controls, lambda p, kind: plot_preprocessing(p=p, kind=kind), "Preprocessing of one gradient")


# --------------------------------------------------------------------------------------------
# Notebook 04: a live meta-training plot


class LivePlot:
    """A ``meta_train`` callback that redraws the meta-training curves every ``every`` epochs."""

    def __init__(self, every: int = 10, title: str = "Meta-training") -> None:
        import ipywidgets as w
        from IPython.display import display

        self.every, self.title = every, title
        self.output = w.Output()
        display(self.output)

    def __call__(self, record: dict[str, Any], result: Any) -> None:
        from IPython.display import clear_output, display

        if record["epoch"] % self.every == 0:
            with self.output:
                clear_output(wait=True)
                display(plot_meta_training(result, self.title))


def live_plot(interactive: bool, every: int = 10, title: str = "Meta-training") -> LivePlot | None:
    """A :class:`LivePlot` in interactive sessions; None (no live output) in headless runs."""
    return LivePlot(every, title) if interactive else None


# --------------------------------------------------------------------------------------------
# Notebooks 02 and 04: rebuild the optimizer, meta-train it briefly, test it on held-out quadratics


def architecture_training_panel(
    epochs: int = 20, tasks_per_epoch: int = 16, eval_tasks: int = 16, seed: int = 0, device: torch.device | str = "cpu"
) -> Panel:
    """LSTM layers, hidden units, preprocessing on/off, output scale -> a short meta-training (notebooks 02, 04)."""
    import ipywidgets as w

    for name, value in (("epochs", epochs), ("tasks_per_epoch", tasks_per_epoch), ("eval_tasks", eval_tasks)):
        check_positive_int(name, value)
    # Adam's learning rate, tuned once on training quadratics (never the held-out ones)
    adam = tune_learning_rate("adam", QuadraticProblem(), n_tasks=8, device=device)
    sizes = {"epochs": epochs, "tasks_per_epoch": tasks_per_epoch, "eval_tasks": eval_tasks, "seed": seed}

    def render(**architecture: Any) -> Any:
        shape = f"{architecture['num_layers']} x {architecture['hidden_size']} LSTM"
        live = LivePlot(every=5, title=f"Meta-training a {shape} (live)") if panel.live else None
        run = quick_meta_training(**architecture, **sizes, adam_lr=adam.best_lr, device=device, callback=live)
        if live is not None:
            live.output.clear_output()  # the final figure below repeats the meta-loss
        return plot_quick_training(run)

    style, fixed = {"description_width": "initial"}, {"continuous_update": False}
    controls = {
        "num_layers": w.IntSlider(value=2, min=1, max=3, description="LSTM layers", style=style, **fixed),
        "hidden_size": w.IntSlider(value=20, min=4, max=40, step=4, description="hidden units", style=style, **fixed),
        "preprocessing": w.Dropdown(
            options=[("on: log|g| / p and sign g", "log_sign"), ("off: raw g", "none")],
            value="log_sign",
            description="preprocessing",
            style=style,
        ),
        "output_scale": w.FloatLogSlider(
            value=0.1, base=10, min=-2, max=0, step=0.5, description="output scale", style=style, **fixed
        ),
    }
    panel = Panel(controls, render, f"Rebuild the optimizer and meta-train it: {epochs} epochs on quadratics")
    return panel


# --------------------------------------------------------------------------------------------
# Notebooks 07 and 08: the MNIST-trained optimizer on other networks


def optimizee_panel(
    net: CoordinatewiseLSTM,
    hidden: int = 20,
    layers: int = 1,
    activation: str = "sigmoid",
    n_tasks: int = 4,
    device: torch.device | str = "cpu",
) -> Panel:
    """Hidden units, layers, activation -> the learned optimizer vs tuned NAG and Adam on held-out MLPs, live.

    The baselines' learning rates are tuned on a coarse grid (:data:`~l2l_helpers.notebook.tables.PANEL_LR_GRID`) on
    training networks of the chosen shape; all three run on the same held-out networks.
    """
    import ipywidgets as w

    def render(hidden: int, layers: int, activation: str) -> Any:
        results = lstm_vs_baselines(net, (hidden,) * layers, activation, n_tasks, device=device)
        shape = "-".join(["784", *[str(hidden)] * layers, "10"])
        finals = ", ".join(f"{name} {res.mean_final:.3g}" for name, res in results.items())
        return plot_loss_curves(results, f"MLP {shape}, {activation}: final loss {finals} ({n_tasks} tasks)")

    controls = {
        "hidden": w.IntSlider(
            value=hidden, min=5, max=100, step=5, description="hidden units", continuous_update=False
        ),
        "layers": w.IntSlider(value=layers, min=1, max=3, description="layers", continuous_update=False),
        "activation": w.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
    }
    return Panel(controls, render, "The MNIST-trained optimizer, unchanged, on another network")


# --------------------------------------------------------------------------------------------
# Notebook 10: the convnet on a label subset of your choice


def label_subset_panel(
    learned: Mapping[str, Any],
    data: Any,
    lrs: Mapping[str, float],
    labels: tuple[int, ...] = (0, 1),
    n_tasks: int = 1,
    steps: int = 100,
    device: torch.device | str = "cpu",
) -> Panel:
    """Pick the labels (two or more of ``data.classes``) -> the learned optimizers (``learned``: name -> network)
    and the baselines at the rates ``lrs`` (name -> learning rate, tuned by the notebook on all labels) on
    ``n_tasks`` held-out convnets of that label subset, live."""
    import ipywidgets as w

    from l2l_helpers.evaluation.loops import evaluate_rules
    from l2l_helpers.optimizees.conv import ConvProblem
    from l2l_helpers.optimizer.baselines import make_baseline
    from l2l_helpers.optimizer.coordinatewise_lstm import LearnedRule

    check_positive_int("n_tasks", n_tasks)
    check_positive_int("steps", steps)
    rules = {name: LearnedRule(net, name) for name, net in learned.items()}
    rules |= {name: make_baseline(name, lr) for name, lr in lrs.items()}

    def render(chosen: tuple[int, ...]) -> Any:
        from IPython.display import Markdown

        try:
            problem = ConvProblem(data, labels=sorted(chosen))
        except ValueError as exc:
            return Markdown(f"**Pick again:** {exc}")
        results = evaluate_rules(rules, problem, n_tasks, steps, "dev", device)
        names = ", ".join(data.classes[k] for k in sorted(chosen))
        finals = ", ".join(f"{name} {res.mean_final:.3g}" for name, res in results.items())
        return plot_loss_curves(results, f"{len(chosen)} labels ({names}): final loss {finals}", band="none")

    options = [(f"{k}: {name}", k) for k, name in enumerate(data.classes)]
    control = w.SelectMultiple(options=options, value=tuple(labels), rows=len(options), description="labels")
    return Panel({"chosen": control}, render, "The convnet optimizers on a label subset of your choice")
