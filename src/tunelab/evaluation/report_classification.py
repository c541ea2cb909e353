"""Report sections of text classification: confusion matrix, per-class scores, calibration,
the most confident errors — for single-label, multi-label and regression runs alike.

The kind of run is read from the prediction records (``label``, ``labels`` or ``value``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.evaluation.calibration import reliability
from tunelab.evaluation.plots import (
    grouped_bars_figure,
    heat_map_figure,
    reliability_figure,
    scatter_figure,
)
from tunelab.evaluation.report_page import Html, Plots, TaskReport, note, section, shorten, table

WORST_SHOWN = 10


def sections(run: Any, plots: Plots) -> Any:
    """The classification sections of ``run`` (a :class:`~tunelab.evaluation.report.RunFolder`)."""
    split, scores = run.scores()
    records = [r for r in run.predictions or [] if "gold" in r]
    kind = run.model_meta.get("problem_type") or _kind_of(records)
    parts: list[str] = []
    worst: list[str] = []
    if kind == "multi_label":
        parts += _multi_label(records, plots)
        worst, errors = _multi_label_errors(records)
    elif kind == "regression":
        parts += _regression(records, plots)
        worst, errors = _regression_errors(records)
    else:
        parts += single_label_parts(scores, records, split, plots)
        worst, errors = _single_label_errors(records)
    if not records:
        parts.append(
            note(
                "No predictions.jsonl with gold labels (no test split): calibration "
                "and errors need the test set's predictions."
            )
        )
    body = [section("classes", f"Classes ({split or 'no held-out split'})", parts)]
    if records:
        body.append(section("errors", "Worst errors", errors))
    return TaskReport(body, worst, explainable=True)


def _kind_of(records: list[dict[str, Any]]) -> str:
    first = records[0] if records else {}
    if "labels" in first:
        return "multi_label"
    return "regression" if "value" in first else "single_label"


def single_label_parts(
    scores: dict[str, Any], records: list[dict[str, Any]], split: str, plots: Plots
) -> list[str]:
    """Confusion matrix, per-class scores and calibration of single-label records (any input
    kind: the records need ``label``, ``score`` and ``gold``)."""
    parts: list[str] = []
    confusion = scores.get("confusion_matrix") or {}
    if confusion.get("matrix"):
        labels = confusion["labels"]
        figure = heat_map_figure(
            confusion["matrix"],
            labels,
            labels,
            f"Confusion matrix ({split})",
            "predicted class",
            "true class",
        )
        parts.append(
            plots.figure(
                "confusion-matrix",
                figure,
                "Rows: true class; columns: predicted class; counts of rows.",
            )
        )
    per_class = scores.get("per_class") or {}
    if per_class:
        names = list(per_class)
        figure = grouped_bars_figure(
            names,
            {
                m: [per_class[n].get(key, 0.0) for n in names]
                for m, key in (("precision", "precision"), ("recall", "recall"), ("F1", "f1-score"))
            },
            f"Per-class precision, recall and F1 ({split})",
            "score",
        )
        parts.append(
            plots.figure("per-class-scores", figure, "Precision, recall and F1 of each class.")
        )
        rows = [
            [
                n,
                *(per_class[n].get(k, 0.0) for k in ("precision", "recall", "f1-score")),
                int(per_class[n].get("support", 0)),
            ]
            for n in names
        ]
        parts.append(table(["class", "precision", "recall", "F1", "support"], rows))
    if records:
        confidences = [float(r.get("score", 0.0)) for r in records]
        correct = [r.get("label") == r.get("gold") for r in records]
        calibration = reliability(confidences, correct)
        figure = reliability_figure(
            calibration["bins"], calibration["ece"], "confidence of the predicted class"
        )
        parts.append(_calibration_text(calibration, "the predicted class's probability"))
        parts.append(
            plots.figure(
                "reliability-diagram",
                figure,
                "Bars: share of correct "
                "predictions among those with the confidence below; dots: "
                "their mean confidence. Well calibrated: on the diagonal.",
            )
        )
    return parts


def _calibration_text(calibration: dict[str, Any], what: str) -> Html:
    return Html(
        f"<p>Expected calibration error: <b>{calibration['ece']:.4f}</b> over "
        f"{calibration['count']:,} test predictions (10 equal-width bins of {what}; 0 is "
        "perfect).</p>"
    )


def _single_label_errors(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    wrong = [r for r in records if r.get("label") != r.get("gold")]
    wrong.sort(key=lambda r: -float(r.get("score", 0.0)))
    if not records:
        return [], []
    if not wrong:
        return [], [note("Every test prediction is correct.")]
    has_pair = any("text_pair" in r for r in wrong)
    rows = []
    for r in wrong[:WORST_SHOWN]:
        p_gold = (r.get("probabilities") or {}).get(str(r.get("gold")), 0.0)
        text = shorten(str(r.get("text", "")))
        pair = [shorten(str(r.get("text_pair", "")))] if has_pair else []
        rows.append(
            [
                text,
                *pair,
                r.get("gold", ""),
                r.get("label", ""),
                float(r.get("score", 0.0)),
                float(p_gold),
            ]
        )
    header = [
        "text",
        *(["second text"] if has_pair else []),
        "true",
        "predicted",
        "confidence",
        "p(true)",
    ]
    intro = Html(
        f"<p>The {min(len(wrong), WORST_SHOWN)} most confident of {len(wrong):,} wrong "
        f"predictions ({len(wrong) / len(records):.1%} of the test rows).</p>"
    )
    return [str(r.get("text", "")) for r in wrong], [intro, table(header, rows, "texts")]


def _multi_label(records: list[dict[str, Any]], plots: Plots) -> list[str]:
    if not records:
        return []
    names = list(records[0].get("probabilities") or {})
    gold = np.array([[n in set(r["gold"]) for n in names] for r in records], dtype=bool)
    pred = np.array([[n in set(r.get("labels", [])) for n in names] for r in records], dtype=bool)
    tp, fp, fn = (gold & pred).sum(0), (~gold & pred).sum(0), (gold & ~pred).sum(0)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / np.maximum(tp + fn, 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    parts = [
        plots.figure(
            "per-class-scores",
            grouped_bars_figure(
                names,
                {"precision": precision, "recall": recall, "F1": f1},
                "Per-label precision, recall and F1 (test)",
                "score",
            ),
            "Precision, recall and F1 of each label's yes/no decision.",
        ),
        table(
            ["label", "precision", "recall", "F1", "support"],
            [
                [n, float(p), float(r), float(f), int(s)]
                for n, p, r, f, s in zip(names, precision, recall, f1, gold.sum(0), strict=True)
            ],
        ),
    ]
    probabilities = np.array([[r["probabilities"][n] for n in names] for r in records])
    calibration = reliability(probabilities.ravel(), gold.ravel())
    parts.append(_calibration_text(calibration, "every label's probability"))
    parts.append(
        plots.figure(
            "reliability-diagram",
            reliability_figure(
                calibration["bins"], calibration["ece"], "predicted probability of a label"
            ),
            "Bars: how often a label applies among those given the probability below.",
        )
    )
    return parts


def _multi_label_errors(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    if not records:
        return [], []
    scored = []
    for r in records:
        gold = set(r["gold"])
        # how sure the model was of its worst wrong decision on this row
        misses = [
            abs(p - (n in gold))
            for n, p in r["probabilities"].items()
            if (n in gold) != (n in set(r.get("labels", [])))
        ]
        if misses:
            scored.append((max(misses), r))
    scored.sort(key=lambda item: -item[0])
    if not scored:
        return [], [note("Every test row's labels are predicted exactly.")]
    rows = [
        [
            shorten(str(r.get("text", ""))),
            ", ".join(r["gold"]),
            ", ".join(r.get("labels", [])),
            float(miss),
        ]
        for miss, r in scored[:WORST_SHOWN]
    ]
    intro = Html(
        f"<p>{len(scored):,} of {len(records):,} test rows have a wrong label set; "
        "the most confidently wrong:</p>"
    )
    return [str(r.get("text", "")) for _, r in scored], [
        intro,
        table(["text", "true labels", "predicted labels", "error"], rows, "texts"),
    ]


def _regression(records: list[dict[str, Any]], plots: Plots) -> list[str]:
    if not records:
        return []
    gold = [float(r["gold"]) for r in records]
    value = [float(r["value"]) for r in records]
    figure = scatter_figure(gold, value, "true value", "predicted value", "Predicted vs. true")
    return [
        plots.figure(
            "predicted-vs-true", figure, "Each test row; the dotted line is a perfect prediction."
        )
    ]


def _regression_errors(records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    if not records:
        return [], []
    ranked = sorted(records, key=lambda r: -abs(float(r["value"]) - float(r["gold"])))
    rows = [
        [
            shorten(str(r.get("text", ""))),
            float(r["gold"]),
            float(r["value"]),
            abs(float(r["value"]) - float(r["gold"])),
        ]
        for r in ranked[:WORST_SHOWN]
    ]
    return [str(r.get("text", "")) for r in ranked], [
        table(["text", "true", "predicted", "absolute error"], rows, "texts")
    ]
