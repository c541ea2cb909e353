"""The names a split goes by in data folders (``train.csv``, ``dev.jsonl``, ``val/``), shared
by the split-folder reader and the media-folder reader."""

from __future__ import annotations

# a split's accepted file stems, in the order a folder's files are named in messages
SPLIT_STEMS = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev", "development"),
    "test": ("test", "testing"),
}


def names_a_split(name: str) -> bool:
    """Whether a file stem or folder name (any case) is one a split goes by."""
    return any(name.lower() in stems for stems in SPLIT_STEMS.values())
