"""Plotly figures used across the notebooks. Every function returns a ``go.Figure`` and never shows it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from .evaluation import EvalResult
from .meta_training import MetaTrainResult
from .preprocessing import preprocess

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
) -> go.Figure:
    """Mean loss per step with a shaded band (inter-quartile range or +-1 std) for each optimizer (Figure 4)."""
    if band not in ("quartiles", "std", "none"):
        raise ValueError(f"band={band!r} is unknown; use 'quartiles', 'std' or 'none'")
    items = list(results.items()) if isinstance(results, Mapping) else [(r.name, r) for r in results]
    fig = go.Figure()
    for i, (name, res) in enumerate(items):
        steps = np.arange(res.steps + 1)
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
    fig.update_layout(title=title, xaxis_title="step t", yaxis_title="loss f(theta_t)", template="plotly_white")
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


def plot_preprocessing(p: float = 10.0, low: float = 1e-12, high: float = 1e3, kind: str = "log_sign") -> go.Figure:
    """Both input channels of the preprocessing as functions of the gradient magnitude (Appendix A)."""
    magnitudes = torch.logspace(math.log10(low), math.log10(high), 400, dtype=torch.float64)
    fig = go.Figure()
    for sign, dash in ((1.0, "solid"), (-1.0, "dash")):
        x = preprocess(sign * magnitudes, kind, p)
        label = "g > 0" if sign > 0 else "g < 0"
        fig.add_trace(go.Scatter(x=magnitudes, y=x[:, 0], name=f"log channel, {label}", line={"dash": dash}))
        if x.shape[1] > 1:
            fig.add_trace(go.Scatter(x=magnitudes, y=x[:, 1], name=f"sign channel, {label}", line={"dash": dash}))
    fig.add_vline(x=math.exp(-p), line_dash="dot", annotation_text="|g| = e^-p")
    fig.update_layout(title=f"Preprocessing '{kind}', p = {p:g}", xaxis_title="|g|", yaxis_title="LSTM input")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_layout(template="plotly_white")
    return fig


def plot_bar(values: Mapping[str, float], title: str, yaxis_title: str, log_y: bool = False) -> go.Figure:
    """One bar per named value (e.g. final losses of several optimizers)."""
    names = list(values)
    fig = go.Figure(
        go.Bar(x=names, y=[values[n] for n in names], marker_color=[color_of(n, i) for i, n in enumerate(names)])
    )
    fig.update_layout(title=title, yaxis_title=yaxis_title, template="plotly_white")
    if log_y:
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
