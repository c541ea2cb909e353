"""Media files as data: folders of class sub-folders and path columns read into tables of
paths, for images and audio alike.

A table of media holds paths (or, for files stored inside a Parquet file or a saved
``datasets`` folder, the encoded file bytes), never pixels or samples: the task decodes a batch
at a time in its data loader. A folder follows the ``imagefolder``/``audiofolder`` convention
of ``datasets`` (each sub-folder is a class); a CSV/JSONL/Parquet file names its files in a
column, relative to the file's own folder, which no path may leave.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.data.split_names import names_a_split
from tunelab.errors import UserError

# file suffixes of each kind of media a task reads (a task's ``input_kind``)
MEDIA_SUFFIXES = {
    "image": frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}),
    # what libsndfile decodes (MP3 and Opus since libsndfile 1.1/1.0.29)
    "audio": frozenset(
        {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au"}
    ),
}
LABEL_COLUMN = "label"
SPLIT_COLUMN = "split"  # a split folder's rows: the split each file came from
MEDIA_FOLDER = "media-folder"  # frame.attrs["kind"] of a table read from a folder or files
# A file as a table holds it: a path, or the bytes of an encoded file (PNG, WAV, ...).
MediaRef = str | bytes


def media_name(file: MediaRef, row: Any, noun: str = "file") -> str:
    """How messages and predictions name a file: its path, or the row that holds its bytes."""
    return f"row {row} ({noun} bytes)" if isinstance(file, (bytes, bytearray)) else str(file)


class UnreadableFile(Exception):
    """A media file that cannot be decoded; the message says why (missing, truncated,
    corrupt), the caller names the row and path."""


def media_kind(path: Path) -> str | None:
    """The kind of media ``path`` names by its suffix ("image", "audio"), or None."""
    suffix = path.suffix.lower()
    return next((kind for kind, found in MEDIA_SUFFIXES.items() if suffix in found), None)


def _media_files(folder: Path, kinds: tuple[str, ...]) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and media_kind(p) in kinds
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip


def folder_media_kinds(folder: Path) -> set[str]:
    """The kinds of media file ("image", "audio") under ``folder``, hidden files left out as
    :func:`read_media_folder` leaves them."""
    return {str(media_kind(path)) for path in _media_files(folder, tuple(MEDIA_SUFFIXES))}


def read_media_folder(folder: Path, kind: str | None = None) -> pd.DataFrame:
    """The media files under ``folder`` as rows of (``<kind>``, label): each sub-folder is a
    class; files directly in ``folder`` (no class folders) give rows without labels, for
    prediction. The path column is named after the kind: ``image`` or ``audio``. A folder of
    split folders of class folders (``train/cat/1.png``) gives every split's files, each
    labelled by its class, with the split in a ``split`` column (``tunelab predict --input``
    on such a folder).

    Args:
        folder: the folder.
        kind: the kind of file to read ("image", "audio"); None: whichever kind the folder
            holds (a folder that holds both is refused).

    Raises:
        UserError: if the folder holds no such files, mixes loose files and class folders, or
            (without ``kind``) mixes images and audio.
    """
    kinds = (kind,) if kind in MEDIA_SUFFIXES else tuple(MEDIA_SUFFIXES)
    files = _media_files(folder, kinds)
    noun = " or ".join(kinds)
    if not files:
        suffixes = ", ".join(sorted(set().union(*(MEDIA_SUFFIXES[k] for k in kinds))))
        raise UserError(
            f"{folder} holds no {noun} files ({suffixes}); give a folder with one sub-folder "
            f"of {noun} files per class"
        )
    found = {media_kind(p) for p in files}
    if len(found) > 1:
        examples = " and ".join(
            f"{k} files ({next(p.name for p in files if media_kind(p) == k)})"
            for k in sorted(map(str, found))
        )
        raise UserError(f"{folder} mixes {examples}; keep one kind of file in a data folder")
    column = str(found.pop())
    depths = {len(p.relative_to(folder).parts) for p in files}
    if depths == {1}:
        frame = pd.DataFrame({column: [str(p) for p in files]})
    elif 1 in depths:
        loose = next(p for p in files if len(p.relative_to(folder).parts) == 1)
        raise UserError(
            f"{folder} mixes loose {column} files ({loose.name}) with class "
            "sub-folders; move each file into the folder of its class"
        )
    else:
        parts = [p.relative_to(folder).parts for p in files]
        frame = pd.DataFrame({column: [str(p) for p in files]})
        if depths == {3} and all(names_a_split(part[0]) for part in parts):
            # train/cat/1.png, test/dog/2.png: the classes sit under the split folders
            frame[LABEL_COLUMN] = [part[1] for part in parts]
            frame[SPLIT_COLUMN] = [part[0] for part in parts]
        else:
            frame[LABEL_COLUMN] = [part[0] for part in parts]
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs.update({"source": str(folder), "kind": MEDIA_FOLDER, "bad_lines": []})
    return frame


def read_media_file(path: Path) -> pd.DataFrame:
    """One media file as a one-row table (``tunelab predict --input photo.jpg``), its path in
    a column named after its kind."""
    return read_media_files([path], str(path))


def read_media_files(files: list[Path], source: str) -> pd.DataFrame:
    """Media files of one kind as a table of paths without labels (``--input 'photos/*.jpg'``),
    in a column named after their kind.

    Raises:
        UserError: if the files mix kinds (images and audio).
    """
    kinds = sorted({str(media_kind(p)) for p in files})
    if len(kinds) > 1:
        examples = " and ".join(
            f"{k} files ({next(p.name for p in files if str(media_kind(p)) == k)})" for k in kinds
        )
        raise UserError(f"{source} mixes {examples}; give one kind of file at a time")
    frame = pd.DataFrame(
        {kinds[0]: [str(p) for p in files]}, index=pd.RangeIndex(1, len(files) + 1)
    )
    frame.attrs.update({"source": source, "kind": MEDIA_FOLDER, "bad_lines": []})
    return frame


def resolve_media_paths(frame: pd.DataFrame, column: str, noun: str) -> pd.Series:
    """The files of ``column``: absolute paths, relative ones read from the data file's folder
    (the working directory for rows typed on the command line); cells that hold the file
    itself (bytes, or a ``{"bytes": ..., "path": ...}`` record as ``datasets`` stores images
    and audio) stay bytes.

    A table file may only name files inside its own folder, so a data file cannot make a
    run read files elsewhere on the machine; a folder of media names its own files.

    Args:
        frame: a table from :func:`tunelab.data.load.read_table`.
        column: the column of paths.
        noun: what the files are, for the error ("image", "audio").

    Raises:
        UserError: naming the row and the path that leaves the data file's folder.
    """
    source = frame.attrs.get("source", "data")
    source_path = Path(str(source))
    from_file = frame.attrs.get("kind") != MEDIA_FOLDER and source_path.is_file()
    base = source_path.parent.resolve() if from_file else Path.cwd()
    resolved: list[MediaRef | None] = []
    for row, value in frame[column].items():
        if isinstance(value, dict):  # datasets' Image/Audio(decode=False): bytes, else a path
            value = value.get("bytes") or value.get("path")
        if isinstance(value, (bytes, bytearray)):
            resolved.append(bytes(value) if value else None)
            continue
        if value is None or pd.isna(value) or not str(value).strip():
            resolved.append(None)  # drop_invalid_rows names empty cells
            continue
        path = (base / str(value).strip()).resolve()
        if from_file and not path.is_relative_to(base):
            raise UserError(
                f"{source} row {row}: {noun} path '{value}' leads outside the data file's folder "
                f"{base}; keep the files beside or below the data file and give relative paths"
            )
        resolved.append(str(path))
    if any(isinstance(v, bytes) for v in resolved):  # one column, one type: paths read as bytes
        resolved = [_as_bytes(v) if isinstance(v, str) else v for v in resolved]
    return pd.Series(resolved, index=frame.index, dtype=object)


def _as_bytes(path: str) -> bytes | str:
    """The file's bytes, or the path itself when it cannot be read (the doctor reports it)."""
    try:
        return Path(path).read_bytes()
    except OSError:
        return path


def content_hash(path: MediaRef) -> str:
    """SHA-1 of the file's bytes (exact duplicates and leakage across splits)."""
    data = path if isinstance(path, (bytes, bytearray)) else Path(path).read_bytes()
    return hashlib.sha1(data).hexdigest()
