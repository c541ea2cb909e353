"""Rows typed in rather than read from a file: ``tunelab predict --text``, ``tunelab explain
--text``, the server's requests and the export's samples all build their frame here."""

from __future__ import annotations

from typing import Any

import pandas as pd


def text_frame(
    task: Any, texts: list[Any], pairs: list[str] | None = None, source: str = "--text"
) -> pd.DataFrame:
    """Rows for ``task`` built from plain texts (and second texts of a pair model), or from
    file paths or bytes for an image or audio model.

    Points the task at the frame's own ``text`` (and ``text_pair``) column, so the records
    that ``task.predictions`` returns carry those keys; ``source`` names the rows in errors.
    """
    task.text_column = "text"
    columns: dict[str, list[Any]] = {"text": texts}
    if pairs is not None:
        task.text_pair_column = "text_pair"
        columns["text_pair"] = pairs
    frame = pd.DataFrame(columns)
    frame.attrs["source"] = source
    return task.standardize(frame.fillna(""), with_labels=False)
