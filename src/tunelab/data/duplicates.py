"""Duplicates, near-duplicates, conflicting labels and leakage between splits."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tunelab.data.normalize import normalized_text


def near_duplicate_keys(texts: pd.Series) -> pd.Series:
    """The near-duplicate key of each text (see :func:`normalized_text`)."""
    return texts.astype(str).map(normalized_text)


def duplicate_summary(
    texts: pd.Series, examples: int = 5, keys: pd.Series | None = None
) -> dict[str, Any]:
    """Counts and examples of exact and near duplicates within one split.

    A row counts as a duplicate when an earlier row has the same text (exact) or the same
    normalised key (near); the first occurrence is not counted. ``keys``: the texts'
    :func:`near_duplicate_keys`, where the caller has them already.
    """
    exact = texts.astype(str).str.strip().duplicated()
    keys = near_duplicate_keys(texts) if keys is None else keys
    near = keys.duplicated() & (keys != "")
    groups = keys[near].value_counts()
    shown = []
    for key in groups.index[:examples]:
        rows = list(keys.index[keys == key][:4])
        shown.append({"rows": rows, "text": str(texts.loc[rows[0]])[:120]})
    total = max(len(texts), 1)
    return {
        "exact_duplicates": int(exact.sum()),
        "near_duplicates": int(near.sum()),
        "exact_duplicate_rate": round(float(exact.sum()) / total, 4),
        "near_duplicate_rate": round(float(near.sum()) / total, 4),
        "examples": shown,
    }


def conflicting_labels(
    texts: pd.Series, labels: pd.Series, examples: int = 5, keys: pd.Series | None = None
) -> dict[str, Any]:
    """Near-identical texts that carry different labels (``keys`` as in
    :func:`duplicate_summary`)."""
    keys = near_duplicate_keys(texts) if keys is None else keys
    label_text = labels.map(lambda v: "|".join(map(str, v)) if isinstance(v, list) else str(v))
    per_key = label_text.groupby(keys).nunique()
    conflicted = per_key.index[(per_key > 1) & (per_key.index != "")]
    in_conflict = keys.isin(set(conflicted))
    shown = []
    for key in conflicted[:examples]:
        rows = keys.index[keys == key]
        shown.append(
            {"rows": list(rows[:6]), "text": str(texts.loc[rows[0]])[:120],
             "labels": sorted(set(label_text.loc[rows]))}
        )  # fmt: skip
    return {
        "conflicting_texts": len(conflicted),
        "rows_in_conflict": int(in_conflict.sum()),
        "rows": list(keys.index[in_conflict]),
        "examples": shown,
    }


def leakage(
    splits: dict[str, pd.Series], examples: int = 5, keys: dict[str, pd.Series] | None = None
) -> dict[str, Any]:
    """Texts of a held-out split that also occur in training (or validation), exact and near
    (``keys``: each split's :func:`near_duplicate_keys`, at least for its rows here)."""
    known = keys or {}
    keys = {name: known[name] if name in known else near_duplicate_keys(texts)
            for name, texts in splits.items()}  # fmt: skip
    result: dict[str, Any] = {}
    names = list(splits)
    for i, held in enumerate(names):
        for earlier in names[:i]:
            exact_seen = set(splits[earlier].astype(str).str.strip())
            near_seen = set(keys[earlier].loc[splits[earlier].index]) - {""}
            texts = splits[held]
            exact = texts.astype(str).str.strip().isin(exact_seen)
            near = keys[held].loc[texts.index].isin(near_seen)
            result[f"{held}_in_{earlier}"] = {
                "exact": int(exact.sum()),
                "near": int(near.sum()),
                "share_of_" + held: round(float(near.mean()) if len(texts) else 0.0, 4),
                "examples": [
                    {"row": int(r), "text": str(texts.loc[r])[:120]}
                    for r in list(texts.index[near])[:examples]
                ],
            }
    return result
