"""What a table's columns hold, read from their names and values: free text, a few repeated
labels, identifiers or lists. Tasks use it to guess their columns when the config leaves them
to the data (see ``Task.recognise``); the guess and its evidence are logged, never silent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_ROWS = 2000
# names people give a text column and a label column, compared word by word, lower-cased
TEXT_NAMES = {
    "text", "texts", "review", "reviews", "comment", "comments", "content", "sentence", "body",
    "message", "document", "tweet", "description", "utterance", "feedback", "post", "remark",
}  # fmt: skip
LABEL_NAMES = {
    "label", "labels", "class", "category", "categories", "sentiment", "target", "tag", "intent",
    "topic", "polarity", "rating", "stars", "verdict", "outcome", "y",
}  # fmt: skip
MAX_CLASSES = 100  # more distinct values than this are no label set a classifier learns
TIE_SHARE = 0.67  # a second text column this long (relative to the longest) ties with it
_TOKEN = re.compile(r"^[\w.\-/:#]+$", re.ASCII)  # codes and ids: no space, ASCII only


@dataclass(frozen=True)
class ColumnProfile:
    """What one column holds, from a sample of its non-empty cells."""

    name: str
    kind: str  # "text", "number", "list" or "empty"
    distinct: int
    rows: int
    mean_chars: float
    named_text: bool  # a word of its name is one people use for text
    named_label: bool

    @property
    def repeats(self) -> bool:
        """A few values, each used by several rows, as labels are."""
        return self.kind in ("text", "number") and 2 <= self.distinct <= min(
            MAX_CLASSES, self.rows // 2
        )


def _name_words(name: str) -> set[str]:
    return set(re.split(r"[^0-9a-z]+", str(name).lower())) - {""}


def spread_rows(frame: Any, limit: int) -> Any:
    """At most ``limit`` rows of a table (or cells of a column), spread evenly over it: a file
    sorted by its labels (every positive review, then every negative one) or by language
    shows all of them, where its first rows would show one."""
    if len(frame) <= limit:
        return frame
    return frame.iloc[np.linspace(0, len(frame) - 1, limit).round().astype(int)]


def sample_cells(frame: pd.DataFrame, name: Any) -> pd.Series:
    """At most :data:`SAMPLE_ROWS` non-empty cells of a column, spread evenly over the table."""
    return spread_rows(frame[name].dropna(), SAMPLE_ROWS)


def profile_column(frame: pd.DataFrame, name: Any) -> ColumnProfile:
    """Profile one column from at most 2,000 of its non-empty cells, spread over the table."""
    values = sample_cells(frame, name)
    words = _name_words(name)
    named = {"named_text": bool(words & TEXT_NAMES), "named_label": bool(words & LABEL_NAMES)}
    if values.empty:
        return ColumnProfile(str(name), "empty", 0, 0, 0.0, **named)
    if values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all():
        kind = "list"
        distinct = values.map(lambda v: tuple(map(str, v))).nunique()
    else:
        texts = values.map(str).str.strip()
        numeric = pd.to_numeric(texts, errors="coerce").notna().all()
        kind = "number" if numeric else "text"
        distinct = texts.nunique()
    mean_chars = float(values.map(lambda v: len(str(v))).mean())
    return ColumnProfile(str(name), kind, int(distinct), len(values), mean_chars, **named)


def text_candidates(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[ColumnProfile]:
    """The columns that hold free text (strings, mostly different from each other, not all
    codes without spaces), longest texts first."""
    found = []
    for name in frame.columns:
        if str(name) in exclude:
            continue
        profile = profile_column(frame, name)
        if profile.kind != "text" or profile.repeats or profile.distinct < 2:
            continue
        sample = sample_cells(frame, name).map(str)
        if not sample.map(lambda v: bool(_TOKEN.match(v))).all():  # codes are no text
            found.append(profile)
    return sorted(found, key=lambda p: -p.mean_chars)


def label_candidates(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> list[ColumnProfile]:
    """The columns that could hold labels: a few repeated values, or a label-like name over a
    list column (multi-label); fewest values first."""
    found = []
    for name in frame.columns:
        if str(name) in exclude:
            continue
        profile = profile_column(frame, name)
        if profile.repeats or (profile.kind == "list" and profile.named_label):
            found.append(profile)
    return sorted(found, key=lambda p: p.distinct)


@dataclass(frozen=True)
class Choice:
    """A column chosen for a role, and why; or two that tie, and no choice."""

    column: str | None
    evidence: str = ""
    tie: tuple[ColumnProfile, ColumnProfile] | None = None


LABEL_SEPARATORS = ("|", ";", ",")
MIN_SHARE_WITH_SEPARATOR = 0.05  # of the labelled rows: a few rows with several labels


def guess_label_separator(values: pd.Series) -> tuple[str, str] | None:
    """The separator of labels written as delimited strings (``price|delivery``), and why;
    None for single labels. A separator counts when at least 5% of the labelled rows hold
    it and its parts recombine: fewer distinct labels once split than distinct cells, and at
    least half of the parts also standing alone in some row (so ``New York, NY`` as one
    label is not split)."""
    cells = values.dropna().astype(str).str.strip()
    cells = cells[cells != ""]
    if cells.empty or values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        return None
    distinct = set(cells)
    for separator in LABEL_SEPARATORS:
        joined = [c for c in distinct if separator in c]
        if cells.str.contains(separator, regex=False).mean() < MIN_SHARE_WITH_SEPARATOR:
            continue
        parts = {part.strip() for c in joined for part in c.split(separator)}
        if "" in parts or len(parts | (distinct - set(joined))) >= len(distinct):
            continue
        if 2 * len(parts & distinct) < len(parts):  # parts rarely alone: labels with commas
            continue
        evidence = (
            f"{len(joined)} of {len(distinct)} distinct labels join "
            f"{len(parts)} others with '{separator}'"
        )
        return separator, evidence
    return None


# column names that data sets use for the two texts of a pair (GLUE, SNLI, QQP, CLUE)
PAIR_NAMES = (
    ("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
    ("question", "sentence"), ("text_a", "text_b"), ("sentence_a", "sentence_b"),
    ("text", "text_pair"),
)  # fmt: skip


def guess_text_pair(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> tuple[str, str] | None:
    """The two columns of a text pair when the file names them as pair data sets do
    (``sentence1``/``sentence2``, ``premise``/``hypothesis``, any case); else None."""
    by_name = {str(c).lower(): str(c) for c in frame.columns if c not in exclude}
    return next(
        ((by_name[a], by_name[b]) for a, b in PAIR_NAMES if a in by_name and b in by_name), None
    )


def guess_text_column(frame: pd.DataFrame, default: str, exclude: Sequence[str] = ()) -> Choice:
    """The text column: the one called ``default``, else the only text column whose name says
    text, else the one with clearly the longest texts; a tie when two are equally plausible,
    none when no column holds free text."""
    if default in frame.columns and default not in exclude:
        return Choice(default, "its name")
    candidates = text_candidates(frame, exclude)
    named = [p for p in candidates if p.named_text]
    if len(named) == 1:
        return Choice(named[0].name, f"its name, {named[0].mean_chars:.0f} characters on average")
    pool = named or candidates
    if not pool:
        return Choice(None)
    first = pool[0]
    if len(pool) > 1 and pool[1].mean_chars >= TIE_SHARE * first.mean_chars:
        return Choice(None, tie=(first, pool[1]))
    if len(pool) == 1:
        evidence = f"the only free text, {first.mean_chars:.0f} characters on average"
        return Choice(first.name, evidence)
    evidence = (
        f"the longest texts, {first.mean_chars:.0f} characters on average against "
        f"{pool[1].mean_chars:.0f} in '{pool[1].name}'"
    )
    return Choice(first.name, evidence)


def guess_label_column(frame: pd.DataFrame, default: str, exclude: Sequence[str] = ()) -> Choice:
    """The label column: the one called ``default`` (its evidence names the other columns of
    a few repeated values, which the user may have meant), else the only candidate whose name
    says label, else the only column of a few repeated values; a tie when two are equally
    plausible, none when no column looks like labels."""
    if default in frame.columns and default not in exclude:
        others = [p for p in label_candidates(frame, [*exclude, default]) if p.kind != "list"]
        if not others:
            return Choice(default, "its name")
        also = ", ".join(f"'{p.name}' ({p.distinct} values)" for p in others[:2])
        return Choice(default, f"its name; {also} could be the label as well")
    candidates = label_candidates(frame, exclude)
    named = [p for p in candidates if p.named_label]
    pool = named or candidates
    if not pool:
        return Choice(None)
    if len(pool) > 1:
        return Choice(None, tie=(pool[0], pool[1]))
    chosen = pool[0]
    values = "lists of labels" if chosen.kind == "list" else f"{chosen.distinct} values"
    reason = "its name" if named else "the only column of a few repeated values"
    filled = int(frame[chosen.name].notna().sum())
    rows = f"{chosen.rows} of its {filled} rows" if filled > chosen.rows else f"{filled} rows"
    return Choice(chosen.name, f"{reason}, {values} in {rows}")


def holds_lists(frame: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` exists and its non-empty cells (a sample) are lists (JSON arrays,
    CoNLL token rows, Parquet lists)."""
    if column not in frame.columns:
        return False
    values = sample_cells(frame, column)
    return bool(len(values)) and bool(
        values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all()
    )
