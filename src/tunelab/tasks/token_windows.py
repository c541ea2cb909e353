"""Word-level tags on sub-word tokens, and texts longer than the model in overlapping windows.

A row is first tokenized without special tokens or truncation, to size its windows: runs
of whole words of at most ``max_length`` sub-tokens (special tokens included) that share
about ``stride`` sub-tokens with their neighbours. Each window's words are then tokenized
with the model's own special tokens. At prediction each word reads the logits of its
first sub-token in the window where it sits farthest from an edge (most context on both
sides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

IGNORE = -100  # label id the loss and the metrics skip


@dataclass
class Window:
    """One model input: words ``start:end`` of row ``row``."""

    row: int
    start: int
    end: int


def window_bounds(word_ids: list[int], budget: int, stride: int) -> list[tuple[int, int]]:
    """``(start, end)`` sub-token ranges covering ``word_ids`` in windows of ``budget``.

    Windows end on a word boundary where one exists inside the budget, and the next starts
    about ``stride`` sub-tokens before the previous end, on a word start.
    """
    length = len(word_ids)
    if length <= budget:
        return [(0, length)]

    def word_start(i: int) -> bool:
        return i == 0 or i >= length or word_ids[i] != word_ids[i - 1]

    bounds: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + budget, length)
        if end < length:
            cut = end
            while cut > start + 1 and not word_start(cut):
                cut -= 1
            end = cut if cut > start + 1 else end  # one word longer than the budget: cut it
        bounds.append((start, end))
        if end >= length:
            return bounds
        following = max(end - stride, start + 1)
        while following < end and not word_start(following):
            following += 1
        start = following


def word_windows(
    word_ids: list[int], word_count: int, budget: int, stride: int
) -> list[tuple[int, int]]:
    """Word ranges ``(first, end)`` of the windows of one row (see :func:`window_bounds`)."""
    if not word_ids:
        return [(0, word_count)]
    ranges = []
    for start, end in window_bounds(word_ids, budget, stride):
        first = 0 if start == 0 else word_ids[start]
        last = word_count if end >= len(word_ids) else word_ids[end - 1] + 1
        ranges.append((first, last))
    return ranges


def build_windows(
    tokenizer: Any,
    token_rows: list[list[str]],
    max_length: int,
    stride: int,
    tag_ids: list[list[int]] | None = None,
    label_all_subtokens: bool = False,
) -> tuple[dict[str, list], list[Window], list[list[int | None]]]:
    """Model features of every window of every row.

    Each window's words are tokenized with the tokenizer's own special tokens (any model
    family), so only the window bounds come from the first, plain pass.

    Returns:
        Features (``input_ids``, ``attention_mask``, ``labels`` when ``tag_ids`` is given,
        ``length``), the window (as a word range) each feature row came from, and each
        feature row's word ids relative to its window's first word.
    """
    plain = tokenizer(
        token_rows, is_split_into_words=True, add_special_tokens=False, truncation=False,
        verbose=False,
    )  # fmt: skip
    budget = max(2, max_length - tokenizer.num_special_tokens_to_add(pair=False))
    stride = min(stride, budget // 2)
    windows = [
        Window(row, first, end)
        for row, tokens in enumerate(token_rows)
        for first, end in word_windows(plain.word_ids(row), len(tokens), budget, stride)
    ]
    encoded = tokenizer(
        [token_rows[w.row][w.start : w.end] for w in windows], is_split_into_words=True,
        truncation=True, max_length=max_length, verbose=False,
    )  # fmt: skip
    features: dict[str, list] = {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "length": [len(ids) for ids in encoded["input_ids"]],
    }
    if "token_type_ids" in encoded:
        features["token_type_ids"] = encoded["token_type_ids"]
    word_ids = [encoded.word_ids(i) for i in range(len(windows))]
    if tag_ids is not None:
        features["labels"] = []
        for window, ids in zip(windows, word_ids, strict=True):
            labels, seen = [], set()
            for word in ids:
                labelled = word is not None and (label_all_subtokens or word not in seen)
                labels.append(tag_ids[window.row][window.start + word] if labelled else IGNORE)
                seen.add(word)
            features["labels"].append(labels)
    return features, windows, word_ids


def merge_windows(
    windows: list[Window],
    word_ids: list[list[int | None]],
    word_counts: list[int],
    logits: list[np.ndarray],
) -> list[np.ndarray]:
    """Per-word logits of every row: each word's first sub-token, from the window where the
    word sits farthest from an edge.

    A word the tokenizer dropped entirely (no sub-token) gets zero logits, which decode to
    the first tag (``O`` for entity schemes).
    """
    n_labels = logits[0].shape[-1] if logits else 0
    rows = [np.zeros((count, n_labels), dtype=np.float32) for count in word_counts]
    margins = [np.full(count, -1, dtype=np.int64) for count in word_counts]
    for window, ids, window_logits in zip(windows, word_ids, logits, strict=True):
        size = window.end - window.start
        seen: set[int] = set()
        for position, word in enumerate(ids):
            if word is None or word in seen:
                continue
            seen.add(word)
            margin = min(word, size - 1 - word)
            target = window.start + word
            if margin > margins[window.row][target]:
                margins[window.row][target] = margin
                rows[window.row][target] = window_logits[position]
    return rows
