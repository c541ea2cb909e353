"""Report sections of audio classification: the classification sections text has, and the
worst errors, each with a player whose clip is embedded in the page (a short 8 kHz WAV as a
``data:`` URI), so the report plays offline and after the files move."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.data.audio import wav_data_uri
from tunelab.evaluation.report_files import file_sections
from tunelab.evaluation.report_page import Plots, TaskReport, esc

PLAYED_RATE = 8_000  # Hz: speech stays intelligible, a clip takes half the bytes of 16 kHz
PLAYED_SECONDS = 3.0  # the start of a longer clip


def player(path: str) -> str:
    """An ``<audio controls>`` element playing the start of the clip at ``path``."""
    uri = wav_data_uri(path, PLAYED_RATE, PLAYED_SECONDS)
    if uri is None:
        return "(no file to show)"
    return f'<audio controls preload="metadata" src="{uri}" title="{esc(Path(path).name)}"></audio>'


def sections(run: Any, plots: Plots) -> TaskReport:
    """Classes (confusion matrix, per-class scores, calibration) and the worst errors."""
    return file_sections(run, plots, player, "clip")
