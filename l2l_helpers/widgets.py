"""Interactive panels for the notebooks. Each panel's callback calls a plain, unit-tested function.

``panel.show(interactive)`` displays the controls and a live output in JupyterLab; with
``interactive=False`` (headless runs) it renders the same function once with the default values.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .baselines import make_baseline
from .coordinatewise_lstm import CoordinatewiseLSTM, LearnedRule, OptimizerConfig, count_parameters
from .evaluation import EvalResult, check_positive_int, evaluate, trajectory, tune_learning_rate
from .meta_training import MetaTrainConfig, MetaTrainResult, meta_train
from .optimizees import QuadraticProblem, QuadraticTasks
from .plotting import plot_trajectories_2d


class Panel:
    """Controls (ipywidgets) whose values are passed, by name, to ``render`` whenever one changes.

    ``live`` is True while ``render`` runs inside the panel's output area (interactive sessions), so a
    slow render may draw its progress there; headless renders see False.
    """

    def __init__(self, controls: dict[str, Any], render: Callable[..., Any], title: str = "") -> None:
        import ipywidgets as w

        self.controls, self.render, self.live = controls, render, False
        self.output = w.Output()
        for control in controls.values():
            control.observe(lambda _change: self.refresh(), names="value")
        header = [w.HTML(f"<b>{title}</b>")] if title else []
        row = w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap"))
        self.widget = w.VBox([*header, row, self.output])

    def values(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self) -> None:
        """Re-render into the output area."""
        from IPython.display import clear_output, display

        with self.output:
            clear_output(wait=True)
            self.live = True
            try:
                display(self.render(**self.values()))
            finally:
                self.live = False

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
# Notebooks 02 and 04: rebuild the optimizer, meta-train it briefly, test it on held-out quadratics


@dataclass
class QuickTraining:
    """What :func:`quick_meta_training` made: the optimizer, its meta-training record, held-out curves."""

    net: CoordinatewiseLSTM
    result: MetaTrainResult
    curves: dict[str, EvalResult]  # "untrained LSTM", "LSTM" and, given adam_lr, "Adam"; same held-out tasks
    seconds: float  # meta-training and evaluation

    @property
    def label(self) -> str:
        """The architecture in words, e.g. ``2 x 20 LSTM, log_sign, output scale 0.1``."""
        c = self.net.config
        return f"{c.num_layers} x {c.hidden_size} LSTM, {c.preprocessing}, output scale {c.output_scale:.3g}"


def quick_meta_training(
    num_layers: int = 2,
    hidden_size: int = 20,
    preprocessing: str = "log_sign",
    output_scale: float = 0.1,
    epochs: int = 20,
    tasks_per_epoch: int = 16,
    eval_tasks: int = 16,
    steps: int = 100,
    meta_lr: float = 0.01,
    adam_lr: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    callback: Callable[[dict[str, Any], MetaTrainResult], None] | None = None,
) -> QuickTraining:
    """Build g_phi (Section 2.1), meta-train it briefly on 10-d quadratics (Section 2), test it on held-out ones.

    The untrained network (the same initial phi) and, given ``adam_lr``, Adam run on the same held-out
    tasks. About 3 s on one CPU core with the defaults (20 epochs of 16 quadratics).
    """
    config = OptimizerConfig(num_layers, hidden_size, preprocessing, output_scale=output_scale)  # checks them
    check_positive_int("eval_tasks", eval_tasks)
    check_positive_int("steps", steps)
    for name, value in (("meta_lr", meta_lr), ("adam_lr", 1.0 if adam_lr is None else adam_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValueError(f"{name}={value!r} must be a positive finite number")
    train = MetaTrainConfig(  # checks epochs, tasks_per_epoch and seed (which picks the training tasks)
        epochs=epochs,
        steps=steps,
        unroll=min(20, steps),
        lr=meta_lr,
        tasks_per_epoch=tasks_per_epoch,
        val_every=0,
        seed=seed,
    )
    start = time.perf_counter()
    torch.manual_seed(seed)
    net = CoordinatewiseLSTM(config).to(device)
    untrained = copy.deepcopy(net)
    problem = QuadraticProblem()
    result = meta_train(net, problem, train, progress=False, callback=callback)
    rules: dict[str, Any] = {"untrained LSTM": LearnedRule(untrained), "LSTM": LearnedRule(net)}
    if adam_lr is not None:
        rules["Adam"] = make_baseline("adam", adam_lr)
    curves = {
        name: evaluate(rule, problem, eval_tasks, steps, "test", device, name=name) for name, rule in rules.items()
    }
    return QuickTraining(net, result, curves, time.perf_counter() - start)


def quick_training_figure(run: QuickTraining) -> Any:
    """Meta-loss per epoch (left) and held-out mean loss per step (right) of a :func:`quick_meta_training`."""
    from plotly.subplots import make_subplots

    from .plotting import color_of

    epochs = [h["epoch"] for h in run.result.history]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("meta-training", "held-out quadratics"))
    meta_loss = [h["meta_loss"] for h in run.result.history]
    fig.add_scatter(x=epochs, y=meta_loss, name="meta-loss", showlegend=False, row=1, col=1)
    for i, (name, res) in enumerate(run.curves.items()):
        label = f"{name} (lr {res.lr:.3g})" if res.lr is not None else name
        steps = np.arange(res.steps + 1)
        fig.add_scatter(x=steps, y=res.mean.numpy(), name=label, line={"color": color_of(name, i)}, row=1, col=2)
    finals = ", ".join(f"{name} {res.mean_final:.3g}" for name, res in run.curves.items())
    fig.update_layout(
        title=f"{run.label}, {len(epochs)} epochs ({run.seconds:.0f} s). Held-out final loss: {finals}",
        template="plotly_white",
        title_font_size=13,
    )
    fig.update_xaxes(title_text="epoch", row=1, col=1)
    fig.update_xaxes(title_text="step t", row=1, col=2)
    fig.update_yaxes(type="log", title_text="sum_t f(theta_t)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="mean f(theta_t)", row=1, col=2)
    return fig


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
        return quick_training_figure(run)

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
