"""Interactive panels for the notebooks. Each panel's callback calls a plain, unit-tested function.

``panel.show(interactive)`` displays the controls and a live output in JupyterLab; with
``interactive=False`` (headless runs) it renders the same function once with the default values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .baselines import make_baseline
from .coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig, count_parameters
from .evaluation import trajectory
from .optimizees import QuadraticTasks
from .plotting import plot_trajectories_2d


class Panel:
    """Controls (ipywidgets) whose values are passed, by name, to ``render`` whenever one changes."""

    def __init__(self, controls: dict[str, Any], render: Callable[..., Any], title: str = "") -> None:
        import ipywidgets as w

        self.controls, self.render = controls, render
        self.output = w.Output()
        for control in controls.values():
            control.observe(lambda _change: self.refresh(), names="value")
        header = [w.HTML(f"<b>{title}</b>")] if title else []
        self.widget = w.VBox([*header, w.HBox(list(controls.values())), self.output])

    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self) -> None:
        """Re-render into the output area."""
        from IPython.display import clear_output, display

        with self.output:
            clear_output(wait=True)
            display(self.render(**self.values()))

    def show(self, interactive: bool = True) -> None:
        """Display the panel (interactive) or, headless, the rendering with the default values once."""
        from IPython.display import display

        if interactive:
            self.refresh()
            display(self.widget)
        else:
            display(self.render(**self.values()))


# --------------------------------------------------------------------------------------------
# Notebook 01: trajectories on a 2-d quadratic


def quadratic_landscape(tasks: QuadraticTasks, paths: list[np.ndarray], n: int = 80) -> tuple[np.ndarray, ...]:
    """Grid (xs, ys, log10 f) of task 0 of a 2-d quadratic, framing the paths and the minimum."""
    if tasks.dim != 2:
        raise ValueError(f"a 2-d picture needs a 2-d quadratic, got dim={tasks.dim}")
    w_mat, y = tasks.W[0].cpu().double(), tasks.y[0].cpu().double()
    optimum = torch.linalg.lstsq(w_mat, y.unsqueeze(-1)).solution.squeeze(-1).numpy()
    points = np.concatenate([np.concatenate(paths), optimum[None]], axis=0) if paths else optimum[None]
    low, high = points.min(0), points.max(0)
    pad = 0.15 * np.maximum(high - low, 0.5)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], n)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], n)
    grid = torch.tensor(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2))  # (n*n, 2)
    z = tasks.loss_at(grid.to(tasks.W.device).unsqueeze(0).expand(tasks.n_tasks, -1, -1))[0]
    return xs, ys, np.log10(z.cpu().numpy() + 1e-12).reshape(n, n)


def trajectories_2d(
    tasks: QuadraticTasks, names: tuple[str, ...], lr: float, steps: int, learned: dict[str, CoordinatewiseLSTM]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Path (steps + 1, 2) and losses of each named optimizer on task 0: baselines use ``lr``."""
    out = {}
    for name in names:
        rule = LearnedRule(learned[name], name) if name in learned else make_baseline(name, lr)
        losses, thetas = trajectory(rule, tasks, steps)
        out[name] = (thetas[:, 0].numpy(), losses[0].numpy())
    return out


def trajectory_panel(
    tasks: QuadraticTasks, learned: dict[str, CoordinatewiseLSTM], lr: float = 0.05, steps: int = 30
) -> Panel:
    """Learning rate, steps and optimizers -> their paths on a 2-d quadratic (notebook 01)."""
    import ipywidgets as w

    choices = ["SGD", "NAG", "RMSprop", "Adam", *learned]

    def render(lr: float, steps: int, names: tuple[str, ...]) -> Any:
        runs = trajectories_2d(tasks, names, lr, steps, learned)
        paths = {name: path for name, (path, _) in runs.items()}
        labels = {name: f"{name}: f_T = {loss[-1]:.3g}" for name, (_, loss) in runs.items()}
        landscape = quadratic_landscape(tasks, list(paths.values()))
        return plot_trajectories_2d(landscape, paths, f"{steps} steps, baselines at lr = {lr:.3g}", labels)

    controls = {
        "lr": w.FloatLogSlider(value=lr, base=10, min=-3, max=0, step=0.25, description="lr"),
        "steps": w.IntSlider(value=steps, min=5, max=100, step=5, description="steps"),
        "names": w.SelectMultiple(options=choices, value=("SGD", "Adam", *learned), description="optimizers"),
    }
    return Panel(controls, render, "Optimizers on a 2-d quadratic")


# --------------------------------------------------------------------------------------------
# Notebook 02: architecture of the coordinatewise LSTM


def architecture_summary(
    num_layers: int, hidden_size: int, preprocessing: str, n_coords: int = 15910, seed: int = 0
) -> dict[str, Any]:
    """Sizes of a coordinatewise LSTM (shared phi vs per-coordinate state) and its first update on sample gradients."""
    torch.manual_seed(seed)
    net = CoordinatewiseLSTM(OptimizerConfig(num_layers, hidden_size, preprocessing, output_scale=0.1))
    grads = torch.logspace(-8, 1, 10) * torch.tensor([1.0, -1.0]).repeat(5)
    with torch.no_grad():
        update, _ = net(grads, net.init_state(grads.numel()))
    return {
        "parameters": count_parameters(net),
        "state_per_coordinate": 2 * num_layers * hidden_size,
        "state_floats": 2 * num_layers * hidden_size * n_coords,
        "one_lstm_per_coordinate": count_parameters(net) * n_coords,
        "grads": grads.numpy(),
        "updates": update.numpy(),
    }


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

    from .plotting import plot_preprocessing

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

        from .plotting import plot_meta_training

        if record["epoch"] % self.every == 0:
            with self.output:
                clear_output(wait=True)
                display(plot_meta_training(result, self.title))


def live_plot(interactive: bool, every: int = 10, title: str = "Meta-training") -> LivePlot | None:
    """A :class:`LivePlot` in interactive sessions; None (no live output) in headless runs."""
    return LivePlot(every, title) if interactive else None


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
    """Hidden units, layers, activation -> the learned optimizer vs tuned Adam on held-out MLPs, live."""
    import ipywidgets as w

    from .experiments import lstm_vs_adam
    from .optimizees import ACTIVATIONS
    from .plotting import plot_loss_curves

    def render(hidden: int, layers: int, activation: str) -> Any:
        results = lstm_vs_adam(net, (hidden,) * layers, activation, n_tasks, device=device)
        shape = "-".join(["784", *[str(hidden)] * layers, "10"])
        lstm, adam = results["LSTM"].mean_final, results["Adam"].mean_final
        return plot_loss_curves(
            results, f"MLP {shape}, {activation}: final loss LSTM {lstm:.3g} vs Adam {adam:.3g} ({n_tasks} tasks)"
        )

    controls = {
        "hidden": w.IntSlider(
            value=hidden, min=5, max=100, step=5, description="hidden units", continuous_update=False
        ),
        "layers": w.IntSlider(value=layers, min=1, max=3, description="layers", continuous_update=False),
        "activation": w.Dropdown(options=list(ACTIVATIONS), value=activation, description="activation"),
    }
    return Panel(controls, render, "The MNIST-trained optimizer, unchanged, on another network")
