"""Padding-free packing of short causal-LM rows into full-length rows.

The rows of a batch are placed first-fit (longest first) into bins of at most
``max_length`` tokens. Each bin becomes one row of the batch: its members' tokens one after
another, position ids restarting at 0 for every member, and the first label of every
member ignored, so no token is trained to predict across a boundary. transformers reads
the restarting position ids and builds a block-diagonal causal mask (when no attention
mask and no KV cache is given), so no member attends to another. The few bins shorter than
the longest are filled with a padding segment that is a block of its own, with no loss.
"""

from __future__ import annotations

from typing import Any

from tunelab.tasks.token_windows import IGNORE


def pack_rows(lengths: list[int], max_length: int) -> list[list[int]]:
    """Bins of row indices, each summing to at most ``max_length`` tokens (first-fit
    decreasing; a row longer than ``max_length`` gets a bin of its own)."""
    bins: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for b, free in enumerate(room):
            if lengths[index] <= free:
                bins[b].append(index)
                room[b] -= lengths[index]
                break
        else:
            bins.append([index])
            room.append(max_length - lengths[index])
    return bins


class PackingCollator:
    """Batches of packed rows: ``input_ids``, ``labels`` and ``position_ids``, no mask."""

    def __init__(self, max_length: int, pad_token_id: int) -> None:
        self.max_length = max_length
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        rows = []
        for members in pack_rows([len(f["input_ids"]) for f in features], self.max_length):
            ids: list[int] = []
            labels: list[int] = []
            positions: list[int] = []
            for index in members:
                row = features[index]
                ids += list(row["input_ids"])
                labels += [IGNORE, *list(row["labels"])[1:]]
                positions += list(range(len(row["input_ids"])))
            rows.append((ids, labels, positions))
        width = max(len(ids) for ids, _, _ in rows)
        batch: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": []}
        for ids, labels, positions in rows:
            fill = width - len(ids)
            batch["input_ids"].append(ids + [self.pad_token_id] * fill)
            batch["labels"].append(labels + [IGNORE] * fill)
            batch["position_ids"].append(positions + list(range(fill)))
        return {key: torch.tensor(value) for key, value in batch.items()}
