"""Occlusion explanations of images and clips as HTML: each image under a grid of shaded
cells, each clip as a strip of shaded segments above its player.

Self-contained like the text explanations (inline CSS and SVG, media as ``data:`` URIs, no
scripts, no network); file names go through ``html.escape``.
"""

from __future__ import annotations

import html
from typing import Any

from tunelab.data.media import MediaRef
from tunelab.explain.html import STYLE, page, rounded, shade

IMAGE_SIDE = 256  # the longer side an explained image is drawn at
CELL_OPACITY = 0.7  # the strongest cell still lets the image show through
STRIP_WIDTH, STRIP_HEIGHT = 640, 60  # a clip's strip of segments, in SVG units
PLAYED_SECONDS = 30.0  # a clip's player holds at most this much (8 kHz WAV in the page)


def _scale(values: list[float]) -> float:
    """The largest absolute attribution (shading is relative to it)."""
    return max((abs(v) for v in values), default=0.0)


def _image_html(explanation: dict[str, Any], source: MediaRef) -> str:
    from PIL import Image

    from tunelab.data.images import open_rgb, png_data_uri

    grid, cells = explanation["grid"], explanation["cells"]
    width, height = explanation["width"], explanation["height"]
    factor = IMAGE_SIDE / max(width, height)
    shown_w, shown_h = round(width * factor), round(height * factor)
    try:
        picture = open_rgb(source)
        # enlarged pixels (8x8 digits) stay sharp, as the report's thumbnails keep them
        nearest = Image.Resampling.NEAREST if shown_w > picture.width else None
        picture = picture.resize((shown_w, shown_h), nearest)
        image = f'<image href="{png_data_uri(picture)}" width="{shown_w}" height="{shown_h}"/>'
    except (OSError, ValueError, SyntaxError, EOFError):
        image = f'<rect width="{shown_w}" height="{shown_h}" fill="#eee"/>'  # file gone
    scale = _scale([v for row in cells for v in row])
    rects = []
    for i, row in enumerate(cells):
        for j, value in enumerate(row):
            x, y = j * shown_w / grid, i * shown_h / grid
            title = html.escape(f"row {i + 1}, column {j + 1}: {value:+.4f}")
            rects.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{shown_w / grid:.1f}" '
                f'height="{shown_h / grid:.1f}" fill="{shade(value, scale)}" '
                f'opacity="{CELL_OPACITY}">'
                f"<title>{title}</title></rect>"
            )
    return (f'<svg viewBox="0 0 {shown_w} {shown_h}" width="{shown_w}" height="{shown_h}">'
            f"{image}{''.join(rects)}</svg>")  # fmt: skip


def _clip_html(explanation: dict[str, Any], source: MediaRef) -> str:
    from tunelab.data.audio import wav_data_uri

    segments, seconds = explanation["segments"], explanation["seconds"] or 1.0
    scale = _scale([value for _, _, value in segments])
    bars = []
    for start, end, value in segments:
        x, w = start / seconds * STRIP_WIDTH, (end - start) / seconds * STRIP_WIDTH
        title = html.escape(f"{start:.2f}-{end:.2f} s: {value:+.4f}")
        bars.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{STRIP_HEIGHT}" '
            f'fill="{shade(value, scale)}" stroke="#fff"><title>{title}</title></rect>'
        )
    axis = (f'<text x="0" y="{STRIP_HEIGHT + 14}" font-size="12">0 s</text>'
            f'<text x="{STRIP_WIDTH}" y="{STRIP_HEIGHT + 14}" font-size="12" '
            f'text-anchor="end">{seconds:.2f} s</text>')  # fmt: skip
    strip = (f'<svg viewBox="0 0 {STRIP_WIDTH} {STRIP_HEIGHT + 18}" width="{STRIP_WIDTH}">'
             f"{''.join(bars)}{axis}</svg>")  # fmt: skip
    uri = wav_data_uri(source, max_seconds=min(PLAYED_SECONDS, max(4.0, seconds)))
    player = f'<audio controls preload="none" src="{uri}"></audio>' if uri else ""
    return f"<figure>{strip}<br>{player}</figure>"


def _section(number: int, explanation: dict[str, Any], source: MediaRef) -> str:
    noun = "Image" if explanation["kind"] == "image" else "Clip"
    heading = (f"{explanation['path']}: explained {explanation['target']} (probability "
               f"{rounded(explanation['probability'])})")  # fmt: skip
    if str(explanation["predicted"]) != str(explanation["target"]):
        heading += f"; the model predicts {explanation['predicted']}"
    body = (_image_html(explanation, source) if explanation["kind"] == "image"
            else _clip_html(explanation, source))  # fmt: skip
    return (f'<section><h3>{noun} {number}</h3><p class="meta">{html.escape(heading)}</p>'
            f"{body}</section>")  # fmt: skip


def render_media_fragment(explanations: list[dict[str, Any]], sources: list[MediaRef]) -> str:
    """The occlusion explanations as an HTML fragment (own ``<style>``, no scripts) for a
    larger page (the run report); ``sources`` are the files (paths or bytes) they were made
    from, in the same order, to draw them."""
    what = "cell" if explanations and explanations[0]["kind"] == "image" else "stretch of time"
    hidden = "painted the image's mean colour" if what == "cell" else "silenced"
    legend = (
        f'<p class="legend">Each {what} was {hidden} in turn: <span class="tok" style="'
        f'background: {shade(1, 1)}">green</span> where hiding it lowered the explained '
        f'probability (it spoke for the label), <span class="tok" style="background: '
        f'{shade(-1, 1)}">red</span> where hiding it raised it; hover for the value.</p>'
    )
    sections = [_section(i, e, s) for i, (e, s) in
                enumerate(zip(explanations, sources, strict=True), start=1)]  # fmt: skip
    return f'<div class="tl-ex"><style>{STYLE}</style>{legend}\n' + "\n".join(sections) + "\n</div>"


def render_media_page(
    explanations: list[dict[str, Any]], sources: list[MediaRef], title: str = "Explanations"
) -> str:
    """A complete self-contained page of occlusion explanations (see
    :func:`render_media_fragment`)."""
    return page(title, render_media_fragment(explanations, sources))
