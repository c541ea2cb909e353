"""Remove rows a model cannot learn from, and say which ones."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.normalize import clean_text, joined_cells, normalized_text
from tunelab.errors import UserError

log = logging.getLogger("tunelab")


def is_blank(value: Any) -> bool:
    """Whether a cell is missing, NaN, or only whitespace."""
    if value is None:
        return True
    if isinstance(value, float) and pd.isna(value):
        return True
    return isinstance(value, str) and not value.strip()


def _row_list(rows: list[Any], limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def drop_invalid_rows(
    frame: pd.DataFrame, columns: list[str], drop: bool
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop (or reject) rows whose given columns are empty, whitespace-only or missing.

    Args:
        frame: a table from :func:`tunelab.data.load.read_table`.
        columns: the columns that must hold a value (text, label, ...).
        drop: ``True`` drops the rows with a warning; ``False`` raises.

    Returns:
        The kept rows and a record of what was dropped, for ``data_report.json``.

    Raises:
        UserError: naming the file, column and rows, when ``drop`` is false.
    """
    source = frame.attrs.get("source", "data")
    report: dict[str, Any] = {"file": source, "rows_before": len(frame), "dropped": {}}
    bad = pd.Series(False, index=frame.index)
    # a task that renamed the file's columns (attrs "columns": {its name: the file's}) is
    # reported in the file's names, which the user can find
    for column in columns:
        blank = frame[column].map(is_blank).astype(bool)
        shown = frame.attrs.get("columns", {}).get(column, column)
        if blank.any():
            rows = list(frame.index[blank])
            report["dropped"][column] = {"count": len(rows), "rows": rows[:50]}
            if not drop:
                raise UserError(
                    f"{source}: column '{shown}' is empty in rows {_row_list(rows)}; fill or "
                    "remove them, or run without --strict (data.drop_invalid=true) to drop them "
                    "with a warning"
                )
            log.warning(
                "%s: dropped %d row(s) with empty '%s' (rows %s)",
                source,
                len(rows),
                shown,
                _row_list(rows),
            )
        bad |= blank
    kept = frame.loc[~bad]
    kept.attrs = dict(frame.attrs)
    report["rows_after"] = len(kept)
    if kept.empty:
        raise UserError(f"{source}: no rows are left after dropping empty texts and labels")
    return kept, report


def label_set(value: Any, separator: str | None = None) -> Any:
    """A cell of several labels (a list, or a string split on ``separator``) as its sorted,
    distinct label names; any other cell as it is."""
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = [str(v).strip() for v in value]
    elif separator and isinstance(value, str) and value.strip():
        parts = [part.strip() for part in value.split(separator)]
    else:
        return value
    return sorted({part for part in parts if part})


def _label_key(value: Any, separator: str | None = None) -> str:
    """One string per label set: several labels in any order give the same key."""
    labels = label_set(value, separator)
    return "|".join(labels) if isinstance(labels, list) else str(labels).strip()


# what each cleaning step drops, as its warning words it, and the setting that keeps the rows
DROPPED = {
    "outside_length_limits": (
        "row(s) outside the length limits",
        "a lower clean.min_chars or higher clean.max_chars",
    ),
    "conflicting_labels": (
        "row(s) whose text also occurs with another label",
        "clean.drop_conflicts=false",
    ),
    "exact_duplicates": (
        "row(s) repeating an earlier row's text and label",
        "clean.drop_duplicates=false",
    ),
}


def clean_rows(
    frame: pd.DataFrame,
    text_columns: list[str],
    label_column: str,
    options: Any,
    is_training: bool,
    label_separator: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Normalise texts and, for training rows, drop conflicts, duplicates and odd lengths.

    Held-out rows only get their texts normalised: dropping rows there would change what a
    model is scored on.

    Args:
        options: a :class:`tunelab.config.CleanConfig`.
        label_separator: labels written as ``a|b`` strings: ``a|b`` and ``b|a`` are one label
            set, neither a conflict nor a different row.

    Returns:
        The cleaned rows and a record of each step (rows removed, with row numbers).
    """

    frame = frame.copy()
    attrs = dict(frame.attrs)
    steps: dict[str, Any] = {}
    for column in text_columns:
        before = frame[column].astype(str)
        frame[column] = before.map(
            lambda t: clean_text(
                t, options.nfkc, options.whitespace, options.strip_html, options.lowercase
            )
        )
        steps.setdefault("texts_changed", 0)
        steps["texts_changed"] += int((frame[column] != before).sum())

    def drop(name: str, mask: pd.Series) -> None:
        nonlocal frame
        rows = [int(r) for r in frame.index[mask]]
        steps[name] = {"count": len(rows), "rows": rows[:50]}
        if rows:
            what, keeps = DROPPED[name]
            log.warning(
                "%s: dropped %d %s (rows %s); %s keeps them",
                attrs.get("source"), len(rows), what, _row_list(rows), keeps,
            )  # fmt: skip
        frame = frame.loc[~mask]

    if is_training:
        text = frame[text_columns[0]]
        chars = text.str.len()
        too_short = chars < options.min_chars
        too_long = (
            chars > options.max_chars if options.max_chars else pd.Series(False, index=frame.index)
        )
        drop("outside_length_limits", too_short | too_long)
        keys = joined_cells(frame, text_columns).map(normalized_text)
        if options.drop_conflicts:
            labels = frame[label_column].map(lambda v: _label_key(v, label_separator))
            per_key = labels.groupby(keys).nunique()
            drop("conflicting_labels", keys.isin(set(per_key.index[per_key > 1])))
        if options.drop_duplicates:
            exact = joined_cells(frame, text_columns, "\x1f")
            labels = frame[label_column].map(lambda v: _label_key(v, label_separator))
            drop("exact_duplicates", (exact + "\x1e" + labels).duplicated())
    frame.attrs = attrs
    if frame.empty:
        raise UserError(f"{attrs.get('source', 'data')}: no rows are left after cleaning")
    return frame, steps
