"""The attention heat map written as SVG: cells in the right places and shades, labels escaped."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from tunelab.explain.heat_map import MATRIX_PIXELS, attention_svg, blues


def _cells(svg: str) -> np.ndarray:
    encoded = re.search(r'href="data:image/png;base64,([^"]+)"', svg).group(1)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))


def test_blues_runs_from_white_to_dark_blue():
    ends = blues(np.array([0.0, 0.5, 1.0, 1.7]))
    assert ends[0].tolist() == [0xF7, 0xFB, 0xFF] and ends[2].tolist() == [0x08, 0x30, 0x6B]
    middle = ends[1].astype(int)  # a mid blue: darker than the start, lighter than the end
    assert ends[2].sum() < middle.sum() < ends[0].sum() and middle.argmax() == 2
    assert ends[3].tolist() == ends[2].tolist()  # clipped, not wrapped around


def test_each_weight_fills_its_own_cell_darker_as_it_grows():
    matrix = [[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.3, 0.3, 0.4]]
    svg = attention_svg(matrix, ["a", "b", "c"])
    pixels = _cells(svg)
    cell = MATRIX_PIXELS // 3
    assert pixels.shape == (3 * cell, 3 * cell, 3)
    # the centre pixel of each cell, as brightness: the largest weight is the darkest cell
    brightness = pixels[cell // 2 :: cell, cell // 2 :: cell].sum(-1)
    assert np.unravel_index(brightness.argmin(), brightness.shape) == (1, 1)
    assert brightness[1, 0] == brightness.max()  # a weight of 0 is white
    assert brightness[0, 0] < brightness[0, 1] < brightness[0, 2]
    assert ">1.00</text>" in svg  # the colour bar's top is the largest weight


def test_labels_are_escaped_and_absent_for_an_unlabelled_matrix():
    svg = attention_svg([[1.0, 0.0], [0.5, 0.5]], ["<b>", "很好"])
    assert "<b>" not in svg.replace("<svg", "") and svg.count("&lt;b&gt;") == 2
    assert svg.count(">很好</text>") == 2  # a row and a column
    bare = attention_svg([[1.0, 0.0], [0.5, 0.5]], None)
    assert "很好" not in bare and bare.startswith("<svg") and bare.endswith("</svg>")
