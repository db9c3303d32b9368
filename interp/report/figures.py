"""Small plotly helpers shared by the report and the examples: one look for every figure."""

from __future__ import annotations

import functools
import math

import plotly.graph_objects as go

COLORWAY = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


@functools.cache
def template() -> go.layout.Template:
    """A light white template built once: plotly's named templates cost ~0.1 s per figure to
    validate and copy, which would dominate a report's run time."""
    axis = {"gridcolor": "#ebebeb", "zeroline": False, "linecolor": "#bbbbbb", "ticks": "outside"}
    return go.layout.Template(
        layout={
            "colorway": COLORWAY,
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "font": {"size": 12},
            "xaxis": axis,
            "yaxis": axis,
        }
    )


PALETTE = {
    "train": "#1f77b4",
    "train_clean": "#2ca02c",
    "train_noisy": "#d62728",
    "train_noisy_true": "#ff7f0e",
    "test": "#9467bd",
    "g": "#2ca02c",
    "r": "#d62728",
    "full": "#1f77b4",
}


def figure(title: str, x_title: str = "", y_title: str = "", height: int = 380, **layout) -> go.Figure:
    """An empty figure with the report's template, title and axis titles."""
    fig = go.Figure()
    fig.update_layout(
        template=template(),
        title={"text": title, "x": 0.01, "xanchor": "left"},
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        **layout,
    )
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text=y_title)
    return fig


def lines(
    title: str,
    x,
    series: dict,
    x_title: str = "step",
    y_title: str = "",
    log_x: bool = False,
    log_y: bool = False,
    colors: dict | None = None,
    **kw,
) -> go.Figure:
    """One line per entry of `series` ({name: y values}); NaNs are gaps. Colours: `colors[name]`, else PALETTE."""
    fig = figure(title, x_title, y_title, **kw)
    for name, y in series.items():
        color = (colors or {}).get(name) or PALETTE.get(name)
        fig.add_trace(
            go.Scatter(
                x=list(x),
                y=[None if v is None or v != v else v for v in y],
                mode="lines",
                name=name,
                line={"color": color} if color else None,
            )
        )
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def bars(
    title: str, categories: list, series: dict, x_title: str = "", y_title: str = "", colors: dict | None = None, **kw
) -> go.Figure:
    """Grouped bars: one trace per entry of `series` ({name: values per category}); colours as `lines`."""
    fig = figure(title, x_title, y_title, **kw)
    for name, y in series.items():
        color = (colors or {}).get(name) or PALETTE.get(name)
        fig.add_trace(
            go.Bar(x=[str(c) for c in categories], y=list(y), name=name, marker={"color": color} if color else None)
        )
    fig.update_layout(barmode="group")
    return fig


def heatmap(
    title: str, z, x=None, y=None, x_title: str = "", y_title: str = "", colorscale: str = "Viridis", zmid=None, **kw
) -> go.Figure:
    """A heatmap of a 2-D array (rows are y)."""
    fig = figure(title, x_title, y_title, **kw)
    fig.add_trace(go.Heatmap(z=z, x=x, y=y, colorscale=colorscale, zmid=zmid))
    return fig


def histogram(
    title: str, values, x_title: str = "", y_title: str = "count", nbins: int = 40, log_x: bool = False, **kw
) -> go.Figure:
    """A histogram of `values` (log10 of them when log_x, labelled as such)."""
    vals = [v for v in values if v == v]
    if log_x:
        vals = [math.log10(v) for v in vals if v > 0]
        x_title = f"log10 {x_title}"
    fig = figure(title, x_title, y_title, **kw)
    fig.add_trace(go.Histogram(x=vals, nbinsx=nbins, marker={"color": PALETTE["full"]}))
    return fig
