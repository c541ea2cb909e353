"""Plots as matplotlib figures: drawn off-screen (Agg), written as PNG/SVG or bytes.

Each function builds its own ``Figure`` (no pyplot, no global state), so plots can be
made from threads and in tests, and the HTML report can embed the same figures.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

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
        path.parent.mkdir(parents=True, exist_ok=True)
        data = figure_bytes(figure, path.suffix.lstrip(".").lower(), dpi)
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)


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
        curve: the contents of curve.json (see :func:`tunelab.training.curve.learning_curve`).

    Returns:
        A matplotlib ``Figure``.
    """
    from tunelab.training.curve import predict

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
