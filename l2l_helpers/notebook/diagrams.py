"""Figures that explain rather than report: the paper's computational graph (Figure 2), optimizer trajectories on a
2-D quadratic, the preprocessing's two inputs (Appendix A)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
import torch

from l2l_helpers.notebook.plotting import color_of
from l2l_helpers.optimizer.preprocessing import preprocess


def plot_preprocessing(p: float = 10.0, low: float = 1e-12, high: float = 1e3, kind: str = "log_sign") -> go.Figure:
    """Both input channels of the preprocessing as functions of the gradient magnitude (Appendix A)."""
    magnitudes_t = torch.logspace(math.log10(low), math.log10(high), 400, dtype=torch.float64)
    magnitudes = magnitudes_t.numpy()
    fig = go.Figure()
    for sign, dash in ((1.0, "solid"), (-1.0, "dash")):
        x = preprocess(sign * magnitudes_t, kind, p).numpy()
        label = "g > 0" if sign > 0 else "g < 0"
        fig.add_trace(go.Scatter(x=magnitudes, y=x[:, 0], name=f"log channel, {label}", line={"dash": dash}))
        if x.shape[1] > 1:
            fig.add_trace(go.Scatter(x=magnitudes, y=x[:, 1], name=f"sign channel, {label}", line={"dash": dash}))
    fig.add_vline(x=math.exp(-p), line_dash="dot", annotation_text="|g| = e^-p")
    fig.update_layout(title=f"Preprocessing '{kind}', p = {p:g}", xaxis_title="|g|", yaxis_title="LSTM input")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_layout(template="plotly_white")
    return fig


def plot_computational_graph(steps: int = 3) -> go.Figure:
    """The unrolled graph of the paper's Figure 2: meta-gradients flow along solid edges only.

    Top row: the optimizee f evaluated at theta_t gives f_t (summed into the meta-loss L) and the gradient
    grad_t. Bottom row: the optimizer m, with its state h_t, turns grad_t into the update g_t, and
    theta_{t+1} = theta_t + g_t. The dashed edges (f -> grad_t) are dropped when computing dL/dphi.
    """
    # Longer than 60 lines on purpose: one drawing, node positions then edges then labels, read top to bottom;
    # split into functions it would scatter the coordinates of one picture over several places.
    fig = go.Figure()
    nodes: dict[str, tuple[float, float]] = {}
    for t in range(steps):
        x = 4.0 * t
        nodes[f"theta{t}"] = (x, 2.0)
        nodes[f"f{t}"] = (x + 1.0, 3.2)
        nodes[f"grad{t}"] = (x + 1.6, 1.6)
        nodes[f"m{t}"] = (x + 2.2, 0.2)
        nodes[f"plus{t}"] = (x + 3.0, 2.0)
    nodes[f"theta{steps}"] = (4.0 * steps, 2.0)
    nodes["L"] = (2.0 * steps, 4.4)
    labels = {f"theta{t}": f"θ<sub>{t}</sub>" for t in range(steps + 1)}
    labels.update({f"f{t}": f"f<sub>{t}</sub>" for t in range(steps)})
    labels.update({f"grad{t}": f"∇<sub>{t}</sub>" for t in range(steps)})
    labels.update({f"m{t}": "m" for t in range(steps)})
    labels.update({f"plus{t}": "+" for t in range(steps)})
    labels["L"] = "L(φ) = Σ<sub>t</sub> w<sub>t</sub> f<sub>t</sub>"
    edges: list[tuple[str, str, bool, str]] = []  # (from, to, dashed, label)
    for t in range(steps):
        edges += [
            (f"theta{t}", f"f{t}", False, ""),
            (f"f{t}", f"grad{t}", True, ""),
            (f"grad{t}", f"m{t}", False, ""),
            (f"m{t}", f"plus{t}", False, f"g<sub>{t}</sub>"),
            (f"theta{t}", f"plus{t}", False, ""),
            (f"plus{t}", f"theta{t + 1}", False, ""),
            (f"f{t}", "L", False, ""),
        ]
        if t + 1 < steps:
            edges.append((f"m{t}", f"m{t + 1}", False, f"h<sub>{t + 1}</sub>"))
    for a, b, dashed, label in edges:
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        color = "#d62728" if dashed else "#444"
        fig.add_annotation(
            x=x1,
            y=y1,
            ax=x0,
            ay=y0,
            xref="x",
            yref="y",
            axref="x",
            ayref="y",
            text="",
            showarrow=True,
            arrowhead=2,
            arrowsize=1.2,
            arrowwidth=1.5,
            arrowcolor=color,
            standoff=14,
            startstandoff=14,
        )
        if dashed:  # arrows cannot be dashed: draw a dashed line over it
            fig.add_trace(
                go.Scatter(
                    x=[x0, x1],
                    y=[y0, y1],
                    mode="lines",
                    line={"dash": "dash", "color": color, "width": 3},
                    hoverinfo="skip",
                    showlegend=False,
                )
            )
        if label:
            fig.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2 - 0.25, text=label, showarrow=False)
    circles = [k for k in nodes if k != "L"]
    fig.add_trace(
        go.Scatter(
            x=[nodes[k][0] for k in circles],
            y=[nodes[k][1] for k in circles],
            mode="markers+text",
            text=[labels[k] for k in circles],
            textposition="middle center",
            marker={"size": 34, "color": "white", "line": {"color": "#444", "width": 1.5}},
            hoverinfo="skip",
            name="graph",
            showlegend=False,
        )
    )
    fig.add_annotation(
        x=nodes["L"][0],
        y=nodes["L"][1],
        text=labels["L"],
        showarrow=False,
        bordercolor="#444",
        borderpad=6,
        bgcolor="white",
    )
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line={"color": "#444"}, name="meta-gradient flows"))
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="lines",
            line={"color": "#d62728", "dash": "dash"},
            name="dropped (no second derivatives)",
        )
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, range=[-0.5, 5.0])
    fig.update_layout(
        title="Computational graph of the meta-loss (paper, Figure 2)",
        template="plotly_white",
        height=380,
        legend={"orientation": "h", "y": -0.05},
    )
    return fig


def plot_trajectories_2d(
    landscape: tuple[np.ndarray, np.ndarray, np.ndarray],
    paths: Mapping[str, np.ndarray],
    title: str,
    labels: Mapping[str, str] | None = None,
) -> go.Figure:
    """Contours of a 2-d loss (xs, ys, log10 f on the grid) with each optimizer's path theta_0..theta_T."""
    xs, ys, z = landscape
    fig = go.Figure(
        go.Contour(
            x=xs,
            y=ys,
            z=z,
            colorscale="Greys",
            reversescale=True,
            opacity=0.75,
            showscale=True,
            ncontours=25,
            name="log10 f",
            colorbar={"title": "log10 f"},
        )
    )
    for i, (name, path) in enumerate(paths.items()):
        fig.add_trace(
            go.Scatter(
                x=path[:, 0],
                y=path[:, 1],
                mode="lines+markers",
                name=(labels or {}).get(name, name),
                marker={"size": 4},
                line={"color": color_of(name, i)},
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title="θ[0]",
        yaxis_title="θ[1]",
        template="plotly_white",
        height=560,
        legend={"orientation": "h", "y": -0.15},
    )
    return fig
