"""Read user data files (CSV, TSV, JSONL, JSON, Parquet, Excel) into pandas DataFrames; a folder
of images or audio files (one sub-folder per class), or one such file, becomes a table of paths.

The DataFrame's index is the row number in the file as a person counts it (1-based data
rows for tables, line numbers for JSONL), so every later error can name the row.
"""

from __future__ import annotations

import bz2
import codecs
import difflib
import glob
import gzip
import io
import json
import lzma
import re
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.data.conll import looks_like_conll, parse_conll, parse_conllu
from tunelab.data.media import (
    MEDIA_SUFFIXES,
    media_kind,
    read_media_file,
    read_media_files,
    read_media_folder,
)
from tunelab.data.saved_dataset import is_saved_dataset, read_saved_dataset
from tunelab.data.sniff import (
    check_binary,
    delimiter_hint,
    diagnose_utf8_failure,
    guess_delimiter,
    line_of_byte,
    records,
    short_record,
    table_delimiter,
    unclosed_quote_line,
)
from tunelab.data.spreadsheet import read_workbook
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
    ".bmes": "conll",  # ResumeNER's train.char.bmes: characters and B-/M-/E-/S- tags
    ".conllu": "conllu",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
}
PLAIN_TEXT_SUFFIXES = (".txt", ".text", ".dat")  # read as a table where they split into one
# GB18030 is a superset of GBK and GB2312: decoding with it never loses a character they hold.
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "cp936", "hz"}


GLOB_CHARACTERS = re.compile(r"[*?\[]")  # a path that does not exist but has these: a pattern
DECOMPRESSORS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}


def read_file_bytes(path: Path) -> bytes:
    """The bytes of ``path``, decompressed when it ends in .gz, .bz2 or .xz.

    Raises:
        UserError: for a compressed file that is damaged.
    """
    raw = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix not in DECOMPRESSORS:
        return raw
    try:
        return DECOMPRESSORS[suffix](raw)
    except (OSError, EOFError, ValueError) as exc:  # gzip: OSError; lzma: LZMAError(ValueError)
        raise UserError(
            f"{path} could not be decompressed as {suffix[1:]} ({exc}); check the file"
        ) from None


def _compressed_suffix(path: Path) -> str:
    """The suffix that names the format: ``.csv`` for reviews.csv.gz as for reviews.csv."""
    suffix = path.suffix.lower()
    if suffix in DECOMPRESSORS:  # reviews.csv.gz: the format is the suffix before
        suffix = Path(path.stem).suffix.lower()
    return suffix


def _plain_text_format(text: str, path: Path) -> str:
    """``conll``, ``tsv`` or ``csv`` for the decoded ``text`` of a .txt file: CoNLL where its
    first lines are tokens and tags in sentences (dh_msra.txt), else the table its first lines
    split into (SICK.txt, exports named .txt); otherwise the error for a format it cannot tell."""
    if looks_like_conll(text):
        return "conll"
    delimiter = table_delimiter(text) if text.strip() else None
    if delimiter is not None:
        return "tsv" if delimiter == "\t" else "csv"
    known = ", ".join(sorted(FORMATS_BY_SUFFIX))
    raise UserError(
        f"{path}: a {path.suffix} file whose first lines do not split into columns by a tab, "
        f"comma, semicolon or bar, nor into tokens and tags; save it as one of {known} (a "
        "header row naming the columns, e.g. text,label), or pass --format"
    )


def names_a_data_file(path: Path) -> bool:
    """Whether ``path``'s suffix names a data format (reviews.csv, reviews.jsonl.gz, a .txt,
    a compressed .json.gz); a plain .json is left out, as it may as well be a run config (JSON
    is YAML)."""
    if path.suffix.lower() in DECOMPRESSORS:  # a run config is never compressed
        return True
    suffix = _compressed_suffix(path)
    return suffix != ".json" and (suffix in FORMATS_BY_SUFFIX or suffix in PLAIN_TEXT_SUFFIXES)


def plain_text_lines(path: Path | str, encoding: str | None = None) -> list[str] | None:
    """The non-empty lines of a .txt (.text, .dat) file that does not split into a table (one
    text a line), stripped; None for any other file, which :func:`read_table` reads."""
    path = Path(path)
    if _compressed_suffix(path) not in PLAIN_TEXT_SUFFIXES or not path.is_file():
        return None
    text = decode_text(read_file_bytes(path), path, encoding)
    if table_delimiter(text) is not None or looks_like_conll(text):
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def file_format(path: Path, fmt: str = "auto", encoding: str | None = None) -> str:
    """The format :func:`read_table` reads ``path`` in: the given one, the one its suffix
    implies, or for a .txt (.text, .dat) file or one whose suffix names no format
    (``eng.train``) the one its text shows.

    Raises:
        UserError: for a suffix that names no format, or a .txt file that is none of them.
    """
    if fmt != "auto" or _compressed_suffix(path) in FORMATS_BY_SUFFIX:
        return detect_format(path, fmt)
    return _sniffed_format(path, read_file_bytes(path), encoding)[0]


def _sniffed_format(
    path: Path, raw: bytes, encoding: str | None
) -> tuple[str, tuple[str, str] | None]:
    """The format the text of a file its suffix does not type shows (a .txt: CoNLL or a
    table; another suffix: CoNLL), and the text with its encoding, decoded once for the
    reader (None for an empty file).

    Raises:
        UserError: for text that is none of them; for bytes that are no text, the unknown
            format where the suffix names none (a .docx), else why they cannot be decoded.
    """
    plain_text = _compressed_suffix(path) in PLAIN_TEXT_SUFFIXES
    decoded = None
    if raw.strip():  # the whole file: a UTF-16 export (Excel's "Unicode text") or GBK
        try:
            decoded = decode_with_encoding(raw, path, encoding)
        except UserError:
            if not plain_text:
                detect_format(path)  # a .docx or .pdf: the unknown format is the news
            raise
    text = decoded[0] if decoded else ""
    return (_plain_text_format(text, path) if plain_text else _unnamed_format(text, path)), decoded


def _unnamed_format(text: str, path: Path) -> str:
    """``conll`` for a file whose suffix names no format (CoNLL-2003's ``eng.train``, Weibo
    NER's ``weiboNER_2nd_conll.dev``) where its text shows tokens and tags in sentences;
    otherwise the error for an unknown format."""
    if text and looks_like_conll(text):
        return "conll"
    return detect_format(path)  # raises, naming the formats and --format


def detect_format(path: Path, fmt: str = "auto") -> str:
    """Return the format name for ``path``: the given one, or the one its suffix implies."""
    if fmt != "auto":
        return fmt
    suffix = _compressed_suffix(path)
    if suffix in FORMATS_BY_SUFFIX:
        return FORMATS_BY_SUFFIX[suffix]
    known = ", ".join(sorted(FORMATS_BY_SUFFIX))
    raise UserError(
        f"{path}: unknown file format '{suffix or '(no extension)'}'; use one of {known} "
        "or pass --format csv|tsv|jsonl|json|parquet|conll|conllu|excel"
    )


def decode_text(raw: bytes, path: Path, encoding: str | None = None) -> str:
    """Decode file bytes: the given encoding, else UTF-8 (BOM or not), else a detected one.

    Raises:
        UserError: if the bytes look binary or cannot be decoded.
    """
    return decode_with_encoding(raw, path, encoding)[0]


def decode_with_encoding(raw: bytes, path: Path, encoding: str | None = None) -> tuple[str, str]:
    """Decode file bytes as :func:`decode_text` does; also the encoding that decoded them.

    Raises:
        UserError: if the bytes look binary or cannot be decoded.
    """
    if not encoding and raw.startswith(codecs.BOM_UTF32_LE):
        encoding = "utf-32"
    elif not encoding and raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"  # Excel's "Unicode text" export
    if not (encoding or "").lower().replace("-", "").startswith(("utf16", "utf32")):
        check_binary(raw, path)  # UTF-16/32 text is full of NUL bytes
    return _decode(raw, path, encoding)


def _decode(raw: bytes, path: Path, encoding: str | None) -> tuple[str, str]:
    if encoding:
        try:
            return raw.decode(encoding), encoding
        except LookupError:
            raise UserError(
                f"unknown encoding '{encoding}' given for {path}; try utf-8 or gb18030"
            ) from None
        except UnicodeDecodeError as exc:
            raise UserError(
                f"{path} is not valid {encoding} at byte {exc.start} (line "
                f"{line_of_byte(raw, exc.start)}); pass the file's real encoding with "
                "--encoding (e.g. gb18030)"
            ) from None
    try:
        return raw.decode("utf-8-sig"), "utf-8-sig" if raw.startswith(codecs.BOM_UTF8) else "utf-8"
    except UnicodeDecodeError:
        diagnose_utf8_failure(raw, path)
    from charset_normalizer import from_bytes

    best = from_bytes(raw[:1_000_000]).best()
    candidates = []
    if best is not None:
        guess = best.encoding.lower().replace("_", "")
        candidates.append("gb18030" if guess in _GB_FAMILY else best.encoding)
    candidates.append("gb18030")
    for candidate in candidates:
        try:
            return raw.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise UserError(
        f"{path}: cannot tell its text encoding (not UTF-8 or GB18030); pass it with --encoding"
    )


def _ragged_lines(text: str, sep: str) -> tuple[list[int], list[int]]:
    """Line numbers of the records whose field count differs from the header's, and the row
    numbers (1-based, after the header, blank lines not counted) of the records that match."""
    bad, kept, header, row = [], [], 0, 0
    for number, record in records(text, sep):
        if not record:
            continue
        if not header:
            header = len(record)
            continue
        row += 1
        if len(record) == header:
            kept.append(row)
        else:
            bad.append(number)
    return bad, kept


def _read_delimited(text: str, path: Path, sep: str, skip_bad_lines: bool) -> pd.DataFrame:
    sep = guess_delimiter(text, sep)
    kind = "TSV" if sep == "\t" else "CSV"
    bad, kept = _ragged_lines(text, sep) if skip_bad_lines else ([], [])

    def parse(skipped: list[int] | None = None) -> pd.DataFrame:
        # Every cell stays a string and only empty cells are missing: pandas would otherwise
        # turn texts such as "NA" or "null" into NaN and number-like texts into floats.
        # UTF-8 bytes, not a StringIO: pandas re-encodes a text stream chunk by chunk and
        # carries the surplus bytes of multi-byte characters forward in one growing buffer,
        # which made reading 1M Chinese rows (230 MB) take 65 s instead of 5.
        return pd.read_csv(
            io.BytesIO(text.encode("utf-8")), encoding="utf-8", sep=sep, dtype=str,
            keep_default_na=False, na_values=[""], skiprows=skipped,
            on_bad_lines="skip" if skip_bad_lines else "error",
        )  # fmt: skip

    try:
        frame = parse()
        if not isinstance(frame.index, pd.RangeIndex):
            # the first data row has one field more than the header: pandas then reads the
            # first column as row names and every row's cells one column to the right
            long = short_record(text, sep, longer=True)
            if not skip_bad_lines and long is not None:
                line, found, wanted = long
                raise pd.errors.ParserError(f"Expected {wanted} fields in line {line}, saw {found}")
            frame = parse([line - 1 for line in bad])
    except pd.errors.EmptyDataError:
        raise UserError(
            f"{path} is empty; it needs a header row and at least one data row"
        ) from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1]
        if "EOF inside string" in detail:
            raise UserError(
                f"{path} ends inside a quoted field that opens on line "
                f"{unclosed_quote_line(text, sep)}; the file looks truncated, or a quote there "
                "is not closed"
            ) from None
        extra = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", detail)
        if extra:
            wanted, line, found = extra.groups()
            raise UserError(
                f"{path} line {line} has {found} fields but the header has {wanted} (a "
                f"delimiter inside a text that is not quoted?); quote that text or remove the "
                f"line (`tunelab doctor {path} --fix --out clean.csv` lists every "
                "such line and writes the rows that parse)"
            ) from None
        raise UserError(
            f"{path} could not be parsed as {kind} ({detail}); "
            "check the delimiter and quoting, or pass --format"
        ) from None
    if not skip_bad_lines and frame.shape[1] > 1 and frame.iloc[:, -1].isna().any():
        short = short_record(text, sep)  # pandas fills a cut-short row with missing values
        if short is not None:
            line, found, wanted = short
            cut = " (the file looks truncated)" if line == text.rstrip("\n").count("\n") + 1 else ""
            raise UserError(
                f"{path} line {line} has {found} field(s) but the header has {wanted}{cut}; "
                "complete or remove that row"
            )
    # rows keep their numbers when a broken line before them is skipped (where the csv
    # module and pandas agree on which records those are)
    frame.index = (
        pd.Index(kept) if bad and len(kept) == len(frame) else pd.RangeIndex(1, len(frame) + 1)
    )
    frame.attrs["bad_lines"] = bad
    frame.attrs["delimiter"] = sep
    return frame


def _json_kind(value: object) -> str:
    """How a JSON value reads to a person: 'a string', 'an object with keys a, b'."""
    if isinstance(value, dict):
        keys = ", ".join(map(str, list(value)[:5]))
        return f"an object with keys {keys}" if keys else "an empty object"
    names = {list: "an array", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _parse_json(text: str) -> object:
    try:
        return json.loads(text)
    except RecursionError:  # "[[[[..." deeper than Python's recursion limit
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def _read_jsonl(text: str, path: Path, skip_bad_lines: bool) -> pd.DataFrame:
    rows, lines, bad = [], [], []
    # Only "\n" ends a line: str.splitlines would also split inside a JSON string at
    # characters such as U+2028 that JSON writers leave unescaped.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = _parse_json(line)
        except json.JSONDecodeError as exc:
            if skip_bad_lines:
                bad.append(number)
                continue
            near = line[max(exc.pos - 20, 0) : exc.pos + 20]
            raise UserError(
                f"{path} line {number} is not valid JSON ({exc.msg.removesuffix(' at')} at "
                f"column {exc.colno}, near {near!r}); fix or remove that line"
            ) from None
        if not isinstance(record, dict) and skip_bad_lines:
            bad.append(number)
            continue
        if not isinstance(record, dict):
            raise UserError(
                f"{path} line {number} holds {_json_kind(record)}, not a JSON object; "
                'each line must be one object such as {"text": ..., "label": ...}'
            )
        rows.append(record)
        lines.append(number)
    frame = pd.DataFrame.from_records(rows, index=lines)
    frame.attrs["bad_lines"] = bad
    return frame


def _json_stream(text: str) -> list[Any] | None:
    """The values of a file of JSON values one after another (pretty-printed objects, as a
    copy of CLUENER's train.json holds them, each over many lines), or None where the text
    is not such a stream."""
    decoder, values, position = json.JSONDecoder(), [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return values if len(values) > 1 else None
        try:
            value, position = decoder.raw_decode(text, position)
        except (json.JSONDecodeError, RecursionError):
            return None
        values.append(value)


def _read_json(text: str, path: Path) -> pd.DataFrame:
    try:
        loaded = _parse_json(text)
    except json.JSONDecodeError as exc:
        stream = _json_stream(text) if exc.msg == "Extra data" else None
        if stream is not None and all(isinstance(item, dict) for item in stream):
            return pd.DataFrame.from_records(stream, index=range(1, len(stream) + 1))
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
    if not isinstance(loaded, list):
        raise UserError(
            f"{path} must hold a JSON array of objects, one per example; it holds "
            f"{_json_kind(loaded)}"
        )
    for number, item in enumerate(loaded, start=1):
        if not isinstance(item, dict):
            raise UserError(
                f"{path} must hold a JSON array of objects, one per example; item {number} "
                f"is {_json_kind(item)}"
            )
    return pd.DataFrame.from_records(loaded, index=range(1, len(loaded) + 1))


def read_table(
    path: Path | str,
    fmt: str = "auto",
    encoding: str | None = None,
    max_rows: int | None = None,
    skip_bad_lines: bool = False,
    tag_column: int = -1,
    media: str | None = None,
    sheet: str | int | None = None,
) -> pd.DataFrame:
    """Read one data file into a DataFrame indexed by 1-based row (or line) number (for a
    spreadsheet: the row number it shows).

    Args:
        path: the file; a folder of class sub-folders of images or audio files, or one such
            file, gives rows of ``image`` or ``audio`` paths (and ``label``, the sub-folder)
            without decoding any of them; a folder saved by ``datasets`` gives its rows (images
            and audio as encoded bytes).
        fmt: ``auto`` (from the extension), ``csv``, ``tsv``, ``jsonl``, ``json``, ``parquet``,
            ``excel`` (.xlsx or .xls) or ``conll`` (token and tag per line; rows of ``tokens``
            and ``tags`` lists).
        encoding: text encoding; ``None`` detects UTF-8 (with or without BOM) or GB18030/GBK.
        max_rows: keep only the first rows.
        skip_bad_lines: skip CSV/TSV/JSONL lines that do not parse instead of failing; their
            line numbers are kept in ``frame.attrs["bad_lines"]`` (for the data doctor).
        tag_column: the tag's field in CoNLL lines (0-based; -1: the last).
        media: the kind of file a folder is read for (a task's ``input_kind``: "image",
            "audio"); another kind, or None, reads whichever kind the folder holds.
        sheet: the sheet of a workbook, by name or 0-based number; ``None``: the first.

    Raises:
        UserError: for a missing, empty, binary or unparsable file.
    """
    path = Path(path)
    if not path.exists() and GLOB_CHARACTERS.search(str(path)):
        frame = read_pattern(str(path), media)
        return frame.iloc[:max_rows] if max_rows is not None else frame
    if not path.exists():
        raise UserError(f"data file {path} does not exist; check the path")
    if is_saved_dataset(path):
        frame = read_saved_dataset(path)
        return frame.iloc[:max_rows] if max_rows is not None else frame
    if path.is_dir() or (fmt == "auto" and media_kind(path)):
        # a folder of class sub-folders of media files (or one file): rows of paths
        frame = read_media_folder(path, media) if path.is_dir() else read_media_file(path)
        return frame.iloc[:max_rows] if max_rows is not None else frame
    decoded: tuple[str, str] | None = None  # a file sniffed is decoded once, to sniff and read
    if fmt == "auto" and _compressed_suffix(path) not in FORMATS_BY_SUFFIX:
        raw = read_file_bytes(path)
        fmt, decoded = _sniffed_format(path, raw, encoding)
    else:
        fmt = detect_format(path, fmt)
        raw = read_file_bytes(path)
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
    elif fmt == "excel":
        frame = read_workbook(raw, path, sheet)
    else:
        text, encoding = decoded or decode_with_encoding(raw, path, encoding)
        if fmt == "csv":
            frame = _read_delimited(text, path, ",", skip_bad_lines)
        elif fmt == "tsv":
            frame = _read_delimited(text, path, "\t", skip_bad_lines)
        elif fmt == "jsonl":
            frame = _read_jsonl(text, path, skip_bad_lines)
        elif fmt == "conll":
            frame = parse_conll(text, path, tag_column)
        elif fmt == "conllu":
            frame = parse_conllu(text, path, tag_column)
        else:
            frame = _read_json(text, path)
    if frame.empty:
        raise UserError(f"data file {path} has no data rows")
    if max_rows is not None:
        frame = frame.iloc[:max_rows]
    frame.attrs["source"] = str(path)
    frame.attrs["format"] = fmt
    if encoding is not None and fmt != "parquet":  # what decoded the text (the workbench shows it)
        frame.attrs["encoding"] = encoding
    frame.attrs.setdefault("bad_lines", [])
    return frame


def read_pattern(pattern: str, media: str | None = None) -> pd.DataFrame:
    """The image or audio files a shell pattern (``photos/*.jpg``, ``clips/**/*.wav``) names,
    as rows of paths, sorted; for prediction, where a shell's own expansion would overflow a
    command line.

    Args:
        pattern: the pattern (``**`` reaches into sub-folders).
        media: the kind of file the task reads ("image", "audio"); None: either kind.

    Raises:
        UserError: if the pattern names no file, a file of another kind, or mixes kinds.
    """
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise UserError(f"the pattern {pattern} matches no file; check the folder and pattern")
    kinds = (media,) if media in MEDIA_SUFFIXES else tuple(MEDIA_SUFFIXES)
    others = [p for p in files if media_kind(p) not in kinds]
    if others:
        what = " or ".join(f"{kind} file" for kind in kinds)  # "image" and "audio" take "an"
        raise UserError(
            f"the pattern {pattern} matches {others[0]}, which is not an {what}; a pattern may "
            f"name {' or '.join(kinds)} files only (give a data file with --input instead)"
        )
    return read_media_files(files, pattern)


def require_columns(frame: pd.DataFrame, columns: list[str], option_of: dict[str, str]) -> None:
    """Fail with the existing column names if any of ``columns`` is missing.

    Args:
        frame: a table from :func:`read_table`.
        columns: the columns a task needs.
        option_of: for each column, the config option that names it (for the message).
    """
    for column in columns:
        if column not in frame.columns:
            names = list(map(str, frame.columns))
            close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
            close += [n for n in names if n.strip().lower() == column.lower()][:1]
            hint = delimiter_hint(names, column) or (
                f"; did you mean '{close[-1]}'?" if close else ""
            )
            raise UserError(
                f"{frame.attrs.get('source', 'data')} has no column '{column}' "
                f"(set by {option_of.get(column, 'config')}); its columns are: "
                f"{', '.join(names)}{hint}"
            )
