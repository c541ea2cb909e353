"""A ``datasets`` data set saved to disk (``Dataset.save_to_disk``) read as a table.

Images and audio stay encoded (``{"bytes": ..., "path": ...}`` records, decoded lazily by the
task), and class ids of a ``ClassLabel`` column become their names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tunelab.errors import UserError


def is_saved_dataset(path: Path) -> bool:
    """Whether ``path`` is a folder written by ``Dataset(Dict).save_to_disk``."""
    return path.is_dir() and any(
        (path / name).is_file() for name in ("state.json", "dataset_dict.json")
    )


def read_saved_dataset(path: Path) -> pd.DataFrame:
    """The rows of a saved ``datasets.Dataset`` indexed from 1.

    Raises:
        UserError: for a saved ``DatasetDict`` (name one of its split folders instead), or a
            folder ``datasets`` cannot load.
    """
    splits_file = path / "dataset_dict.json"
    if splits_file.is_file():
        splits = json.loads(splits_file.read_text(encoding="utf-8")).get("splits", [])
        shown = ", ".join(str(path / split) for split in splits)
        raise UserError(
            f"{path} holds several splits ({', '.join(splits)}); give one split's folder "
            f"({shown}) to --data, --validation and --test"
        )
    from datasets import Audio, ClassLabel, Image, load_from_disk

    try:
        dataset = load_from_disk(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(
            f"{path} could not be loaded as a saved datasets folder: {exc}".split("\n")[0]
        ) from None
    class_names = {}
    for name, feature in dataset.features.items():
        if isinstance(feature, Image):
            dataset = dataset.cast_column(name, Image(decode=False))
        elif isinstance(feature, Audio):
            dataset = dataset.cast_column(name, Audio(decode=False))
        elif isinstance(feature, ClassLabel):
            class_names[name] = feature.names
    frame = dataset.to_pandas()
    for name, names in class_names.items():
        frame[name] = frame[name].map(lambda i, names=names: names[i] if i >= 0 else None)
    if frame.empty:
        raise UserError(f"data folder {path} has no data rows")
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs.update({"source": str(path), "bad_lines": []})
    return frame
