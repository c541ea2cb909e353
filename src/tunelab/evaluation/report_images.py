"""Report sections of image classification: the classification sections text has, and the
worst errors as thumbnails embedded in the page (it works offline and after the images move)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.data.images import thumbnail_uri
from tunelab.evaluation.report_files import file_sections
from tunelab.evaluation.report_page import Plots, TaskReport, esc


def picture(path: str) -> str:
    """A thumbnail of the image at ``path`` as an ``<img>`` with its data inline."""
    uri = thumbnail_uri(path)
    return f'<img src="{uri}" alt="{esc(Path(path).name)}">' if uri else "(no file to show)"


def sections(run: Any, plots: Plots) -> TaskReport:
    """Classes (confusion matrix, per-class scores, calibration) and the worst errors."""
    return file_sections(run, plots, picture, "image")
