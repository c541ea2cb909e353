"""Seeded, optionally stratified train/validation/test splits of one table."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from tunelab.errors import UserError


def _check_stratifiable(labels: pd.Series, parts: int, source: str) -> None:
    counts = labels.value_counts()
    small = counts[counts < parts]
    if len(small):
        name, count = small.index[0], int(small.iloc[0])
        raise UserError(
            f"{source}: class '{name}' has only {count} row(s), too few to stratify into "
            f"{parts} splits; add examples, remove the class, give separate validation/test "
            "files, or set data.split.stratify=false"
        )


def split_frame(
    frame: pd.DataFrame,
    shares: dict[str, float],
    seed: int,
    stratify_by: pd.Series | None = None,
    groups: pd.Series | None = None,
) -> dict[str, pd.DataFrame]:
    """Split rows into ``train`` plus the named held-out parts.

    Args:
        frame: the rows to split (index kept, so rows stay traceable to the file).
        shares: share of all rows for each held-out split, e.g. ``{"validation": 0.1}``.
        seed: the split is a pure function of the rows and this seed.
        stratify_by: labels to keep proportional across splits, or ``None``.
        groups: a key per row; rows with the same key (near-duplicates) land in one split.

    Returns:
        ``{"train": ..., **held_out}`` in the order of ``shares``.

    Raises:
        UserError: if a class is too small to stratify or a split would be empty.
    """
    source = frame.attrs.get("source", "data")
    if groups is not None and groups.duplicated().any():
        # Split one representative row per group, then bring each group's other rows along.
        first = frame.loc[~groups.duplicated()]
        first.attrs = {**frame.attrs, "distinct_of": len(frame)}
        parts = split_frame(
            first, shares, seed, None if stratify_by is None else stratify_by.loc[first.index]
        )
        split_of_group = {groups.loc[r]: name for name, part in parts.items() for r in part.index}
        names = groups.map(split_of_group)
        return {
            name: _with_source(frame.loc[names == name], part.attrs) for name, part in parts.items()
        }
    wanted = {name: share for name, share in shares.items() if share > 0}
    if sum(wanted.values()) >= 0.9:
        raise UserError(
            f"data.split shares {wanted} leave less than 10% of {source} for training; lower them"
        )
    if stratify_by is not None:
        _check_stratifiable(stratify_by, len(wanted) + 1, source)
    result: dict[str, pd.DataFrame] = {}
    rest = frame
    for name, share in wanted.items():
        size = round(share * len(frame))  # a count, so 10% of 300 rows is 30 in every split
        if size < 1:
            raise UserError(
                f"{source} has {_rows_counted(frame)}, too few for a {name} split of "
                f"{share:.0%}; give a separate {name} file or more data"
            )
        strata = stratify_by.loc[rest.index] if stratify_by is not None else None
        try:
            rest, held = train_test_split(rest, test_size=size, random_state=seed, stratify=strata)
        except ValueError as exc:
            raise UserError(
                f"{source}: cannot make a stratified {name} split ({exc}); give separate files "
                "or set data.split.stratify=false"
            ) from None
        held.attrs = {"source": f"{source} ({name} split)"}
        result[name] = held.sort_index()
    rest = rest.sort_index()
    rest.attrs = {"source": source}
    return {"train": rest, **result}


def _rows_counted(frame: pd.DataFrame) -> str:
    """The rows a split sees, said so that a file of many repeated rows is not a mystery:
    ``5 distinct texts among its 200 rows`` rather than ``5 rows``."""
    count, distinct_of = len(frame), frame.attrs.get("distinct_of")
    said = f"{count} rows"
    if distinct_of and distinct_of > count:
        said = f"{count} distinct texts among its {distinct_of} rows (repeats stay in one split)"
    read = frame.attrs.get("rows_read")
    if read and read > (distinct_of or count):
        said += f", {read} before cleaning (the data doctor counts the repeats it drops)"
    return said


def _with_source(frame: pd.DataFrame, attrs: dict) -> pd.DataFrame:
    frame.attrs = dict(attrs)
    return frame


def subsample(
    frame: pd.DataFrame,
    rows: int | None,
    per_class: int | None,
    seed: int,
    labels: pd.Series | None = None,
) -> pd.DataFrame:
    """A seeded subset of training rows: ``rows`` in all, or ``per_class`` of each label.

    ``rows`` keeps label proportions when ``labels`` are given and every class can keep a
    row; a size at or above the table's leaves it whole. Learning curves and few-shot
    trials use this, so the held-out splits stay the same at every size.

    Raises:
        UserError: if ``per_class`` is asked without single labels, or a class has too few rows.
    """
    source = frame.attrs.get("source", "data")
    subset = frame
    if per_class is not None:
        if labels is None:
            raise UserError(
                "data.train_per_class needs single-label text classification; use "
                "data.train_rows for other tasks"
            )
        counts = labels.value_counts()
        if counts.min() < per_class:
            raise UserError(
                f"{source}: class '{counts.idxmin()}' has {int(counts.min())} rows, fewer than "
                f"data.train_per_class={per_class}; lower it"
            )
        picked = [
            labels[labels == name].sample(per_class, random_state=seed).index
            for name in sorted(counts.index, key=str)
        ]
        subset = frame.loc[[i for part in picked for i in part]]
    elif rows is not None and rows < len(frame):
        strata = labels
        if strata is not None and (rows < strata.nunique() or strata.value_counts().min() < 2):
            strata = None
        subset, _ = train_test_split(frame, train_size=rows, random_state=seed, stratify=strata)
    if subset is frame:
        return frame
    subset = subset.sort_index()
    subset.attrs = {"source": f"{source} ({len(subset)}-row subset)"}
    return subset
