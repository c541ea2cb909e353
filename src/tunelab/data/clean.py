"""Remove rows a model cannot learn from, and say which ones."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from tunelab.errors import UserError

log = logging.getLogger("tunelab")


def _is_blank(value: Any) -> bool:
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
    for column in columns:
        blank = frame[column].map(_is_blank).astype(bool)
        if blank.any():
            rows = list(frame.index[blank])
            report["dropped"][column] = {"count": len(rows), "rows": rows[:50]}
            if not drop:
                raise UserError(
                    f"{source}: column '{column}' is empty in rows {_row_list(rows)}; fill or "
                    "remove them, or set data.drop_invalid=true to drop them"
                )
            log.warning(
                "%s: dropped %d row(s) with empty '%s' (rows %s)",
                source,
                len(rows),
                column,
                _row_list(rows),
            )
        bad |= blank
    kept = frame.loc[~bad]
    kept.attrs = dict(frame.attrs)
    report["rows_after"] = len(kept)
    if kept.empty:
        raise UserError(f"{source}: no rows are left after dropping empty texts and labels")
    return kept, report
