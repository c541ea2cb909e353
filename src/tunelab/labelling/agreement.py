"""Agreement between annotators on the items two of them labelled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any


def agreement(by_annotator: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Cohen's kappa for each pair of annotators on the items both labelled, Fleiss' kappa
    over all of them, and the disagreements; for entity spans, each pair's span F1 instead
    of the kappas.

    Args:
        by_annotator: item -> {annotator: label} (:meth:`LabelState.by_annotator`); a label
            is a class, or a list of ``(start, end, type)`` spans.

    Returns:
        ``{"double_labelled": n, "annotators": n, "fleiss_kappa": k, "pairs": [{"annotators",
        "items", "agreement", "kappa"}], "disagreements": [{"item", "labels": {annotator:
        label}}]}``; a kappa is ``None`` without a shared item, and 1.0 when all gave one and
        the same class throughout. With spans, a pair has ``span_f1`` (exact start, end and
        type) and ``agreement`` is the share of texts marked identically; the kappas are
        ``None`` (a text's spans are no class to count chance agreement over).
    """
    from sklearn.metrics import cohen_kappa_score

    double = {item: dict(labels) for item, labels in by_annotator.items() if len(labels) > 1}
    annotators = sorted({name for labels in by_annotator.values() for name in labels})
    spans = any(isinstance(v, list) for labels in double.values() for v in labels.values())
    pairs = []
    for first, second in combinations(annotators, 2):
        shared = sorted(item for item, labels in double.items()
                        if first in labels and second in labels)  # fmt: skip
        a = [_comparable(double[item][first]) for item in shared]
        b = [_comparable(double[item][second]) for item in shared]
        same = sum(x == y for x, y in zip(a, b, strict=True))
        share = round(same / len(shared), 4) if shared else None
        pair: dict[str, Any] = {"annotators": [first, second], "items": len(shared),
                                "agreement": share}  # fmt: skip
        if spans:
            pair["kappa"], pair["span_f1"] = None, span_f1(a, b) if shared else None
        elif not shared:
            pair["kappa"] = None
        elif len(set(a) | set(b)) == 1:  # sklearn gives nan: no chance-corrected signal
            pair["kappa"] = 1.0
        else:
            pair["kappa"] = round(float(cohen_kappa_score(a, b)), 4)
        pairs.append(pair)
    disagreements = [{"item": item, "labels": labels} for item, labels in sorted(double.items())
                     if len({_comparable(v) for v in labels.values()}) > 1]  # fmt: skip
    fleiss = (
        None
        if spans
        else fleiss_kappa([[str(v) for v in labels.values()] for labels in double.values()])
    )
    return {"double_labelled": len(double), "annotators": len(annotators),
            "fleiss_kappa": fleiss, "pairs": pairs, "disagreements": disagreements}  # fmt: skip


def _comparable(label: Any) -> Any:
    """A label as agreement compares it: a class as text, spans as a sorted tuple."""
    if isinstance(label, list):
        return tuple(sorted(tuple(span) for span in label))
    return str(label)


def span_f1(first: Sequence[Any], second: Sequence[Any]) -> float:
    """F1 of two annotators' spans over the same texts: spans both marked (same start, end
    and type) over the mean of their counts; 1.0 when neither marked any."""
    both = sum(len(set(a) & set(b)) for a, b in zip(first, second, strict=True))
    marked = sum(len(a) + len(b) for a, b in zip(first, second, strict=True))
    return round(2 * both / marked, 4) if marked else 1.0


def fleiss_kappa(items: Iterable[Sequence[str]]) -> float | None:
    """Fleiss' kappa of the labels each item got from two or more annotators; the number of
    annotators may differ from item to item (each item's agreement is the share of agreeing
    pairs among its own annotators; chance agreement comes from the pooled label shares).
    ``None`` without such an item; 1.0 when every label is one and the same class."""
    rated = [Counter(labels) for labels in items if len(labels) > 1]
    if not rated:
        return None
    observed = sum(
        sum(n * (n - 1) for n in counts.values()) / (total * (total - 1))
        for counts in rated
        if (total := sum(counts.values()))
    ) / len(rated)
    pooled = sum(rated, Counter())
    given = sum(pooled.values())
    chance = sum((n / given) ** 2 for n in pooled.values())
    if chance == 1.0:
        return 1.0
    return round((observed - chance) / (1 - chance), 4)
