"""Tokenised rows as a compact Arrow-backed ``datasets.Dataset``, built a chunk at a time.

A tokenizer returns Python lists of Python ints: about 40 bytes a token, for every token of
the split at once, before ``Dataset.from_dict`` copies them into Arrow as int64. On 644,000
training rows that held 4.8 GB. Tokenising a chunk at a time into narrow Arrow columns (int32
ids, int8 masks) keeps one chunk's lists alive and 6 bytes a token after. Measuring the
rows' token lengths (to choose ``max_length``) goes a chunk at a time too, for the same reason.

Choosing ``max_length`` needs every training row's token count, and the counting pass is a
whole tokenisation; :func:`measure_rows` keeps what it tokenised (cut at a cap just above
any ``max_length`` the run can choose), so the training split's encoding then re-tokenises
only the rows longer than the chosen ``max_length`` (:meth:`MeasuredRows.at_length`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

CHUNK_ROWS = 20_000
# columns whose values fit narrower integers than the int64 Arrow infers from Python ints:
# (whether each row holds a list, the integer type)
NARROW_TYPES = {
    "input_ids": (True, "int32"),
    "attention_mask": (True, "int8"),
    "token_type_ids": (True, "int8"),
    "special_tokens_mask": (True, "int8"),
    "length": (False, "int32"),
}


def encoded_dataset(
    frame: pd.DataFrame,
    encode_chunk: Callable[[pd.DataFrame], dict[str, list]],
    chunk_rows: int = CHUNK_ROWS,
) -> Any:
    """``encode_chunk`` applied to ``frame`` ``chunk_rows`` rows at a time, as one dataset.

    Args:
        encode_chunk: rows -> feature columns (lists of equal length); it must treat each
            row on its own, so chunking cannot change what it returns.
    """
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable(encoded_table(frame, encode_chunk, chunk_rows)))


def encoded_table(
    frame: pd.DataFrame,
    encode_chunk: Callable[[pd.DataFrame], dict[str, list]],
    chunk_rows: int = CHUNK_ROWS,
) -> Any:
    """What :func:`encoded_dataset` holds, as a narrow Arrow table."""
    import pyarrow as pa

    tables = [
        _narrow_table(encode_chunk(frame.iloc[start : start + chunk_rows]))
        for start in range(0, max(len(frame), 1), chunk_rows)
    ]
    # promote: a chunk whose list column holds only empty lists has Arrow type list<null>
    return pa.concat_tables(tables, promote_options="default")


def chunked_lengths(
    frame: pd.DataFrame,
    count_chunk: Callable[[pd.DataFrame], np.ndarray],
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """``count_chunk`` (rows -> token counts, e.g. a task's ``token_lengths``) applied to
    ``frame`` ``chunk_rows`` rows at a time: the tokenizer's lists for one chunk are alive at
    once, not for every row."""
    counts = [
        count_chunk(frame.iloc[start : start + chunk_rows])
        for start in range(0, len(frame), chunk_rows)
    ]
    return np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)


@dataclass
class MeasuredRows:
    """Rows tokenised once to count their tokens, and the tokenizer's columns kept.

    Attributes:
        lengths: each row's token count, at most ``cap`` (a row at ``cap`` may be longer).
        table: the tokenizer's columns, narrow Arrow (see :data:`NARROW_TYPES`), rows cut
            at ``cap`` tokens.
        cap: the token count rows were cut at.
    """

    lengths: np.ndarray
    table: Any
    cap: int

    def at_length(
        self,
        max_length: int,
        frame: pd.DataFrame,
        tokenize_rows: Callable[[pd.DataFrame], dict[str, list]],
    ) -> Any:
        """The tokenizer's columns of ``frame``'s rows (the rows measured) cut at
        ``max_length``, in ``frame``'s order, as an Arrow table: the kept encoding of each
        row that fits, and ``tokenize_rows`` (which must cut at ``max_length``) for the rest.
        A row at the cap counts as longer: it may have been cut."""
        import pyarrow as pa

        longer = (self.lengths > max_length) | (self.lengths >= self.cap)
        redo = np.flatnonzero(longer)
        if not len(redo):
            return self.table
        keep = np.flatnonzero(~longer)
        redone = encoded_table(frame.iloc[redo], tokenize_rows)
        joined = pa.concat_tables([self.table.take(keep), redone], promote_options="default")
        order = np.concatenate([keep, redo])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))  # the joined row holding frame row i
        return joined.take(back)


def measure_rows(
    frame: pd.DataFrame,
    tokenize_chunk: Callable[[pd.DataFrame], dict[str, list]],
    cap: int,
    chunk_rows: int = CHUNK_ROWS,
) -> MeasuredRows:
    """``tokenize_chunk`` (rows -> the tokenizer's columns, cut at ``cap`` tokens) applied to
    ``frame`` ``chunk_rows`` rows at a time: the token counts and the columns, kept narrow."""
    import pyarrow.compute as pc

    table = encoded_table(frame, tokenize_chunk, chunk_rows)
    lengths = pc.list_value_length(table["input_ids"]).to_numpy(zero_copy_only=False)
    return MeasuredRows(lengths.astype(np.int64), table, cap)


def labelled_dataset(table: Any, columns: dict[str, list]) -> Any:
    """``table`` (the tokenizer's columns) with each row's ``length`` (its ``input_ids``
    count) and the given ``columns`` (e.g. ``labels``) added, as a ``datasets.Dataset``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets import Dataset
    from datasets.table import InMemoryTable

    table = table.append_column("length", pc.list_value_length(table["input_ids"]).cast(pa.int32()))
    extra = _narrow_table(columns)
    for name in extra.column_names:
        table = table.append_column(name, extra[name])
    return Dataset(InMemoryTable(table))


def _narrow_table(features: dict[str, list]) -> Any:
    """The feature columns as an Arrow table, id and mask columns in narrow integers."""
    import pyarrow as pa

    columns = {}
    for name, values in features.items():
        if name not in NARROW_TYPES:
            columns[name] = pa.array(values)
            continue
        holds_lists, integers = NARROW_TYPES[name]
        kind = getattr(pa, integers)()
        columns[name] = pa.array(values, type=pa.list_(kind) if holds_lists else kind)
    return pa.table(columns)
