"""A data folder that holds its splits: ``train.csv``, ``validation.csv``, ``test.csv``.

``tunelab data example`` writes such folders, and so do most public data sets (``train.jsonl``,
``dev.tsv``, ``test.csv.gz``) and ``DatasetDict.save_to_disk`` (a sub-folder per split). Given
as ``--data``, the folder's training file becomes ``data.train`` and its validation and test
files fill ``data.validation`` and ``data.test`` where those are not set. Images and audio
come the same way as split sub-folders of class folders (``train/cat/1.png``,
``val/dog/2.png``: the image-folder layout of most public sets and of ``tunelab data example
digits``); a folder of class sub-folders holding the files themselves is read as the media it
holds, even where a class is named ``test``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tunelab.data.load import DECOMPRESSORS, FORMATS_BY_SUFFIX, PLAIN_TEXT_SUFFIXES
from tunelab.data.media import media_kind
from tunelab.data.split_names import SPLIT_STEMS, names_a_split
from tunelab.errors import UserError

TABLE_SUFFIXES = frozenset(FORMATS_BY_SUFFIX) | frozenset(PLAIN_TEXT_SUFFIXES)


def _table_stem(path: Path) -> str | None:
    """``train`` for train.csv, train.csv.gz or TRAIN.jsonl; None for a file that is no table."""
    name = path.name.lower()
    for compressed in DECOMPRESSORS:
        name = name.removesuffix(compressed)
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and f".{suffix}" in TABLE_SUFFIXES else None


def _saved_splits(folder: Path) -> dict[str, Path]:
    """The split folders of a saved ``DatasetDict``, by their names in ``dataset_dict.json``."""
    listing = folder / "dataset_dict.json"
    try:
        names = json.loads(listing.read_text(encoding="utf-8")).get("splits", [])
    except (OSError, ValueError, AttributeError):
        return {}
    folders = {str(name).lower(): folder / str(name) for name in names}
    return {split: path for split, path in folders.items() if path.is_dir()}


def _media_split_stem(path: Path) -> str | None:
    """``val`` for a sub-folder ``val/`` whose class sub-folders hold images or audio; None for
    anything else (a class folder named ``test`` holds its files directly)."""
    stem = path.name.lower()
    if not names_a_split(stem) or not path.is_dir():
        return None
    classes = [child for child in path.iterdir() if child.is_dir()]
    return stem if any(_holds_media(child) for child in classes) else None


def _by_stem(
    folder: Path, entries: list[Path], stem_of: Callable[[Path], str | None]
) -> dict[str, Path]:
    """The entries with a split's stem, by stem.

    Raises:
        UserError: when two entries have the same stem (``train.csv`` and ``train.jsonl``).
    """
    candidates: dict[str, Path] = {}
    for path in entries:
        stem = stem_of(path)
        if stem is None:
            continue
        if stem in candidates:
            raise UserError(
                f"data folder {folder} holds two files for one split, "
                f"{candidates[stem].name} and {path.name}; keep one, or pass the file "
                "with --data, --validation or --test"
            )
        candidates[stem] = path
    return candidates


def split_files(folder: Path) -> dict[str, Path]:
    """The files (or saved split folders, or split folders of media) of ``folder`` that name a
    split, by split; empty when ``folder`` holds none (a folder of media, or of tables named
    otherwise). Table files come first: a ``train.csv`` of image paths beside a ``train/``
    folder of the images is the table.

    Raises:
        UserError: when two files name the same split (``train.csv`` and ``train.jsonl``).
    """
    if (folder / "dataset_dict.json").is_file():
        candidates = _saved_splits(folder)
    else:
        entries = [path for path in sorted(folder.iterdir()) if not path.name.startswith(".")]
        candidates = _by_stem(folder, entries, lambda p: _table_stem(p) if p.is_file() else None)
        if not candidates.keys() & set(SPLIT_STEMS["train"]):
            candidates = _by_stem(folder, entries, _media_split_stem) or candidates
    found: dict[str, Path] = {}
    for split, stems in SPLIT_STEMS.items():
        named = [candidates[stem] for stem in stems if stem in candidates]
        if len(named) > 1:
            raise UserError(
                f"data folder {folder} holds two {split} files, {named[0].name} and "
                f"{named[1].name}; keep one, or pass the one to use with "
                f"{'--data' if split == 'train' else '--' + split}"
            )
        if named:
            found[split] = named[0]
    return found


def table_files(folder: Path) -> list[Path]:
    """The table files directly in ``folder`` (CSV, JSONL, Parquet, ..., compressed or not)."""
    return [p for p in sorted(folder.iterdir()) if p.is_file() and _table_stem(p) is not None]


def _no_data(folder: Path) -> str:
    """The error for a folder without tables, media or sub-folders: what it holds, what to do."""
    entries = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
    held = ", ".join(p.name for p in entries[:3]) + (", ..." if len(entries) > 3 else "")
    return (
        f"data folder {folder} holds no table file (train.csv, .jsonl, .parquet, ...) and no "
        f"class sub-folders of images or audio ({'it is empty' if not entries else held}); "
        "put the data there, or pass the file itself with --data"
    )


def _holds_media(folder: Path) -> bool:
    """Whether any image or audio file lies under ``folder`` (a table beside them is metadata)."""
    return any(p.is_file() and media_kind(p) for p in folder.rglob("*"))


def expand_split_folder(
    train: Path, validation: Path | None, test: Path | None
) -> tuple[Path, Path | None, Path | None, str | None]:
    """``(train, validation, test, line)`` with a split folder given as ``train`` replaced by
    its files; splits already given stay as they are. ``line`` says what was taken (for the
    log), or is None when ``train`` is no such folder.

    Raises:
        UserError: for a folder of table files none of which names the training split, or one
            with two files for one split.
    """
    if not train.is_dir() or (train / "state.json").is_file():  # one saved Dataset: its rows
        return train, validation, test, None
    found = split_files(train)
    if "train" not in found:
        tables = table_files(train)
        if tables and not (train / "dataset_dict.json").is_file() and not _holds_media(train):
            shown = ", ".join(p.name for p in tables[:3]) + (", ..." if len(tables) > 3 else "")
            raise UserError(
                f"data folder {train} holds table files ({shown}) but none named for the "
                "training split; name it train.csv (or .jsonl, ...) beside validation and "
                "test files, or pass the file itself with --data"
            )
        if (train / "dataset_dict.json").is_file():
            raise UserError(
                f"data folder {train} is a saved DatasetDict without a train split; give one "
                "split's folder to --data"
            )
        if not tables and not any(p.is_dir() or media_kind(p) for p in train.iterdir()):
            raise UserError(_no_data(train))  # not a media folder either (loose files predict)
        return train, validation, test, None
    taken = [f"{found['train'].name} as data.train"]
    if validation is None and "validation" in found:
        validation = found["validation"]
        taken.append(f"{validation.name} as data.validation")
    if test is None and "test" in found:
        test = found["test"]
        taken.append(f"{test.name} as data.test")
    return found["train"], validation, test, f"data folder {train}: " + ", ".join(taken)


def held_out_split(data: Path) -> tuple[Path, str | None]:
    """What ``tunelab evaluate --data`` scores: a split folder's test file (its validation
    file where it has no test), with a line saying which was taken; any other path as given
    (a file, a folder of class sub-folders), with None.

    Raises:
        UserError: for a split folder with a training split alone.
    """
    if not data.is_dir() or (data / "state.json").is_file():
        return data, None
    found = split_files(data)
    for split in ("test", "validation"):
        if split in found:
            file = found[split]
            return file, f"data folder {data}: scoring its {split} split, {file.name}"
    if found:
        raise UserError(
            f"data folder {data} holds no test or validation split to evaluate, only "
            f"{found['train'].name}; pass the file to score with --data"
        )
    return data, None
