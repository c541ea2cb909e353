"""Agreement between annotators on the items two of them labelled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any


def agreement(by_annotator: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Cohen's kappa for each pair of annotators on the items both labelled, Fleiss' kappa
    over all of them, and the disagreements.

    Args:
        by_annotator: item -> {annotator: label} (:meth:`LabelState.by_annotator`).

    Returns:
        ``{"double_labelled": n, "annotators": n, "fleiss_kappa": k, "pairs": [{"annotators",
        "items", "agreement", "kappa"}], "disagreements": [{"item", "labels": {annotator:
        label}}]}``; a kappa is ``None`` without a shared item, and 1.0 when all gave one and
        the same class throughout.
    """
    from sklearn.metrics import cohen_kappa_score

    double = {item: dict(labels) for item, labels in by_annotator.items() if len(labels) > 1}
    annotators = sorted({name for labels in by_annotator.values() for name in labels})
    pairs = []
    for first, second in combinations(annotators, 2):
        shared = sorted(item for item, labels in double.items()
                        if first in labels and second in labels)  # fmt: skip
        a = [str(double[item][first]) for item in shared]
        b = [str(double[item][second]) for item in shared]
        if not shared:
            kappa = None
        elif len(set(a) | set(b)) == 1:  # sklearn gives nan: no chance-corrected signal
            kappa = 1.0
        else:
            kappa = round(float(cohen_kappa_score(a, b)), 4)
        same = sum(x == y for x, y in zip(a, b, strict=True))
        pairs.append({"annotators": [first, second], "items": len(shared), "kappa": kappa,
                      "agreement": round(same / len(shared), 4) if shared else None})  # fmt: skip
    disagreements = [{"item": item, "labels": labels} for item, labels in sorted(double.items())
                     if len({str(v) for v in labels.values()}) > 1]  # fmt: skip
    fleiss = fleiss_kappa([[str(v) for v in labels.values()] for labels in double.values()])
    return {"double_labelled": len(double), "annotators": len(annotators),
            "fleiss_kappa": fleiss, "pairs": pairs, "disagreements": disagreements}  # fmt: skip


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
