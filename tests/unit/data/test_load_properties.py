"""Property-based tests of the file readers: round-trips of random tables, random bytes.

Whatever pandas writes, tunelab reads back cell for cell, or refuses with a UserError;
whatever bytes a file holds, the reader returns a table or a UserError, never another
exception. Derandomized and without an example database, so CI runs are repeatable.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tunelab.data.load import FORMATS_BY_SUFFIX, read_table
from tunelab.errors import UserError

# Characters that break naive readers, mixed into arbitrary Unicode (no lone surrogates:
# they cannot be written as UTF-8 at all).
SPECIAL = [*",;|\"'\t\n\r\\#", "\r\n", "\x00", "\x0b", "\x85", "\u2028", "\ufeff"]
SPECIAL += ["中文", "😀", "NA", "null", " ", "0123", "1e5", "-", "{", "}", "[", "]"]
cells = st.lists(
    st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from(SPECIAL)), max_size=12
).map("".join)
tables = st.lists(st.tuples(cells, cells), min_size=1, max_size=6)
# pandas (through Python's csv writer) leaves a lone carriage return in a cell unquoted, and
# then no reader can tell it from a line break: such cells cannot round-trip through CSV.
csv_tables = tables.map(
    lambda rows: [tuple(re.sub("\r(?!\n)", "\r\n", cell) for cell in row) for row in rows]
)

# Each example writes a file into a directory of its own (tmp_path is per test, not per example).
PROFILE = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
)


def _write(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path)


def _cell(value: object) -> str:
    """A read cell as text: CSV and TSV read an empty cell as missing."""
    return "" if isinstance(value, float) and math.isnan(value) else str(value)


def _not_text(rows: list[tuple[str, str]]) -> bool:
    """Cells that no text data file holds: NUL, or 8+ control characters (binary junk)."""
    text = "".join(t for row in rows for t in row)
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    return "\x00" in text or controls >= 8


def _round_trip(rows: list[tuple[str, str]], suffix: str) -> None:
    frame = pd.DataFrame(rows, columns=["text", "label"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"d{suffix}"
        _write(frame, path)
        try:
            read = read_table(path)
        except UserError as error:
            assert "\n" not in str(error)
            assert _not_text(rows), str(error)  # refusing is allowed only for such tables
            return
    assert list(read.columns) == ["text", "label"]
    assert [[_cell(v) for v in row] for row in read.itertuples(index=False)] == [
        list(row) for row in rows
    ]


@PROFILE
@given(csv_tables)
def test_csv_round_trip(rows: list[tuple[str, str]]) -> None:
    _round_trip(rows, ".csv")


@PROFILE
@given(csv_tables)
def test_tsv_round_trip(rows: list[tuple[str, str]]) -> None:
    _round_trip(rows, ".tsv")


@PROFILE
@given(tables)
def test_jsonl_round_trip(rows: list[tuple[str, str]]) -> None:
    _round_trip(rows, ".jsonl")


@settings(PROFILE, max_examples=25)
@given(tables)
def test_parquet_round_trip(rows: list[tuple[str, str]]) -> None:
    _round_trip(rows, ".parquet")


@settings(PROFILE, max_examples=40)
@given(st.lists(st.dictionaries(st.sampled_from(["text", "label", "x"]), cells), min_size=1))
def test_json_array_round_trip(records: list[dict[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "d.json"
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        try:
            read = read_table(path)
        except UserError as error:  # only a list of empty objects has no columns
            assert all(not record for record in records), str(error)
            return
    for number, record in enumerate(records, start=1):
        for key, value in record.items():
            assert read.loc[number, key] == value


bytes_and_suffix = st.tuples(
    st.one_of(
        st.binary(max_size=400),
        # Text-like bytes: separators, quotes, braces and multi-byte UTF-8/GBK fragments.
        st.lists(
            st.sampled_from(
                [bytes([byte]) for byte in b',;\t\n\r"{}[]:a1\x01']
                + [b"text", b"label", "中".encode(), "中".encode("gbk"), b"\xff", b"\xe4\xb8"]
            ),
            max_size=60,
        ).map(b"".join),
    ),
    st.sampled_from(sorted(FORMATS_BY_SUFFIX)),
    st.booleans(),
)


@settings(PROFILE, max_examples=400)
@given(bytes_and_suffix)
def test_any_bytes_give_a_table_or_a_user_error(case: tuple[bytes, str, bool]) -> None:
    raw, suffix, skip_bad_lines = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"d{suffix}"
        path.write_bytes(raw)
        try:
            frame = read_table(path, skip_bad_lines=skip_bad_lines)
        except UserError as error:
            assert "\n" not in str(error)
            return
    assert isinstance(frame, pd.DataFrame)
    assert not frame.empty
