"""Preference pairs from translation pairs: the real translation chosen over a corrupted one.

A prompt asks to translate an English interface message; the chosen answer is the message's
translation from its catalog and the rejected answer is one of five kinds of wrong answer,
each a failure a translation model really makes:

- ``other_message``: the translation of another message of similar length (fluent, wrong);
- ``untranslated``: the English message itself;
- ``truncated``: the first half of the translation;
- ``dropped``: the translation with about a third of its characters left out;
- ``shuffled``: the translation's characters in random order.

A corruption that leaves the normalised text unchanged or empty (a one-character translation,
or a shuffle that only moves punctuation) falls back to ``other_message``, so no rejected
answer reads as the chosen one or as nothing; each row records the kind it got.
"""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

from tunelab.data.normalize import normalized_text

KINDS = ("other_message", "untranslated", "truncated", "dropped", "shuffled")
PROMPT = "Translate into Chinese: "
NEIGHBOURS = 8  # other_message draws among this many messages of similar length on each side


def _corrupted(kind: str, source: str, target: str, rng: random.Random) -> str:
    if kind == "untranslated":
        return source
    if kind == "truncated":
        return target[: len(target) // 2].rstrip()
    characters = list(target)
    if kind == "dropped":
        left_out = set(rng.sample(range(len(characters)), max(1, len(characters) // 3)))
        return "".join(c for i, c in enumerate(characters) if i not in left_out).strip()
    rng.shuffle(characters)  # shuffled
    return "".join(characters).strip()


def _other_message(
    position: int, by_length: list[int], frame: pd.DataFrame, rng: random.Random
) -> str | None:
    """The translation of a message of similar length whose text differs from this one's."""
    row = by_length[position]
    own = normalized_text(frame["target"].iat[row])
    near = by_length[max(0, position - NEIGHBOURS) : position + NEIGHBOURS + 1]
    candidates = [other for other in near if normalized_text(frame["target"].iat[other]) != own]
    if not candidates:
        candidates = [o for o in by_length if normalized_text(frame["target"].iat[o]) != own]
    return str(frame["target"].iat[rng.choice(candidates)]) if candidates else None


def preference_rows(frame: pd.DataFrame, rng: random.Random) -> list[dict[str, Any]]:
    """One pair per row of ``frame`` (columns ``source``, ``target``, ``catalog``): prompt,
    chosen, rejected, the kind of corruption and the catalog. The kinds come in equal shares,
    in an order drawn from ``rng``; ``other_message`` draws from ``frame`` only, so a held-out
    message's translation never turns up as a rejected answer in training.
    """
    kinds = [KINDS[i % len(KINDS)] for i in range(len(frame))]
    rng.shuffle(kinds)
    lengths = frame["target"].str.len().to_numpy()
    by_length = sorted(range(len(frame)), key=lambda i: (lengths[i], i))
    position_of = {row: position for position, row in enumerate(by_length)}
    rows = []
    for i, (source, target, catalog) in enumerate(
        zip(frame["source"], frame["target"], frame["catalog"], strict=True)
    ):
        kind = kinds[i]
        rejected = None if kind == "other_message" else _corrupted(kind, source, target, rng)
        if not rejected or normalized_text(rejected) in ("", normalized_text(target)):
            kind = "other_message"
            rejected = _other_message(position_of[i], by_length, frame, rng)
        if rejected is None:
            continue  # every translation in the frame reads the same: no wrong answer to pick
        rows.append({"prompt": PROMPT + source, "chosen": target, "rejected": rejected,
                     "corruption": kind, "catalog": catalog})  # fmt: skip
    return rows


def kto_rows(pairs: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Each pair as two single answers, the chosen one good and the rejected one bad, in a
    shuffled order: KTO trains on rows in file order, so good and bad ones must be mixed."""
    rows = [
        {"prompt": pair["prompt"], "completion": pair[answer], "label": answer == "chosen",
         "corruption": None if answer == "chosen" else pair["corruption"],
         "catalog": pair["catalog"]}
        for pair in pairs
        for answer in ("chosen", "rejected")
    ]  # fmt: skip
    rng.shuffle(rows)
    return rows
