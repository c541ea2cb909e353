"""Duplicates, near-duplicates, conflicting labels and leakage between splits."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tunelab.data.normalize import normalized_text


def in_set(values: pd.Series, known: set[str]) -> pd.Series:
    """``values.isin(known)`` for a large ``known``: pandas 3 turns the set into an array of
    strings first, which took 8 s for a million texts; a set lookup a row takes 0.2 s."""
    return pd.Series([v in known for v in values.to_numpy()], index=values.index, dtype=bool)


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
    label_text = label_keys(labels)
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


def label_keys(labels: pd.Series) -> pd.Series:
    """One string per row's label, a list of labels joined with ``|``."""
    return labels.map(lambda v: "|".join(map(str, v)) if isinstance(v, list) else str(v))


def leakage(
    splits: dict[str, pd.Series],
    examples: int = 5,
    keys: dict[str, pd.Series] | None = None,
    labels: dict[str, pd.Series] | None = None,
) -> dict[str, Any]:
    """Texts of a held-out split that also occur in training (or validation), exact and near
    (``keys``: each split's :func:`near_duplicate_keys`, at least for its rows here).

    With ``labels`` (each split's, for the rows that have one), a shared text whose held-out
    label is not among the labels it has in the earlier split counts under ``other_label``:
    the two splits label the same text differently, so the held-out score partly measures
    that disagreement.
    """
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
            exact = in_set(texts.astype(str).str.strip(), exact_seen)
            near = in_set(keys[held].loc[texts.index], near_seen)
            found: dict[str, Any] = {
                "exact": int(exact.sum()),
                "near": int(near.sum()),
                "share_of_" + held: round(float(near.mean()) if len(texts) else 0.0, 4),
                "examples": [
                    {"row": int(r), "text": str(texts.loc[r])[:120]}
                    for r in list(texts.index[near])[:examples]
                ],
            }
            if labels and held in labels and earlier in labels:
                found.update(_other_labels(
                    keys[held].loc[texts.index[near]], keys[earlier], labels[held],
                    labels[earlier], texts, examples,
                ))  # fmt: skip
            result[f"{held}_in_{earlier}"] = found
    return result


def _other_labels(
    held_keys: pd.Series,
    seen_keys: pd.Series,
    held_labels: pd.Series,
    seen_labels: pd.Series,
    texts: pd.Series,
    examples: int,
) -> dict[str, Any]:
    """Count and show the shared held-out rows labelled unlike any row with their text in the
    earlier split (``held_keys``: the near keys of the shared held-out rows)."""
    seen_keys = seen_keys.loc[seen_labels.index]
    shared = in_set(seen_keys, set(held_keys))  # only these rows' labels matter
    seen_by_key: dict[str, set[str]] = {}
    for key, label in zip(seen_keys[shared], label_keys(seen_labels[shared]), strict=True):
        seen_by_key.setdefault(key, set()).add(label)
    held_keys = held_keys.loc[held_keys.index.intersection(held_labels.index)]
    held = label_keys(held_labels.loc[held_keys.index])
    # plain dict lookups: a million-row split may share a hundred thousand texts
    shared_rows = zip(held_keys.index, held_keys.to_numpy(), held.to_numpy(), strict=True)
    other = [
        (row, key, label)
        for row, key, label in shared_rows
        if key in seen_by_key and label not in seen_by_key[key]
    ]
    return {
        "other_label": len(other),
        "other_label_examples": [
            {
                "row": int(row),
                "text": str(texts.loc[row])[:120],
                "label": label,
                "labels_there": sorted(seen_by_key[key]),
            }
            for row, key, label in other[:examples]
        ],
    }
