"""An attention matrix as a small inline SVG, written directly rather than drawn by matplotlib.

matplotlib took 0.4-0.7 s per map on a CPU (layout and rendering of every tick label), more
than the integrated gradients it sits beside in a run's report. Here the cells are one PNG
(a block of pixels per cell, so no browser smooths it) and the labels, axis titles and colour
bar are SVG text and shapes: the browser draws the labels with its own fonts (CJK included).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from tunelab.data.images import png_data_uri

MATRIX_PIXELS = 480  # the longest side the cells fill, at most
FONT_SIZE = 9
BAR_STOPS = 9  # colour-bar gradient stops sampled from the colour map


def blues(values: np.ndarray) -> np.ndarray:
    """RGB bytes (``values.shape + (3,)``) of matplotlib's "Blues" for values in [0, 1]:
    white for no attention to dark blue for the largest weights (the colour map alone is
    imported, not matplotlib's figures)."""
    from matplotlib import colormaps

    return colormaps["Blues"](np.clip(values, 0.0, 1.0), bytes=True)[..., :3]


def _cells_uri(matrix: np.ndarray, top: float, cell: int) -> str:
    """The matrix as a PNG ``data:`` URI, ``cell`` x ``cell`` pixels per entry."""
    from PIL import Image

    pixels = blues(matrix / top if top > 0 else matrix)
    pixels = pixels.repeat(cell, axis=0).repeat(cell, axis=1)
    return png_data_uri(Image.fromarray(pixels, "RGB"))


def _label_width(text: str) -> float:
    """A label's rough width in pixels (wide characters count double)."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text) * FONT_SIZE * 0.6


def attention_svg(matrix: Sequence[Sequence[float]], names: Sequence[str] | None) -> str:
    """``<svg>`` of a square attention matrix: row ``i`` is query token ``i``'s weights over the
    keys; ``names`` labels the rows and columns (``None`` for a matrix too large to label)."""
    values = np.asarray(matrix, dtype=float)
    n = len(values)
    cell = max(1, MATRIX_PIXELS // max(n, 1))
    side = cell * n
    top = float(values.max()) if n else 0.0
    margin = max((_label_width(name) for name in names), default=0.0) + 8 if names else 8.0
    left, upper = margin + 22, 10.0  # room for the row labels and the rotated axis title
    bar_x = left + side + 14
    width, height = bar_x + 60, upper + side + margin + 26
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" '
        f'font-size="{FONT_SIZE}" role="img" aria-label="attention weights">',
        '<defs><linearGradient id="tl-blues" x1="0" y1="1" x2="0" y2="0">'
        + "".join(
            f'<stop offset="{i / (BAR_STOPS - 1):.3f}" '
            f'stop-color="#{bytes(colour.tolist()).hex()}"/>'
            for i, colour in enumerate(blues(np.linspace(0.0, 1.0, BAR_STOPS)))
        )
        + "</linearGradient></defs>",
    ]
    if n:
        parts.append(
            f'<image x="{left:.0f}" y="{upper:.0f}" width="{side}" height="{side}" '
            f'href="{_cells_uri(values, top, cell)}"/>'
        )
    for i, name in enumerate(names or []):
        middle = upper + (i + 0.5) * cell
        label = html.escape(name)
        parts.append(
            f'<text x="{left - 3:.0f}" y="{middle:.1f}" text-anchor="end" '
            f'dominant-baseline="middle">{label}</text>'
        )
        column = left + (i + 0.5) * cell
        bottom = upper + side + 3
        parts.append(
            f'<text transform="translate({column:.1f},{bottom:.0f}) rotate(-90)" '
            f'text-anchor="end" dominant-baseline="middle">{label}</text>'
        )
    parts += [
        f'<text x="{left + side / 2:.0f}" y="{height - 6:.0f}" text-anchor="middle">'
        "key (attended to)</text>",
        f'<text transform="translate(10,{upper + side / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">query (attending)</text>',
        f'<rect x="{bar_x:.0f}" y="{upper:.0f}" width="12" height="{side}" '
        'fill="url(#tl-blues)" stroke="#999" stroke-width="0.5"/>',
        f'<text x="{bar_x + 16:.0f}" y="{upper + 4:.0f}">{top:.2f}</text>',
        f'<text x="{bar_x + 16:.0f}" y="{upper + side:.0f}">0</text>',
        f'<text transform="translate({bar_x + 50:.0f},{upper + side / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">attention weight</text>',
        "</svg>",
    ]
    return "".join(parts)
