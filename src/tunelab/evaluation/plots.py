"""Plots as matplotlib figures: drawn off-screen (Agg), written as PNG/SVG or bytes.

Each function builds its own ``Figure`` (no pyplot, no global state), so plots can be
made from threads and in tests, and the HTML report can embed the same figures.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.evaluation.learning_curve import predict
from tunelab.outputs import write_bytes

COLOURS = {"main": "#1f5fa8", "band": "#9dbfe6", "fit": "#d9541a", "target": "#444444"}


def new_figure(width: float = 6.4, height: float = 4.0) -> Any:
    """A figure with an Agg canvas (no display needed) and one set of axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    figure.add_subplot()
    return figure


def figure_bytes(figure: Any, fmt: str = "png", dpi: int = 100) -> bytes:
    """The figure encoded as ``png`` or ``svg`` (for embedding in HTML)."""
    import matplotlib

    buffer = io.BytesIO()
    # a fixed SVG hash salt and no date keep the output identical for identical figures
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "tunelab"}):
        figure.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    return buffer.getvalue()


def save_figure(figure: Any, paths: Sequence[Path], dpi: int = 100) -> None:
    """Write the figure to each path, in the format its suffix names, atomically."""
    for path in paths:
        path = Path(path)
        write_bytes(path, figure_bytes(figure, path.suffix.lstrip(".").lower(), dpi))


def line_with_band(
    ax: Any,
    x: Sequence[float],
    middle: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    label: str,
    colour: str = COLOURS["main"],
) -> None:
    """A line with markers over a shaded band (a spread over seeds, an interval)."""
    ax.fill_between(x, low, high, color=COLOURS["band"], alpha=0.5, linewidth=0)
    ax.plot(x, middle, "o-", color=colour, label=label, markersize=4)


def learning_curve_figure(curve: dict[str, Any]) -> Any:
    """Metric against training rows (log axis): per-seed points, mean with min–max band,
    the fitted law, and the target with the rows it needs.

    Args:
        curve: the contents of curve.json (see :func:`tunelab.studies.curve.learning_curve`).

    Returns:
        A matplotlib ``Figure``.
    """
    figure = new_figure()
    ax = figure.axes[0]
    sizes = curve["sizes"]
    x = [s["size"] for s in sizes]
    metric = curve["metric"]
    for s in sizes:
        ax.scatter([s["size"]] * len(s["scores"]), s["scores"], s=10, color=COLOURS["main"],
                   alpha=0.35, linewidths=0)  # fmt: skip
    seeds = max(len(s["scores"]) for s in sizes) if sizes else 1
    label = f"mean (band: min–max of {seeds} seeds)" if seeds > 1 else "score"
    line_with_band(ax, x, [s["mean"] for s in sizes], [s["min"] for s in sizes],
                   [s["max"] for s in sizes], label)  # fmt: skip
    target = curve.get("target") or {}
    right = max(x) if x else 1
    if target.get("rows"):
        right = max(right, min(target.get("high") or target["rows"], 20 * right))
    fit = curve["fit"]
    if fit["kind"] != "none" and x:
        grid = np.geomspace(min(x), right * 1.2, 200)
        ax.plot(grid, predict(fit, grid), "--", color=COLOURS["fit"], label=fit_label(fit))
    if target:
        ax.axhline(target["target"], color=COLOURS["target"], linewidth=0.8, linestyle=":")
        if target.get("rows"):
            low, high = target.get("low") or target["rows"], target.get("high")
            ax.axvspan(low, high or right * 1.2, color=COLOURS["fit"], alpha=0.12, linewidth=0)
            ax.axvline(target["rows"], color=COLOURS["fit"], linewidth=0.8)
        ax.annotate(_wrap(target["message"]), xy=(0.02, 0.02), xycoords="axes fraction",
                    fontsize=7.5, va="bottom")  # fmt: skip
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_xlabel("labelled training rows")
    ax.set_ylabel(f"{metric} ({curve.get('split') or 'held out'})")
    ax.set_title(f"Learning curve: {metric} against training rows", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7.5, loc="lower right" if curve.get("greater_is_better") else "upper right")
    return figure


def fit_label(fit: dict[str, Any]) -> str:
    """The fitted law as a short formula."""
    if fit["kind"] == "power_law":
        op = "−" if fit["sign"] < 0 else "+"
        return f"fit: {fit['c']:.3f} {op} {fit['a']:.3g}·n^−{fit['b']:.2f}"
    return f"fit: {fit['intercept']:.3f} + {fit['slope']:.3g}·ln n (no level-off)"


def _wrap(text: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def svg_markup(figure: Any, name: str) -> str:
    """The figure as an ``<svg>`` element to put inline in an HTML page.

    Text stays text (``svg.fonttype: none``), so the browser draws any script with its own
    fonts; element ids get ``name`` as a prefix, because matplotlib numbers them the same way
    in every figure and one page holds many.
    """
    import re
    import warnings

    import matplotlib

    with warnings.catch_warnings(), matplotlib.rc_context({"svg.fonttype": "none"}):
        # only the layout's width estimate needs the glyphs; the browser has the fonts
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        text = figure_bytes(figure, "svg").decode("utf-8")
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    return re.sub(r'(href="|url\()#([^")]+)', rf"\1#{name}-\2", text)


def curves_figure(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
) -> Any:
    """Lines of y against x, one per named series (markers where a series has few points)."""
    figure = new_figure(6.4, 3.4)
    ax = figure.axes[0]
    for label, (x, y) in series.items():
        ax.plot(x, y, "o-" if len(x) <= 30 else "-", label=label, markersize=3, linewidth=1.4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8)
    return figure


def heat_map_figure(
    matrix: Sequence[Sequence[float]],
    rows: Sequence[str],
    columns: Sequence[str],
    title: str,
    xlabel: str,
    ylabel: str,
) -> Any:
    """A matrix of counts as coloured cells, each written in its cell (when there is room)."""
    values = np.asarray(matrix, dtype=float)
    side = min(4.0 + 0.35 * max(len(rows), len(columns)), 11.0)
    figure = new_figure(side + 1.2, side)
    ax = figure.axes[0]
    image = ax.imshow(values, cmap="Blues", aspect="auto")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(len(columns)), [str(c) for c in columns], rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    if values.size <= 400:
        top = values.max() if values.size else 0
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, f"{value:g}", ha="center", va="center", fontsize=8,
                    color="white" if top and value > top / 2 else "black")  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return figure


def grouped_bars_figure(
    categories: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str
) -> Any:
    """Bars of several named values for each category, side by side."""
    width = min(max(5.0, 0.25 * len(categories) * max(len(series), 1) + 2.0), 14.0)
    figure = new_figure(width, 3.6)
    ax = figure.axes[0]
    x = np.arange(len(categories))
    step = 0.8 / max(len(series), 1)
    for k, (label, values) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * step, values, step, label=label)
    ax.set_xticks(x, [str(c) for c in categories], rotation=45 if len(categories) > 8 else 0,
                  ha="right" if len(categories) > 8 else "center")  # fmt: skip
    top = max((max(values, default=0) for values in series.values()), default=0)
    columns = len(series) if len(series) <= 3 else 2
    rows = -(-len(series) // max(columns, 1))
    ax.set_ylim(0, (top or 1) * (1.08 + 0.1 * rows))  # headroom for the legend above the bars
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="upper center", ncol=columns)
    return figure


def reliability_figure(bins: Sequence[dict[str, float]], ece: float, what: str) -> Any:
    """Observed accuracy against confidence per bin, beside the diagonal of perfect
    calibration, with the number of predictions in each bin below.

    Args:
        bins: ``{"low", "high", "count", "confidence", "accuracy"}`` per bin (empty bins too).
        ece: the expected calibration error, shown in the title.
        what: what the confidence is of (for the axis label).
    """
    figure = new_figure(5.2, 5.0)
    figure.clear()  # two stacked axes instead of new_figure's one
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    filled = [b for b in bins if b["count"]]
    width = bins[0]["high"] - bins[0]["low"] if bins else 0.1
    top.plot([0, 1], [0, 1], ":", color=COLOURS["target"], label="perfect calibration")
    top.bar([b["low"] for b in filled], [b["accuracy"] for b in filled], width, align="edge",
            color=COLOURS["band"], edgecolor=COLOURS["main"], label="observed")  # fmt: skip
    top.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], "o",
             color=COLOURS["fit"], markersize=4, label="mean confidence")  # fmt: skip
    top.set_ylim(0, 1)
    top.set_ylabel("observed frequency")
    top.set_title(f"Reliability: expected calibration error {ece:.3f}", fontsize=10)
    top.legend(fontsize=8, loc="upper left")
    top.grid(True, alpha=0.25)
    bottom.bar([b["low"] for b in bins], [b["count"] for b in bins], width, align="edge",
               color=COLOURS["main"])  # fmt: skip
    bottom.set_xlim(0, 1)
    bottom.set_xlabel(what)
    bottom.set_ylabel("predictions")
    return figure


def histograms_figure(samples: dict[str, Sequence[float]], xlabel: str, title: str) -> Any:
    """Overlaid histograms of several named samples on shared bins."""
    figure = new_figure(6.4, 3.4)
    ax = figure.axes[0]
    values = [v for sample in samples.values() for v in sample]
    if values:
        edges = np.histogram_bin_edges(values, bins=min(30, max(len(set(values)), 1)))
        for label, sample in samples.items():
            ax.hist(sample, bins=edges, alpha=0.55, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.25)
    return figure


def scatter_figure(x: Sequence[float], y: Sequence[float], xlabel: str, ylabel: str,
                   title: str) -> Any:  # fmt: skip
    """Points of y against x with the diagonal y = x."""
    figure = new_figure(4.8, 4.4)
    ax = figure.axes[0]
    ax.scatter(x, y, s=10, alpha=0.6, color=COLOURS["main"], linewidths=0)
    if len(x):
        low, high = min(min(x), min(y)), max(max(x), max(y))
        ax.plot([low, high], [low, high], ":", color=COLOURS["target"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.25)
    return figure
