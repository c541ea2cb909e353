"""From data files to checked, cleaned, split tables ready for a task to encode."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pandas as pd

from tunelab.config import RunConfig
from tunelab.data.clean import drop_invalid_rows
from tunelab.data.load import read_table
from tunelab.data.normalize import joined_cells, normalized_text
from tunelab.data.split import split_frame, subsample
from tunelab.errors import UserError
from tunelab.tasks import Task

log = logging.getLogger("tunelab")
SPLITS = ("train", "validation", "test")


def read_splits(
    config: RunConfig, task: Task, train: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """The given data files as tables in the task's shape, each checked for its columns;
    ``train``: the training file as already read (to guess the task and columns)."""
    data = config.data
    if data.train is None:
        raise UserError("no training data given; set data.train or pass --data FILE")
    frames = {}
    for split in SPLITS:
        path = getattr(data, split)
        if split == "train" and train is not None:
            frames[split] = task.standardize(train)
        elif path is not None:
            frames[split] = task.standardize(_read(config, task, path))
    if data.extra_train:
        more = [task.standardize(_read(config, task, path)) for path in data.extra_train]
        frames["train"] = mixed_frames([frames["train"], *more])
    return frames


def _read(config: RunConfig, task: Task, path: Any) -> pd.DataFrame:
    data = config.data
    return read_table(
        path, data.format, data.encoding, data.max_rows, tag_column=data.tag_column,
        media=task.input_kind, sheet=data.sheet,
    )  # fmt: skip


def mixed_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Training tables of several files, each already in the task's shape (which checked
    its columns), as one: each file's row numbers continue after the one before's, so every
    row keeps a number of its own (logged: which numbers came from which file). A column only
    some files have (a chat's messages beside Alpaca pairs) is empty for the rest."""
    parts, offset, ranges = [], 0, []
    for number, frame in enumerate(frames):
        numbered = pd.api.types.is_integer_dtype(frame.index) and len(frame)
        if number == 0 and numbered:  # data.train keeps its own row numbers
            shifted = frame
        else:
            index = frame.index - frame.index.min() if numbered else pd.RangeIndex(len(frame))
            shifted = frame.set_axis(index + offset + 1)
        if len(frame):
            first, last = int(shifted.index.min()), int(shifted.index.max())
            ranges.append(f"{frame.attrs.get('source', 'a training file')} rows {first:,}-{last:,}")
            offset = last
        parts.append(shifted)
    mixed = pd.concat(parts)
    sources = " + ".join(str(frame.attrs.get("source", "a training file")) for frame in frames)
    mixed.attrs = {**frames[0].attrs, "source": sources}
    log.info("training rows from %d files: %s", len(frames), "; ".join(ranges))
    return mixed


def load_splits(
    config: RunConfig, task: Task, train: pd.DataFrame | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Read, diagnose, clean and split the data for a run (``train``: the training file as
    already read, if it was).

    Cleaning happens before the split; a single file is split so near-duplicate groups never
    straddle two splits. Held-out files are only normalised, never thinned.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}`` (absent splits omitted) and the data
        report (what the doctor found, what cleaning changed, rows before and after).
    """
    data = config.data
    frames = read_splits(config, task, train)
    text_columns = [c for c in (task.text_column, task.text_pair_column) if c]
    report: dict[str, Any] = {
        "rows_before": {split: len(frame) for split, frame in frames.items()},
        "doctor": task.diagnose(frames, data.clean.drop_label_errors, config.seed),
        "cleaning": {},
    }
    for line in task.doctor_lines(report["doctor"]):
        log.info("%s", line)
    columns = list(task.required_columns())
    for split, frame in list(frames.items()):
        frame, invalid = drop_invalid_rows(frame, columns, data.drop_invalid)
        frame, steps = task.clean(frame, data.clean, is_training=split == "train")
        frames[split] = frame
        report["cleaning"][split] = {"invalid": invalid, **steps}

    shares = {s: getattr(data.split, s) for s in ("validation", "test") if s not in frames}
    if shares:
        task.fit_labels(frames["train"])  # the problem type decides whether to stratify
        strata = None
        if data.split.stratify and task.problem_type == "single_label":
            ids = task.targets(frames["train"])
            strata = pd.Series([task.labels[i] for i in ids], index=frames["train"].index)
        groups = joined_cells(frames["train"], text_columns, cell=_group_key)
        groups = groups.map(normalized_text)
        frames["train"].attrs["rows_read"] = report["rows_before"]["train"]  # for its errors
        frames.update(split_frame(frames["train"], shares, config.seed, strata, groups))
    label_errors = report["doctor"].get("label_errors", {})
    if data.clean.drop_label_errors and "skipped" in label_errors:
        log.warning("data.clean.drop_label_errors dropped no rows: %s", label_errors["skipped"])
    suspected = set(label_errors.get("rows", []))
    if suspected and data.clean.drop_label_errors:
        train = frames["train"]
        flagged = train.index.isin(list(suspected))
        log.warning("dropped %d suspected label errors from training rows", int(flagged.sum()))
        frames["train"] = train.loc[~flagged]
        frames["train"].attrs = dict(train.attrs)
        report["cleaning"]["train"]["label_errors"] = {"count": int(flagged.sum())}
    subset = None
    if data.train_rows is not None or data.train_per_class is not None:
        whole = len(frames["train"])
        frames["train"] = _training_subset(frames["train"], config, task)
        key = "data.train_rows" if data.train_rows is not None else "data.train_per_class"
        kept = f"{key} kept {len(frames['train']):,} of {whole:,} training rows"
        subset = kept if len(frames["train"]) < whole else None
    task.fit_labels(frames["train"])
    for split in ("validation", "test"):
        if split in frames:
            rows = data.eval_rows
            if rows is not None and len(frames[split]) > rows:
                frames[split] = _evaluation_subset(frames[split], split, rows, config.seed)
            try:
                task.check_labels(frames[split])
            except UserError as error:
                if subset is None:
                    raise
                raise UserError(  # the subset, not the data, left the label out
                    f"{error} ({subset}, none of them with it: raise it or leave it unset)"
                ) from None
    report["rows_after"] = {split: len(frame) for split, frame in frames.items()}
    report["split"] = {"generated": sorted(shares), "seed": config.seed}
    return frames, report


def _group_key(value: Any) -> str:
    """A cell as the text that groups equal rows into one split (images held as bytes: their
    hash)."""
    if isinstance(value, (bytes, bytearray)):
        return hashlib.sha1(value).hexdigest()
    return str(value)


def seeded_rows(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of ``rows`` rows of a held-out split, in file order, keeping the
    split's ``attrs`` (its source, for messages)."""
    subset = frame.sample(n=rows, random_state=seed).sort_index()
    subset.attrs = dict(frame.attrs)
    return subset


def _evaluation_subset(frame: pd.DataFrame, split: str, rows: int, seed: int) -> pd.DataFrame:
    """``data.eval_rows``: :func:`seeded_rows`, logged."""
    subset = seeded_rows(frame, rows, seed)
    log.info("evaluating on a seeded subset: %s of %s %s rows", f"{rows:,}", f"{len(frame):,}",
             split)  # fmt: skip
    return subset


def _training_subset(train: pd.DataFrame, config: RunConfig, task: Task) -> pd.DataFrame:
    labels = None
    task.fit_labels(train)
    if task.problem_type == "single_label":
        ids = task.targets(train)
        labels = pd.Series([task.labels[i] for i in ids], index=train.index)
    data = config.data
    subset = subsample(train, data.train_rows, data.train_per_class, config.seed, labels)
    if subset is not train:
        log.info("training on a seeded subset: %s of %s rows", f"{len(subset):,}",
                 f"{len(train):,}")  # fmt: skip
    return subset
