"""Metrics of sequence labelling: entity-level (seqeval, strict), word segmentation, tags."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tunelab.data.tag_schemes import convert_tags, spans_from_tags

MISSED = "(missed)"  # a gold entity with no predicted entity on the same characters
SPURIOUS = "(none)"  # a predicted entity with no gold entity on the same characters


def token_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Share of tokens whose predicted tag equals the gold tag."""
    pairs = [(g, p) for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)]
    return sum(g == p for g, p in pairs) / max(len(pairs), 1)


def entity_metrics(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str
) -> dict[str, Any]:
    """Strict entity-level precision/recall/F1, per type and micro/macro (seqeval).

    Both sides are first re-encoded in BIO through the lenient decoder, so a broken
    predicted sequence is scored as the entities that ``predict`` reports for it.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    gold_bio = [convert_tags(tags, scheme, "bio") for tags in gold]
    pred_bio = [convert_tags(tags, scheme, "bio") for tags in pred]
    report = classification_report(
        gold_bio, pred_bio, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    per_type = {
        name: {
            "precision": float(scores["precision"]),
            "recall": float(scores["recall"]),
            "f1": float(scores["f1-score"]),
            "support": int(scores["support"]),
        }
        for name, scores in report.items()
        if not name.endswith(" avg")
    }
    micro, macro = report.get("micro avg", {}), report.get("macro avg", {})
    return {
        "precision": float(micro.get("precision", 0.0)),
        "recall": float(micro.get("recall", 0.0)),
        "f1": float(micro.get("f1-score", 0.0)),
        "f1_macro": float(macro.get("f1-score", 0.0)),
        "accuracy": token_accuracy(gold, pred),
        "per_type": per_type,
    }


def span_confusion(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str
) -> dict[str, dict[str, int]]:
    """How entities go wrong: ``confusion[gold_type][predicted_type]`` over entity spans.

    Spans with the same boundaries are paired; a gold span without a partner counts under
    ``(missed)``, a predicted one without a partner in the ``(none)`` row.
    """
    table: dict[str, Counter] = {}
    for gold_tags, pred_tags in zip(gold, pred, strict=True):
        gold_spans = {(s, e): k for s, e, k in spans_from_tags(gold_tags, scheme)}
        pred_spans = {(s, e): k for s, e, k in spans_from_tags(pred_tags, scheme)}
        for bounds, kind in gold_spans.items():
            table.setdefault(kind, Counter())[pred_spans.get(bounds, MISSED)] += 1
        for bounds, kind in pred_spans.items():
            if bounds not in gold_spans:
                table.setdefault(SPURIOUS, Counter())[kind] += 1
    return {row: dict(sorted(counts.items())) for row, counts in sorted(table.items())}


def segmentation_metrics(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Word-level precision/recall/F1 of segmentation (BMES tags), the standard (SIGHAN) way.

    A predicted word counts as correct when a gold word has exactly the same characters.
    """
    correct = predicted = expected = 0
    for gold_tags, pred_tags in zip(gold, pred, strict=True):
        gold_words = {(s, e) for s, e, _ in spans_from_tags(gold_tags, "bmes")}
        pred_words = {(s, e) for s, e, _ in spans_from_tags(pred_tags, "bmes")}
        correct += len(gold_words & pred_words)
        predicted += len(pred_words)
        expected += len(gold_words)
    precision = correct / max(predicted, 1)
    recall = correct / max(expected, 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "word_precision": precision,
        "word_recall": recall,
        "word_f1": f1,
        "accuracy": token_accuracy(gold, pred),
    }


def tag_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Token accuracy and per-tag precision/recall/F1 for independent tags (e.g. POS)."""
    from sklearn.metrics import precision_recall_fscore_support

    flat_gold = [tag for tags in gold for tag in tags]
    flat_pred = [tag for tags in pred for tag in tags]
    names = sorted(set(flat_gold))
    precision, recall, f1, support = precision_recall_fscore_support(
        flat_gold, flat_pred, labels=names, zero_division=0
    )
    return {
        "accuracy": token_accuracy(gold, pred),
        "f1_macro": float(f1.mean()) if len(names) else 0.0,
        "per_tag": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
    }


def sequence_metrics(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str
) -> dict[str, Any]:
    """The right metrics for ``scheme``: entities, word segmentation or plain tags."""
    if scheme == "bmes":
        return segmentation_metrics(gold, pred)
    if scheme == "plain":
        return tag_metrics(gold, pred)
    return entity_metrics(gold, pred, scheme)
