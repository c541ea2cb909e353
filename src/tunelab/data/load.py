"""Read user data files (CSV, TSV, JSONL, JSON, Parquet) into pandas DataFrames.

The DataFrame's index is the row number in the file as a person counts it (1-based data
rows for tables, line numbers for JSONL), so every later error can name the row.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd

from tunelab.errors import UserError

FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".conll": "conll",
    ".iob": "conll",
    ".bio": "conll",
    ".bioes": "conll",
}
# GB18030 is a superset of GBK and GB2312: decoding with it never loses a character they hold.
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "hz"}


def detect_format(path: Path, fmt: str = "auto") -> str:
    """Return the format name for ``path``: the given one, or the one its suffix implies."""
    if fmt != "auto":
        return fmt
    suffix = path.suffix.lower()
    if suffix in FORMATS_BY_SUFFIX:
        return FORMATS_BY_SUFFIX[suffix]
    known = ", ".join(sorted(FORMATS_BY_SUFFIX))
    raise UserError(
        f"{path}: unknown file format '{suffix or '(no extension)'}'; use one of {known} "
        "or pass --format csv|tsv|jsonl|json|parquet|conll"
    )


def decode_text(raw: bytes, path: Path, encoding: str | None = None) -> str:
    """Decode file bytes: the given encoding, else UTF-8 (BOM or not), else a detected one.

    Raises:
        UserError: if the bytes look binary or cannot be decoded.
    """
    if b"\x00" in raw[:8192]:
        raise UserError(
            f"{path} looks like a binary file (it contains NUL bytes); give a text or Parquet file"
        )
    if encoding:
        try:
            return raw.decode(encoding)
        except LookupError:
            raise UserError(
                f"unknown encoding '{encoding}' given for {path}; try utf-8 or gb18030"
            ) from None
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path} is not valid {encoding} at byte {exc.start}; pass the file's real "
                "encoding with --encoding (e.g. gb18030)"
            ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw[:1_000_000]).best()
    candidates = []
    if best is not None:
        guess = best.encoding.lower().replace("_", "")
        candidates.append("gb18030" if guess in _GB_FAMILY else best.encoding)
    candidates.append("gb18030")
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise UserError(
        f"{path}: cannot tell its text encoding (not UTF-8 or GB18030); pass it with --encoding"
    )


def _guess_delimiter(text: str, default: str) -> str:
    header = text.split("\n", 1)[0]
    if default in header:
        return default
    for other in ("\t", ",", ";", "|"):
        if other in header:
            return other
    return default


def _ragged_lines(text: str, sep: str) -> list[int]:
    """Line numbers of records whose field count differs from the header's."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    header = next(reader, [])
    bad = []
    for record in reader:
        if record and len(record) != len(header):
            bad.append(reader.line_num)
    return bad


def _read_delimited(text: str, path: Path, sep: str, skip_bad_lines: bool) -> pd.DataFrame:
    sep = _guess_delimiter(text, sep)
    bad = _ragged_lines(text, sep) if skip_bad_lines else []
    try:
        # Every cell stays a string and only empty cells are missing: pandas would otherwise
        # turn texts such as "NA" or "null" into NaN and number-like texts into floats.
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""],
            on_bad_lines="skip" if skip_bad_lines else "error",
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise UserError(
            f"{path} is empty; it needs a header row and at least one data row"
        ) from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        raise UserError(
            f"{path} could not be parsed as {'TSV' if sep == chr(9) else 'CSV'} ({detail}); "
            "check the delimiter and quoting, or pass --format"
        ) from None
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs["bad_lines"] = bad
    return frame


def _read_jsonl(text: str, path: Path, skip_bad_lines: bool) -> pd.DataFrame:
    records, lines, bad = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if skip_bad_lines:
                bad.append(number)
                continue
            raise UserError(
                f"{path} line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                "fix or remove that line"
            ) from None
        if not isinstance(record, dict) and skip_bad_lines:
            bad.append(number)
            continue
        if not isinstance(record, dict):
            raise UserError(
                f"{path} line {number} holds a {type(record).__name__}, not a JSON object; "
                'each line must be one object such as {"text": ..., "label": ...}'
            )
        records.append(record)
        lines.append(number)
    frame = pd.DataFrame.from_records(records, index=lines)
    frame.attrs["bad_lines"] = bad
    return frame


def _read_json(text: str, path: Path) -> pd.DataFrame:
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "for one object per line use the .jsonl extension or --format jsonl"
        ) from None
    if (
        isinstance(loaded, dict)
        and len(loaded) == 1
        and isinstance(next(iter(loaded.values())), list)
    ):
        loaded = next(iter(loaded.values()))  # {"data": [...]} as some exporters write it
    if not isinstance(loaded, list) or not all(isinstance(item, dict) for item in loaded):
        raise UserError(f"{path} must hold a JSON array of objects, one per example")
    return pd.DataFrame.from_records(loaded, index=range(1, len(loaded) + 1))


def read_table(
    path: Path | str,
    fmt: str = "auto",
    encoding: str | None = None,
    max_rows: int | None = None,
    skip_bad_lines: bool = False,
    tag_column: int = -1,
) -> pd.DataFrame:
    """Read one data file into a DataFrame indexed by 1-based row (or line) number.

    Args:
        path: the file.
        fmt: ``auto`` (from the extension), ``csv``, ``tsv``, ``jsonl``, ``json``, ``parquet``
            or ``conll`` (token and tag per line; rows of ``tokens`` and ``tags`` lists).
        encoding: text encoding; ``None`` detects UTF-8 (with or without BOM) or GB18030/GBK.
        max_rows: keep only the first rows.
        skip_bad_lines: skip CSV/TSV/JSONL lines that do not parse instead of failing; their
            line numbers are kept in ``frame.attrs["bad_lines"]`` (for the data doctor).
        tag_column: the tag's field in CoNLL lines (0-based; -1: the last).

    Raises:
        UserError: for a missing, empty, binary or unparsable file.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"data file {path} does not exist; check the path")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a data file")
    fmt = detect_format(path, fmt)
    raw = path.read_bytes()
    if not raw.strip():
        raise UserError(f"data file {path} is empty")
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises several unrelated types for damaged files
            raise UserError(
                f"{path} could not be read as Parquet ({type(exc).__name__}); check the file"
            ) from None
        frame.index = pd.RangeIndex(1, len(frame) + 1)
    else:
        text = decode_text(raw, path, encoding)
        if fmt == "csv":
            frame = _read_delimited(text, path, ",", skip_bad_lines)
        elif fmt == "tsv":
            frame = _read_delimited(text, path, "\t", skip_bad_lines)
        elif fmt == "jsonl":
            frame = _read_jsonl(text, path, skip_bad_lines)
        elif fmt == "conll":
            from tunelab.data.conll import parse_conll

            frame = parse_conll(text, path, tag_column)
        else:
            frame = _read_json(text, path)
    if frame.empty:
        raise UserError(f"data file {path} has no data rows")
    if max_rows is not None:
        frame = frame.iloc[:max_rows]
    frame.attrs["source"] = str(path)
    frame.attrs.setdefault("bad_lines", [])
    return frame


def require_columns(frame: pd.DataFrame, columns: list[str], option_of: dict[str, str]) -> None:
    """Fail with the existing column names if any of ``columns`` is missing.

    Args:
        frame: a table from :func:`read_table`.
        columns: the columns a task needs.
        option_of: for each column, the config option that names it (for the message).
    """
    for column in columns:
        if column not in frame.columns:
            existing = ", ".join(map(str, frame.columns))
            raise UserError(
                f"{frame.attrs.get('source', 'data')} has no column '{column}' "
                f"(set by {option_of.get(column, 'config')}); its columns are: {existing}"
            )
