"""Media files as data: folders of class sub-folders and path columns read into tables of
paths, for images and audio alike.

A table of media holds paths, never pixels or samples: the task decodes a batch at a time in
its data loader. A folder follows the ``imagefolder``/``audiofolder`` convention of
``datasets`` (each sub-folder is a class); a CSV/JSONL/Parquet file names its files in a
column, relative to the file's own folder, which no path may leave.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

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
MEDIA_FOLDER = "media-folder"  # frame.attrs["kind"] of a table read from a folder or one file


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


def read_media_folder(folder: Path, kind: str | None = None) -> pd.DataFrame:
    """The media files under ``folder`` as rows of (``<kind>``, label): each sub-folder is a
    class; files directly in ``folder`` (no class folders) give rows without labels, for
    prediction. The path column is named after the kind: ``image`` or ``audio``.

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
        labels = [p.relative_to(folder).parts[0] for p in files]
        frame = pd.DataFrame({column: [str(p) for p in files], LABEL_COLUMN: labels})
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs.update({"source": str(folder), "kind": MEDIA_FOLDER, "bad_lines": []})
    return frame


def read_media_file(path: Path) -> pd.DataFrame:
    """One media file as a one-row table (``tunelab predict --input photo.jpg``), its path in
    a column named after its kind."""
    frame = pd.DataFrame({str(media_kind(path)): [str(path)]}, index=pd.RangeIndex(1, 2))
    frame.attrs.update({"source": str(path), "kind": MEDIA_FOLDER, "bad_lines": []})
    return frame


def resolve_media_paths(frame: pd.DataFrame, column: str, noun: str) -> pd.Series:
    """Absolute paths of the files in ``column``: relative paths are read from the data
    file's folder (the working directory for rows typed on the command line).

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
    resolved = []
    for row, value in frame[column].items():
        if pd.isna(value) or not str(value).strip():
            resolved.append(None)  # drop_invalid_rows names empty cells
            continue
        path = (base / str(value).strip()).resolve()
        if from_file and not path.is_relative_to(base):
            raise UserError(
                f"{source} row {row}: {noun} path '{value}' leads outside the data file's folder "
                f"{base}; keep the files beside or below the data file and give relative paths"
            )
        resolved.append(str(path))
    return pd.Series(resolved, index=frame.index, dtype=object)


def content_hash(path: str) -> str:
    """SHA-1 of the file's bytes (exact duplicates and leakage across splits)."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()
