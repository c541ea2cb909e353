"""Report sections of image-to-text (OCR, captions): the worst-read images embedded in the
page beside their text and the model's reading, and how the character errors are spread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.data.images import thumbnail_uri
from tunelab.evaluation.plots import histograms_figure
from tunelab.evaluation.report_page import Html, Plots, TaskReport, esc, note, number, section

WORST_SHOWN = 12
SHOWN_SIDE = 480  # pixels: a line of text stays legible (a classification thumbnail is 64)


def line_picture(path: str) -> str:
    """The image at ``path`` as an ``<img>`` with its data inline, at most 480 pixels wide."""
    uri = thumbnail_uri(path, side=SHOWN_SIDE)
    return f'<img src="{uri}" alt="{esc(Path(path).name)}">' if uri else "(no file to show)"


def row_cer(record: dict[str, Any]) -> float:
    """One record's character error rate: its errors over its reference's characters."""
    return float(record["character_errors"]) / max(len(str(record["reference"])), 1)


def sections(run: Any, plots: Plots) -> TaskReport:
    """The worst readings with their images, and the spread of per-image CER."""
    records = [r for r in run.predictions or [] if "reference" in r and "character_errors" in r]
    if not records:
        missing = note("No predictions.jsonl with texts (no test split).")
        return TaskReport([section("errors", "Worst readings", [missing])])
    rates = [row_cer(r) for r in records]
    perfect = sum(rate == 0 for rate in rates)
    order = sorted(range(len(records)), key=lambda i: -rates[i])[:WORST_SHOWN]
    rows = []
    for i in order:
        record = records[i]
        cells = [line_picture(str(record["path"])), esc(record["reference"]),
                 esc(record["output"]), number(rates[i])]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    header = "".join(f"<th>{name}</th>" for name in ("image", "text", "read", "CER"))
    intro = (
        f"<p>{perfect:,} of {len(records):,} test images read without an error; the "
        f"{len(order)} with the highest character error rate:</p>"
    )
    spread = plots.figure(
        "row-cer-histogram",
        histograms_figure({"CER per image": rates}, "character error rate", "Per-image CER"),
        "How the character error rate of each test image is spread (0: read exactly).",
    )
    worst = Html(intro + f"<table><tr>{header}</tr>{''.join(rows)}</table>")
    return TaskReport(
        [
            section("errors", "Worst readings", [worst]),
            section("spread", "Errors per image", [spread]),
        ]
    )
