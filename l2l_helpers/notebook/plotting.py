"""Plotly figures used across the notebooks. Every function returns a ``go.Figure`` and never shows it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from l2l_helpers.evaluation.loops import EvalResult
from l2l_helpers.meta.training_state import MetaTrainResult

#: One colour per optimizer, the same in every notebook.
COLORS: dict[str, str] = {
    "LSTM": "#d62728",
    "Adam": "#1f77b4",
    "RMSprop": "#2ca02c",
    "SGD": "#9467bd",
    "NAG": "#ff7f0e",
    "untrained LSTM": "#7f7f7f",
}
_FALLBACK = ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939"]


def color_of(name: str, index: int = 0) -> str:
    """The colour of an optimizer's curves."""
    return COLORS.get(name, _FALLBACK[index % len(_FALLBACK)])


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def plot_loss_curves(
    results: Mapping[str, EvalResult] | Iterable[EvalResult],
    title: str = "Loss on held-out tasks",
    log_y: bool = True,
    band: str = "quartiles",
    seconds_per_step: Mapping[str, float] | None = None,
) -> go.Figure:
    """Mean loss per step with a shaded band (inter-quartile range or +-1 std) for each optimizer (Figure 4).

    ``seconds_per_step`` (one per optimizer, e.g. measured by :func:`~l2l_helpers.evaluation.step_cost.step_times`)
    puts the
    curves against wall-clock seconds instead of steps (notebook 11)."""
    if band not in ("quartiles", "std", "none"):
        raise ValueError(f"band={band!r} is unknown; use 'quartiles', 'std' or 'none'")
    items = list(results.items()) if isinstance(results, Mapping) else [(r.name, r) for r in results]
    if seconds_per_step is not None and (missing := [n for n, _ in items if n not in seconds_per_step]):
        raise ValueError(f"seconds_per_step has no time for {missing}: give one per optimizer")
    fig = go.Figure()
    for i, (name, res) in enumerate(items):
        steps = np.arange(res.steps + 1) * (1.0 if seconds_per_step is None else seconds_per_step[name])
        color = color_of(name, i)
        if band != "none" and res.losses.shape[0] > 1:
            if band == "quartiles":
                low, high = res.quantile(0.25).numpy(), res.quantile(0.75).numpy()
            else:
                mean, std = res.mean.numpy(), res.std.numpy()
                low, high = mean - std, mean + std
                if log_y:
                    low = np.maximum(low, mean * 1e-3)
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([steps, steps[::-1]]),
                    y=np.concatenate([high, low[::-1]]),
                    fill="toself",
                    fillcolor=_rgba(color, 0.15),
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=name,
                )
            )
        label = f"{name} (lr {res.lr:.3g})" if res.lr is not None else name
        fig.add_trace(
            go.Scatter(x=steps, y=res.mean.numpy(), name=label, line={"color": color, "width": 2}, legendgroup=name)
        )
    x_title = "step t" if seconds_per_step is None else "seconds (steps x measured time per step)"
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="loss f(theta_t)", template="plotly_white")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def plot_meta_training(result: MetaTrainResult, title: str = "Meta-training") -> go.Figure:
    """Meta-loss of every training trajectory and the validation meta-loss on held-out tasks."""
    epochs = [h["epoch"] for h in result.history]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=epochs, y=[h["meta_loss"] for h in result.history], name="training trajectory", mode="lines")
    )
    if result.val_history:
        fig.add_trace(
            go.Scatter(
                x=[v["epoch"] for v in result.val_history],
                y=[v["val_meta_loss"] for v in result.val_history],
                name="held-out validation",
                mode="lines+markers",
            )
        )
    if result.best_epoch is not None:
        fig.add_vline(x=result.best_epoch, line_dash="dot", annotation_text="best (kept)")
    fig.update_layout(
        title=title, xaxis_title="epoch", yaxis_title="meta-loss sum_t f(theta_t)", template="plotly_white"
    )
    fig.update_yaxes(type="log")
    return fig


def plot_histograms(samples: Mapping[str, Sequence[float] | np.ndarray], title: str, xaxis_title: str) -> go.Figure:
    """Overlaid normalized histograms, e.g. of gradient magnitudes under two activations."""
    fig = go.Figure()
    for i, (name, values) in enumerate(samples.items()):
        fig.add_trace(
            go.Histogram(
                x=np.asarray(values), name=name, opacity=0.6, histnorm="probability", marker_color=color_of(name, i)
            )
        )
    fig.update_layout(barmode="overlay", title=title, xaxis_title=xaxis_title, template="plotly_white")
    return fig


def figure_data(fig: go.Figure) -> list[dict[str, Any]]:
    """Name, x and y of every named trace: what tests check instead of pixels."""
    return [
        {"name": t.name, "x": np.asarray(t.x), "y": np.asarray(t.y)}
        for t in fig.data
        if getattr(t, "name", None) and getattr(t, "x", None) is not None
    ]


def plot_images(
    images: Mapping[str, torch.Tensor] | Sequence[tuple[str, torch.Tensor]],
    cols: int = 4,
    title: str = "",
    size: int = 180,
) -> go.Figure:
    """A grid of RGB images (each a tensor (3, H, W), values clipped to [0, 1]) with their names as titles, filled
    row by row; ``images`` is a mapping or (title, image) pairs, so that titles may repeat (Figure 8's rows)."""
    from plotly.subplots import make_subplots

    pairs = list(images.items()) if isinstance(images, Mapping) else list(images)
    names = [name for name, _ in pairs]
    rows = max(1, math.ceil(len(names) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.02, vertical_spacing=0.08)
    for i, (name, image) in enumerate(pairs):
        pixels = (image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        fig.add_trace(go.Image(z=pixels, name=name), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=size * rows + 60, width=size * cols + 40, margin={"t": 70, "b": 10})
    fig.update_annotations(font_size=11)
    return fig


def plot_lr_grid(tuned: Mapping[str, Any], title: str = "Learning-rate grid search on training tasks") -> go.Figure:
    """Score of every learning rate tried for each baseline (``TuningResult``s), best one marked."""
    fig = go.Figure()
    for i, (name, t) in enumerate(tuned.items()):
        lrs = sorted(t.scores)
        scores = [t.scores[lr] if math.isfinite(t.scores[lr]) else None for lr in lrs]
        color = color_of(name, i)
        fig.add_trace(go.Scatter(x=lrs, y=scores, name=name, mode="lines+markers", line={"color": color}))
        fig.add_trace(
            go.Scatter(
                x=[t.best_lr],
                y=[t.scores[t.best_lr]],
                mode="markers",
                marker={"symbol": "star", "size": 14, "color": color},
                name=f"{name} best: {t.best_lr:.3g}",
                showlegend=False,
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="learning rate (gaps: diverged)",
        yaxis_title=f"mean {next(iter(tuned.values())).criterion} loss" if tuned else "score",
        template="plotly_white",
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def plot_final_losses(results: Mapping[str, EvalResult], title: str = "Final loss of every held-out task") -> go.Figure:
    """One box (with the points) per optimizer: the spread behind the mean curves."""
    fig = go.Figure()
    for i, (name, res) in enumerate(results.items()):
        fig.add_trace(
            go.Box(y=res.final.numpy(), name=name, boxpoints="all", jitter=0.4, marker_color=color_of(name, i))
        )
    fig.update_layout(title=title, yaxis_title="f(theta_T)", template="plotly_white", showlegend=False)
    fig.update_yaxes(type="log")
    return fig


def plot_quick_training(run: Any) -> go.Figure:
    """Meta-loss per epoch (left) and held-out mean loss per step (right) of a ``studies.quick_meta_training`` run."""
    from plotly.subplots import make_subplots

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


def plot_panels(
    panels: Mapping[str, Mapping[str, EvalResult]], title: str = "", log_y: bool = True, height: int = 380
) -> go.Figure:
    """Mean loss curves side by side, one panel per setting (notebook 10's Figure 6: all labels, 5, 2), each
    optimizer in the same colour in every panel and once in the legend."""
    from plotly.subplots import make_subplots

    if not panels:
        raise ValueError("panels is empty: give at least one setting's results")
    names = list(dict.fromkeys(n for res in panels.values() for n in res))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels), horizontal_spacing=0.06)
    shown: set[str] = set()
    for col, res in enumerate(panels.values(), start=1):
        for name, r in res.items():
            color = color_of(name, names.index(name))
            trace = go.Scatter(
                x=np.arange(r.steps + 1),
                y=r.mean.numpy(),
                name=name,
                legendgroup=name,
                showlegend=name not in shown,
                line={"color": color, "width": 2.5 if name.startswith("LSTM") else 1.5},
            )
            fig.add_trace(trace, row=1, col=col)
            shown.add(name)
    fig.update_layout(title=title, template="plotly_white", height=height)
    fig.update_xaxes(title_text="step t")
    fig.update_yaxes(title_text="loss f(theta_t)", row=1, col=1)
    if log_y:
        fig.update_yaxes(type="log")
    return fig
