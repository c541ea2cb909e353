"""Agreement between annotators on the items two of them labelled."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any


def agreement(by_annotator: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Cohen's kappa for each pair of annotators on the items both labelled, and the
    disagreements.

    Args:
        by_annotator: item -> {annotator: label} (:meth:`LabelState.by_annotator`).

    Returns:
        ``{"double_labelled": n, "pairs": [{"annotators", "items", "agreement", "kappa"}],
        "disagreements": [{"item", "labels": {annotator: label}}]}``; kappa is ``None`` for a
        pair with no shared item, and 1.0 when both gave one and the same class throughout.
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
    return {"double_labelled": len(double), "pairs": pairs, "disagreements": disagreements}
