"""Tokenised rows as a compact Arrow-backed ``datasets.Dataset``, built a chunk at a time.

A tokenizer returns Python lists of Python ints: about 40 bytes a token, for every token of
the split at once, before ``Dataset.from_dict`` copies them into Arrow as int64. On 644,000
training rows that held 4.8 GB. Tokenising a chunk at a time into narrow Arrow columns (int32
ids, int8 masks) keeps one chunk's lists alive and 6 bytes a token after. Measuring the
rows' token lengths (to choose ``max_length``) goes a chunk at a time too, for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
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
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    tables = [
        _narrow_table(encode_chunk(frame.iloc[start : start + chunk_rows]))
        for start in range(0, max(len(frame), 1), chunk_rows)
    ]
    # promote: a chunk whose list column holds only empty lists has Arrow type list<null>
    return Dataset(InMemoryTable(pa.concat_tables(tables, promote_options="default")))


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
