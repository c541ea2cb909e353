"""Look at a data file's bytes before parsing: binary or text, which encoding, which delimiter.

Each check turns a file that would otherwise crash a parser, or be read as garbage without a
word, into one :class:`~tunelab.errors.UserError` that names the file and the line.
"""

from __future__ import annotations

import csv
import io
import itertools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunelab.errors import UserError

# Leading bytes of common non-text files, and what to tell the user about each.
_MAGIC = (
    (b"\x89PNG", "a PNG image", ""),
    (b"\xff\xd8\xff", "a JPEG image", ""),
    (b"GIF87a", "a GIF image", ""),
    (b"GIF89a", "a GIF image", ""),
    (b"%PDF-", "a PDF document", ""),
    (
        b"PK\x03\x04",
        "a ZIP archive",
        "an .xlsx workbook is one: name it .xlsx or pass --format excel",
    ),
    (b"\x1f\x8b", "a gzip archive", "unpack it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "unpack it first"),
    (b"\xfd7zXZ\x00", "an xz archive", "unpack it first"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old Office file",
        "an .xls workbook is one: name it .xls or pass --format excel",
    ),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV"),
    (b"\x7fELF", "a program", ""),
)
_CONTROL_SHARE = 0.01  # more control characters than this and the text is not a data file
_SAMPLE_CHARS = 65_536
_DELIMITERS = ("\t", ",", ";", "|")


def check_binary(raw: bytes, path: Path) -> None:
    """Fail for bytes that are no text file: a known binary format, NUL or control bytes.

    Raises:
        UserError: ``"PATH is not a text file (...)"``.
    """
    for magic, what, advice in _MAGIC:
        if raw.startswith(magic):
            raise UserError(
                f"{path} is not a text file (it is {what}); "
                f"{advice or 'give a CSV/TSV/JSONL/JSON or Parquet file'}"
            )
    if raw.startswith(b"PAR1") and raw.rstrip().endswith(b"PAR1"):
        raise UserError(
            f"{path} is not a text file (it is a Parquet file); name it .parquet or pass "
            "--format parquet"
        )
    _check_controls(raw, path)  # random bytes hold control bytes in any ASCII-based encoding
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise UserError(
            f"{path} is not a text file (it contains NUL bytes, the first on line {line}); "
            "give a CSV/TSV/JSONL/JSON text file or a Parquet file"
        )


def _check_controls(raw: bytes, path: Path) -> None:
    sample = raw[:_SAMPLE_CHARS]
    controls = [i for i, byte in enumerate(sample) if byte < 32 and byte not in b"\t\n\r\f\v"]
    if len(controls) >= 8 and len(controls) > _CONTROL_SHARE * len(sample):
        raise UserError(
            f"{path} is not a text file ({len(controls)} control characters in its first "
            f"{len(sample)} bytes, the first on line {line_of_byte(raw, controls[0])}); give a "
            "CSV/TSV/JSONL/JSON text file or a Parquet file"
        )


def _has_utf8_evidence(line: str) -> bool:
    """True if a line that decoded as UTF-8 is very unlikely to be another encoding by chance.

    A GBK or Latin-1 line is valid UTF-8 by accident only when it is very short: two
    characters of three or more UTF-8 bytes, or four non-ASCII characters, almost never occur.
    """
    wide = sum(1 for ch in line if ord(ch) >= 0x800)
    non_ascii = sum(1 for ch in line if ord(ch) >= 0x80)
    return wide >= 2 or non_ascii >= 4


def diagnose_utf8_failure(raw: bytes, path: Path) -> None:
    """Explain a file that is not valid UTF-8 when it is UTF-8 nearly everywhere.

    Called after UTF-8 decoding failed. A file cut in the middle of a character, or one that
    mixes UTF-8 lines with lines in another encoding (GBK rows pasted into a UTF-8 file), is
    refused: decoding it all with one detected encoding would garble every UTF-8 line without
    a word. A file with no sign of UTF-8 returns, and encoding detection goes on.

    Raises:
        UserError: naming the first line that is not UTF-8 (and the first that is).
    """
    try:
        raw.decode("utf-8-sig")
        return
    except UnicodeDecodeError as exc:
        if exc.end >= len(raw) and "unexpected end" in exc.reason:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise UserError(
                f"{path} ends in the middle of a UTF-8 character on line {line}; the file looks "
                "truncated: copy or export it again"
            ) from None
    first_utf8: int | None = None
    first_bad: tuple[int, bytes] | None = None
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            decoded = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            first_bad = first_bad or (number, line)
            continue
        if first_utf8 is None and _has_utf8_evidence(decoded):
            first_utf8 = number
        if first_utf8 is not None and first_bad is not None:
            break
    if first_utf8 is None or first_bad is None:
        return
    number, line = first_bad
    shown = line.decode("gb18030", errors="replace").strip()[:40]
    raise UserError(
        f"{path} mixes text encodings: line {first_utf8} is UTF-8 but line {number} is not "
        f"(read as GB18030 it says {shown!r}); convert the whole file to UTF-8, or pass "
        "--encoding if it really is one encoding"
    )


def line_of_byte(raw: bytes, offset: int) -> int:
    """The 1-based line number holding byte ``offset``."""
    return raw.count(b"\n", 0, offset) + 1


@contextmanager
def _large_fields(size: int) -> Iterator[None]:
    """Let the csv module read fields up to ``size`` characters (its default stops at 128 kB)."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, min(size + 1, sys.maxsize)))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def records(text: str, sep: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line, fields)`` of each CSV record, quotes and embedded newlines respected."""
    with _large_fields(len(text)):
        # newline="": a lone carriage return ends a line, as it does for pandas' parser.
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        end = 0
        for fields in reader:
            yield end + 1, fields
            end = reader.line_num


def table_delimiter(text: str, default: str = "\t") -> str | None:
    """The delimiter that splits the first records into the same number (> 1) of fields (the
    default first, then tab, comma, semicolon and bar), or None when none does."""
    sample = text[:_SAMPLE_CHARS]
    if len(text) > len(sample):
        sample = sample[: sample.rfind("\n") + 1]  # drop a record the cut may have split
    for candidate in (default, *(d for d in _DELIMITERS if d != default)):
        try:
            found = itertools.islice(records(sample, candidate), 20)
            counts = [len(fields) for _, fields in found if fields]
        except csv.Error:
            continue
        if counts and counts[0] > 1 and len(set(counts)) == 1:
            return candidate
    return None


def guess_delimiter(text: str, default: str) -> str:
    """The delimiter that splits the first records into the same number (> 1) of fields.

    The default wins when it works; otherwise the first of tab, comma, semicolon and bar that
    does; otherwise one found in the first line; otherwise the default.
    """
    found = table_delimiter(text, default)
    if found is not None:
        return found
    header = text.split("\n", 1)[0]
    if default in header:
        return default
    return next((d for d in _DELIMITERS if d in header), default)


def unclosed_quote_line(text: str, sep: str) -> int:
    """First line of the last CSV record: where a quote left open at the end of the file starts."""
    last = 1
    for start, _ in records(text, sep):
        last = start
    return last


def short_record(text: str, sep: str, longer: bool = False) -> tuple[int, int, int] | None:
    """``(line, fields, header fields)`` of the first record with fewer fields than the header
    (``longer``: with more)."""
    header_fields = 0
    for number, fields in records(text, sep):
        if not header_fields:
            header_fields = len(fields)
        elif fields and (len(fields) > header_fields if longer else len(fields) < header_fields):
            return number, len(fields), header_fields
    return None


def delimiter_hint(columns: list[str], missing: str) -> str:
    """A hint when a column name looks like several names joined by another delimiter."""
    for column in map(str, columns):
        for sep in _DELIMITERS:
            parts = [p.strip().strip('"').lower() for p in column.split(sep)]
            if len(parts) > 1 and missing.lower() in parts:
                shown = "tab" if sep == "\t" else repr(sep)
                return (
                    f"; the header looks {shown}-separated, but the file was read with another "
                    "delimiter: save it comma-separated (.csv) or tab-separated (.tsv)"
                )
    return ""
