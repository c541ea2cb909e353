import numpy as np
import pandas as pd

from tunelab.tasks.arrow_rows import chunked_lengths, encoded_dataset


def _encode(rows: pd.DataFrame) -> dict[str, list]:
    """A stand-in tokenizer: one id per character, ids past int8's range."""
    ids = [[1000 + ord(c) % 50 for c in text] for text in rows["text"]]
    return {
        "input_ids": ids,
        "attention_mask": [[1] * len(row) for row in ids],
        "length": [len(row) for row in ids],
        "labels": rows["label"].tolist(),
        "tags": [[] if text.startswith("x") else [0.5] for text in rows["text"]],
    }


FRAME = pd.DataFrame({"text": ["abc", "xy", "hello", "x", "q"], "label": [0, 1, 2, 1, 0]})


def test_chunks_give_the_rows_one_call_gives_in_narrow_columns():
    whole = _encode(FRAME)
    for chunk_rows in (1, 2, 5, 100):
        dataset = encoded_dataset(FRAME, _encode, chunk_rows=chunk_rows)
        assert dataset.num_rows == 5
        assert dataset.to_dict() == whole
    types = {name: str(kind) for name, kind in dataset.features.items()}
    assert types["input_ids"] == "List(Value('int32'))"
    assert types["attention_mask"] == "List(Value('int8'))"
    assert types["length"] == "Value('int32')"
    assert types["labels"] == "Value('int64')"  # not named as narrow: Arrow's own choice


def test_a_chunk_of_empty_lists_joins_the_others():
    # rows 2 and 4 ("xy", "x") alone in chunks 2 and 4 have only empty `tags` lists
    dataset = encoded_dataset(FRAME, _encode, chunk_rows=1)
    assert dataset["tags"] == [[0.5], [], [0.5], [], [0.5]]


def test_no_rows_give_an_empty_dataset():
    assert encoded_dataset(FRAME.iloc[:0], _encode).num_rows == 0


def test_lengths_counted_in_chunks_are_the_lengths_counted_at_once():
    def count(rows: pd.DataFrame):
        return np.array([len(text) for text in rows["text"]])

    for chunk_rows in (1, 2, 5, 100):
        assert chunked_lengths(FRAME, count, chunk_rows).tolist() == [3, 2, 5, 1, 1]
    assert chunked_lengths(FRAME.iloc[:0], count).tolist() == []
