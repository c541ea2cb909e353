"""Metrics of read text (OCR lines, short answers): character error rate, exact match, chrF.

A reader is judged by its characters: CER is the edit distance (insertions, deletions,
substitutions) over the reference's length, summed over the corpus (rapidfuzz); exact match is
the share of lines read without a single error; chrF (sacreBLEU) rewards partly right lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def normalise_read_text(text: str) -> str:
    """A line as it is compared: surrounding space removed, inner runs of space as one."""
    return " ".join(str(text).split())


def character_errors(prediction: str, reference: str) -> int:
    """Edit distance in characters between one prediction and its reference."""
    from rapidfuzz.distance import Levenshtein

    read, expected = normalise_read_text(prediction), normalise_read_text(reference)
    return int(Levenshtein.distance(read, expected))


def reading_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus CER, exact match and chrF of ``predictions`` against ``references``.

    CER is the total edit distance over the total reference characters (an empty reference
    counts each predicted character as an error), so a long line weighs more than a short one.
    """
    import sacrebleu

    predicted = [normalise_read_text(p) for p in predictions]
    expected = [normalise_read_text(r) for r in references]
    if len(predicted) != len(expected):
        raise ValueError(f"{len(predicted)} predictions for {len(expected)} references")
    errors = sum(character_errors(p, r) for p, r in zip(predicted, expected, strict=True))
    characters = sum(len(r) for r in expected)
    count = max(len(expected), 1)
    return {
        "cer": errors / max(characters, 1),
        "exact_match": sum(p == r for p, r in zip(predicted, expected, strict=True)) / count,
        "chrf": float(sacrebleu.corpus_chrf(predicted, [expected]).score) if expected else 0.0,
        "character_errors": errors,
        "reference_characters": characters,
    }
