"""Excel workbooks read like CSV: cells as the text a CSV export holds, the header found below
title rows, the sheet chosen by name or number, and every problem one sentence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from tunelab.data.load import read_table
from tunelab.errors import UserError

# written with xlwt 1.3.0 (pandas no longer writes .xls): sheet "Reviews" has a title in A1, a
# blank row, the header on row 3 and four reviews with a number, a date and a boolean each;
# sheet "Other" has one row of text and a float
XLS = Path(__file__).parent / "files" / "reviews.xls"


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_xlsx_cells_read_as_csv_text_below_a_title_row(tmp_path):
    path = _workbook(tmp_path / "r.xlsx", {"Data": [
        ["Shop reviews, exported 2024-05-01"],
        [],
        ["id", "review", "stars", "when", "checked", None],
        [1, "Great value, fast delivery", 5, dt.datetime(2024, 5, 1), True],
        [2, "NA", 1.5, dt.datetime(2024, 5, 2, 13, 30), False],
        [],
        [3, None, 4.0, dt.date(2024, 5, 3), None],
    ]})  # fmt: skip
    frame = read_table(path)
    assert list(frame.columns) == ["id", "review", "stars", "when", "checked"]
    assert list(frame.index) == [4, 5, 7]  # the row numbers the spreadsheet shows
    assert frame.loc[4].tolist() == ["1", "Great value, fast delivery", "5", "2024-05-01", "TRUE"]
    assert frame.loc[5].tolist() == ["2", "NA", "1.5", "2024-05-02T13:30:00", "FALSE"]
    assert frame.loc[7, "stars"] == "4" and pd.isna(frame.loc[7, "review"])
    assert frame.attrs["sheet"] == "Data" and frame.attrs["source"] == str(path)


def test_xls_is_read_the_same_way():
    frame = read_table(XLS)
    assert list(frame.columns) == ["Nr.", "Kommentar", "Ergebnis", "Datum", "Geprüft"]
    assert frame.loc[4].tolist() == ["1", "质量很好，物流也快", "positive", "2024-05-01", "FALSE"]
    assert read_table(XLS, sheet="Other")["label"].tolist() == ["1.5"]


@pytest.mark.parametrize("sheet", ["Second", "1", 1])
def test_a_sheet_by_name_or_zero_based_number(tmp_path, sheet):
    path = _workbook(tmp_path / "r.xlsx", {
        "First": [["text", "label"], ["a", "x"]], "Second": [["text", "label"], ["b", "y"]],
    })  # fmt: skip
    assert read_table(path)["text"].tolist() == ["a"]
    assert read_table(path, sheet=sheet)["text"].tolist() == ["b"]


@pytest.mark.parametrize(
    ("sheets", "sheet", "message"),
    [
        ({"A": [["text"], ["x"]]}, "B", r"has no sheet 'B'; its sheets are: A$"),
        ({"A": [["text"], ["x"]]}, 3, r"has no sheet number 3 \(counted from 0\); its 1 sheet"),
        ({"Notes": [], "Data": [["text"], ["x"]]}, None,
         r"sheet 'Notes' \(the first\) is empty; its other sheets are: Data; choose one with "
         "--sheet"),
        ({"A": [["text", "label"]]}, None, r"has no data rows"),
        ({"A": [[1, 2], [3, 4]]}, None, r"has no header row: row 1, the first with data, holds "
         r"'1'; add a row above it naming the columns"),
    ],
)  # fmt: skip
def test_sheet_problems_are_one_sentence(tmp_path, sheets, sheet, message):
    path = _workbook(tmp_path / "r.xlsx", sheets)
    with pytest.raises(UserError, match=message) as error:
        read_table(path, sheet=sheet)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_damaged_or_mislabelled_workbook_is_one_sentence(tmp_path):
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(_workbook(tmp_path / "ok.xlsx", {"A": [["t"], ["x"]]}).read_bytes()[:300])
    with pytest.raises(UserError, match=r"cut.xlsx could not be read as an .xlsx workbook"):
        read_table(cut)
    renamed = tmp_path / "reviews.xls"
    renamed.write_text("text,label\nok,1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"is not an Excel workbook .*name it .csv"):
        read_table(renamed)
    broken = tmp_path / "broken.xls"
    broken.write_bytes(XLS.read_bytes()[:1000])
    with pytest.raises(UserError, match=r"broken.xls could not be read as an .xls workbook"):
        read_table(broken)


def test_a_workbook_named_csv_says_how_to_read_it(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(_workbook(tmp_path / "r.xlsx", {"A": [["text"], ["x"]]}).read_bytes())
    with pytest.raises(UserError, match=r"an .xlsx workbook is one: name it .xlsx or pass "
                       "--format excel"):  # fmt: skip
        read_table(path)
    assert read_table(path, fmt="excel")["text"].tolist() == ["x"]


def test_a_missing_reader_package_names_the_pip_command(tmp_path, monkeypatch):
    import importlib.util

    path = _workbook(tmp_path / "r.xlsx", {"A": [["text"], ["x"]]})
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openpyxl" else real(name)
    )
    with pytest.raises(UserError, match=r"needs the openpyxl package: pip install "
                       r"'tunelab\[excel\]'"):  # fmt: skip
        read_table(path)
