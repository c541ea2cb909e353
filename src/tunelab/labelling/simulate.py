"""A labelling session with an oracle instead of a person: known labels answer the queue's
questions, and a model trained on what was labelled so far is scored on held-out texts.

``tunelab label run --simulate`` and ``benchmarks/active_learning.py`` use it to measure
whether asking the model's uncertain texts beats labelling in random order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tunelab.errors import UserError
from tunelab.labelling.journal import LabelJournal
from tunelab.labelling.queue import LabelQueue, text_classifier


def simulate(
    queue: LabelQueue,
    oracle: Mapping[str, Any],
    budget: int,
    checkpoints: Sequence[int] = (),
    test: pd.DataFrame | None = None,
    journal: LabelJournal | None = None,
    batch: int = 1,
    on_label: Callable[[str, Any, str], None] | None = None,
    scorer: Callable[[Any, pd.DataFrame], float | None] | None = None,
    metric: str = "accuracy",
) -> dict[str, Any]:
    """Label up to ``budget`` texts, asking the queue and answering from ``oracle``.

    Args:
        checkpoints: label counts at which to score a fresh model on ``test`` (``text``,
            ``label``) with ``scorer`` (default :func:`score`, the accuracy of the queue's
            model type; entity labelling passes its F1 and ``metric="f1"``).
        journal: where each label goes (as a person's would), when given.
        on_label: called with (item, label, reason) after each label is durable.

    Returns:
        ``{"labels", "curve": [{"labels", metric}], "latency_ms": [...]}``; latency is
        from handing a label to the queue to the next suggestion (retrains included).
    """
    curve, latency = [], []
    scorer = scorer or score
    marks = sorted(set(checkpoints))
    suggestions = queue.next("oracle", batch)
    while suggestions and len(queue.labels) < budget:
        for suggestion in suggestions:
            label = oracle.get(suggestion.item)
            if label is None:
                raise UserError(f"the oracle has no label for item {suggestion.item}")
            if journal is not None:
                kind = "label" if isinstance(label, str) else "spans"
                journal.label(suggestion.item, annotator="oracle", **{kind: label})
            if on_label is not None:
                on_label(suggestion.item, label, suggestion.reason)
            started = time.perf_counter()
            queue.add_label(suggestion.item, label)
            if marks and len(queue.labels) == marks[0]:
                marks.pop(0)
                if test is not None:
                    curve.append({"labels": len(queue.labels), metric: scorer(queue, test)})
                started = time.perf_counter()  # scoring is the simulation's, not the queue's
            if len(queue.labels) >= budget:
                break
        if len(queue.labels) >= budget:
            break
        suggestions = queue.next("oracle", batch)
        latency.append((time.perf_counter() - started) * 1000 / max(len(suggestions), 1))
    return {"labels": len(queue.labels), "curve": curve, "latency_ms": latency}


def score(queue: LabelQueue, test: pd.DataFrame) -> float | None:
    """Accuracy on ``test`` of the queue's model type trained on the labels so far."""
    rows = [queue.row_of[item] for item in queue.labels]
    y = list(queue.labels.values())
    if len(set(y)) < 2:
        return None
    model = text_classifier(queue.seed).fit(queue.vectors[rows], y)
    predicted = model.predict(queue.vectorizer.transform(test["text"].astype(str)))
    return round(float(np.mean(predicted == test["label"].astype(str).to_numpy())), 4)
