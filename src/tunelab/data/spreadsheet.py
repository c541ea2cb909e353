"""Excel workbooks (.xlsx with openpyxl, .xls with xlrd) read as tables of strings, as CSV is.

Spreadsheets carry no text encoding to guess, but they have habits of their own: a title row
or two above the header, blank rows, formatted but empty columns, numbers and dates as typed
values. The sheet's header row is found below any title rows; every cell becomes the text a
CSV export would hold (``7`` not ``7.0``, dates as ISO 8601, ``TRUE``/``FALSE``), and the
index is the row number the spreadsheet shows, so an error can name the row to look at.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.errors import UserError

XLSX_MAGIC = b"PK\x03\x04"  # a zip archive: Office Open XML
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE2 compound file: .xls (or encrypted)
HEADER_SEARCH_ROWS = 20  # title rows above the header: at most this many
PACKAGES = {"xlsx": "openpyxl", "xls": "xlrd"}


def cell_text(value: Any) -> str | None:
    """A cell's value as the text a CSV export holds; ``None`` for an empty cell."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def _width(row: list[str | None]) -> int:
    """Cells up to the last non-empty one."""
    return max((i + 1 for i, cell in enumerate(row) if cell is not None), default=0)


def _header_position(rows: list[tuple[int, list[str | None]]], source: str) -> int:
    """Index (into ``rows``) of the header row: the first that is not a title. A title or note
    is a row of one cell above rows that are mostly wider. A first row whose cells are all
    numbers is data with no header, which is refused rather than read as column names."""
    for position, (number, row) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        below = sorted(_width(r) for _, r in rows[position + 1 : position + 51])
        filled = [cell for cell in row if cell is not None]
        if below and len(filled) == 1 and below[len(below) // 2] > 1:
            continue
        if all(_is_number(cell) for cell in filled):
            raise UserError(
                f"{source} has no header row: row {number}, the first with data, holds "
                f"{filled[0]!r}; add a row above it naming the columns (e.g. text, label)"
            )
        return position
    return 0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_names(header: list[str | None], width: int) -> list[str]:
    """Header cells as unique names; an empty one is named as pandas names it."""
    names: list[str] = []
    for i in range(width):
        cell = header[i] if i < len(header) else None
        name = cell.strip() if cell is not None else f"Unnamed: {i}"
        base, count = name, 1
        while name in names:
            name, count = f"{base}.{count}", count + 1
        names.append(name)
    return names


def table_from_rows(rows: Iterable[tuple[int, list[Any]]], source: str) -> pd.DataFrame:
    """A table from ``(row number, cell values)``: blank rows left out, the header found below
    any title rows, every cell as text (``None`` when empty), indexed by row number.

    Raises:
        UserError: for a sheet with no cells, or data with no header row.
    """
    kept = [(n, [cell_text(v) for v in values]) for n, values in rows]
    kept = [(n, cells) for n, cells in kept if _width(cells)]
    if not kept:
        raise UserError(f"{source} is empty; it needs a header row and at least one data row")
    position = _header_position(kept, source)
    data = kept[position + 1 :]
    width = max([_width(kept[position][1]), *(_width(cells) for _, cells in data)])
    columns = _column_names(kept[position][1], width)
    records = [cells[:width] + [None] * (width - len(cells)) for _, cells in data]
    return pd.DataFrame(records, columns=columns, index=[n for n, _ in data], dtype=object)


def _require(kind: str, path: Path) -> None:
    package = PACKAGES[kind]
    if importlib.util.find_spec(package) is None:
        raise UserError(f"reading {path} needs the {package} package: pip install 'tunelab[excel]'")


def _pick_sheet(names: list[str], sheet: str | int | None, path: Path) -> int:
    """The index of the chosen sheet: by name, or by 0-based number; the first by default."""
    if sheet is None:
        return 0
    if isinstance(sheet, str) and sheet in names:
        return names.index(sheet)
    number = sheet if isinstance(sheet, int) else int(sheet) if sheet.isdigit() else None
    listed = ", ".join(names)
    if number is None:
        raise UserError(f"{path} has no sheet '{sheet}'; its sheets are: {listed}")
    if not 0 <= number < len(names):
        raise UserError(
            f"{path} has no sheet number {number} (counted from 0); its {len(names)} sheet(s) "
            f"are: {listed}"
        )
    return number


def _xlsx_rows(raw: bytes, path: Path, sheet: str | int | None) -> tuple[str, list[str], Any]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl's own errors for a damaged file
        raise UserError(
            f"{path} could not be read as an .xlsx workbook ({type(exc).__name__}); open and "
            "save it again in a spreadsheet program, or export the sheet as CSV"
        ) from None
    names = list(book.sheetnames)
    chosen = names[_pick_sheet(names, sheet, path)]

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for number, values in enumerate(book[chosen].iter_rows(values_only=True), start=1):
            yield number, list(values)

    return chosen, names, rows()


def _xls_rows(raw: bytes, path: Path, sheet: str | int | None) -> tuple[str, list[str], Any]:
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=raw)
    except Exception as exc:  # xlrd.XLRDError, and struct errors for a damaged file
        detail = str(exc)
        if "workbook" in detail.lower() and "ole2" in detail.lower():
            raise UserError(
                f"{path} is an encrypted (password-protected) workbook; save it without a "
                "password, or export the sheet as CSV"
            ) from None
        raise UserError(
            f"{path} could not be read as an .xls workbook ({type(exc).__name__}: "
            f"{detail[:80]}); save it again as .xlsx, or export the sheet as CSV"
        ) from None
    names = book.sheet_names()
    chosen = names[_pick_sheet(names, sheet, path)]
    table = book.sheet_by_name(chosen)

    def value(cell: Any) -> Any:
        if cell.ctype == xlrd.XL_CELL_DATE:
            return xlrd.xldate_as_datetime(cell.value, book.datemode)
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return bool(cell.value)
        if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
            return None
        return cell.value

    def rows() -> Iterator[tuple[int, list[Any]]]:
        for number in range(table.nrows):
            yield number + 1, [value(cell) for cell in table.row(number)]

    return chosen, names, rows()


def read_workbook(raw: bytes, path: Path, sheet: str | int | None = None) -> pd.DataFrame:
    """One sheet of an .xlsx or .xls workbook (told apart by their bytes, not the name) as a
    table of strings indexed by the row numbers the spreadsheet shows.

    Args:
        raw: the file's bytes.
        path: the file, for messages.
        sheet: a sheet name or 0-based number; ``None``: the first sheet.

    Raises:
        UserError: for a missing reader package, a damaged or encrypted workbook, an unknown
            sheet, an empty sheet, or data with no header row.
    """
    if raw.startswith(XLSX_MAGIC):
        kind = "xlsx"
    elif raw.startswith(XLS_MAGIC):
        kind = "xls"
    else:
        raise UserError(
            f"{path} is not an Excel workbook (neither .xlsx nor .xls bytes); if it is text, "
            "name it .csv or pass --format csv"
        )
    _require(kind, path)
    chosen, names, rows = (_xlsx_rows if kind == "xlsx" else _xls_rows)(raw, path, sheet)
    where = f"{path} sheet '{chosen}'" if len(names) > 1 else str(path)
    try:
        frame = table_from_rows(rows, where)
    except UserError as exc:
        others = [n for n in names if n != chosen]
        if sheet is None and others and "is empty" in str(exc):
            raise UserError(
                f"{where} (the first) is empty; its other sheets are: {', '.join(others)}; "
                "choose one with --sheet"
            ) from None
        raise
    frame.attrs["sheet"] = chosen
    return frame
