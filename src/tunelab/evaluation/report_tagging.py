"""Report sections of token classification: scores per entity type (or tag), how spans go
wrong (missed, spurious, wrong type, wrong boundary), and the sentences with most errors.

Spans are read from the predicted and gold tags of ``predictions.jsonl`` in the model's
scheme; plain tags (part of speech) count each token as a span of its tag, so their errors
are tag confusions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tunelab.data.tag_schemes import detect_scheme, spans_from_tags
from tunelab.evaluation.plots import grouped_bars_figure, heat_map_figure
from tunelab.evaluation.report_page import Html, Plots, TaskReport, esc, note, section, table

MISSED, SPURIOUS, WRONG_TYPE, BOUNDARY = "missed", "spurious", "wrong type", "wrong boundary"
CATEGORIES = (MISSED, SPURIOUS, WRONG_TYPE, BOUNDARY)
FREQUENT_SHOWN, WORST_SHOWN = 15, 8
EXPLAINED_MAX_TAGGED = 6
WORST_MAX_CHARS = 300

Span = tuple[int, int, str]


def spans_of(tags: Sequence[str], scheme: str) -> list[Span]:
    """The spans a tag sequence encodes; for plain tags, one span per token."""
    if scheme == "plain":
        return [(i, i + 1, tag) for i, tag in enumerate(tags)]
    return spans_from_tags(tags, scheme)


def span_errors(gold: list[Span], pred: list[Span]) -> list[tuple[str, Span | None, Span | None]]:
    """The errors of one sentence as ``(category, gold span, predicted span)``.

    A gold span is right when a predicted span has its boundaries and type; with its
    boundaries but another type, a wrong type; overlapped by predicted spans none of which
    has its boundaries, a wrong boundary (paired with the first); untouched, missed. A
    predicted span that overlaps no gold span is spurious.
    """
    errors: list[tuple[str, Span | None, Span | None]] = []
    by_bounds = {(s, e): k for s, e, k in pred}
    for start, end, kind in gold:
        if (start, end) in by_bounds:
            if by_bounds[(start, end)] != kind:
                errors.append((WRONG_TYPE, (start, end, kind), (start, end, by_bounds[start, end])))
            continue
        overlapping = [p for p in pred if p[0] < end and start < p[1]]
        category = BOUNDARY if overlapping else MISSED
        errors.append((category, (start, end, kind), overlapping[0] if overlapping else None))
    for p in pred:
        if not any(g[0] < p[1] and p[0] < g[1] for g in gold):
            errors.append((SPURIOUS, None, p))
    return errors


def _joined(tokens: Sequence[str], text: str) -> str:
    """Tokens as they read in the text: spaced words, or characters run together."""
    spaced = " ".join(tokens)
    return spaced if spaced in text else "".join(tokens)


def sections(run: Any, plots: Plots) -> Any:
    """The token-classification sections of ``run`` (a report ``RunFolder``)."""
    split, scores = run.scores()
    parts = _type_scores(scores, split, plots)
    records = [r for r in run.predictions or [] if "gold_tags" in r]
    body = [section("types", f"Entity types ({split or 'no held-out split'})", parts)]
    if not records:
        body.append(
            section(
                "errors",
                "Span errors",
                [
                    note(
                        "No predictions.jsonl with gold tags (no test split): span errors need "
                        "the test set's predictions."
                    )
                ],
            )
        )
        return TaskReport(body, [], explainable=True)
    scheme = str(run.model_meta.get("scheme") or "auto")
    if scheme == "auto":
        scheme = detect_scheme({t for r in records for t in r["gold_tags"]})
    found = [
        (r, span_errors(spans_of(r["gold_tags"], scheme), spans_of(r["tags"], scheme)))
        for r in records
    ]
    body.append(section("errors", "Span errors", _error_parts(found, plots)))
    worst = sorted((item for item in found if item[1]), key=lambda item: -len(item[1]))
    body.append(section("worst", "Sentences with most errors", _worst(worst, scheme)))
    # a tagger is explained token by token, one attribution run per tagged token (a dense
    # paragraph took minutes on a CPU): offer sentences with a few tagged tokens
    texts = [r["text"] for r, _ in worst
             if 1 <= sum(t != "O" for t in r["tags"]) <= EXPLAINED_MAX_TAGGED]  # fmt: skip
    rule = f" with 1 to {EXPLAINED_MAX_TAGGED} tagged tokens"
    return TaskReport(body, texts, explainable=True, explained_rule=rule)


def _type_scores(scores: dict[str, Any], split: str, plots: Plots) -> list[str]:
    per_type = scores.get("per_type") or scores.get("per_tag") or {}
    parts: list[str] = []
    if per_type:
        names = list(per_type)
        figure = grouped_bars_figure(
            names,
            {m: [per_type[n].get(m, 0.0) for n in names] for m in ("precision", "recall", "f1")},
            f"Precision, recall and F1 per type ({split})",
            "score",
        )
        parts.append(
            plots.figure(
                "per-type-scores",
                figure,
                "Strict entity-level scores of each type (per tag for plain tags).",
            )
        )
        parts.append(
            table(
                ["type", "precision", "recall", "F1", "support"],
                [
                    [
                        n,
                        *(per_type[n].get(k, 0.0) for k in ("precision", "recall", "f1")),
                        int(per_type[n].get("support", 0)),
                    ]
                    for n in names
                ],
            )
        )
    elif "word_f1" in scores:
        parts.append(
            note(
                "Word segmentation has no entity types; the word precision, recall "
                "and F1 are in the metrics table."
            )
        )
    confusion = scores.get("confusion") or {}
    if confusion:
        rows = list(confusion)
        columns = sorted({c for counts in confusion.values() for c in counts})
        matrix = [[confusion[r].get(c, 0) for c in columns] for r in rows]
        figure = heat_map_figure(
            matrix, rows, columns, f"Entity confusion ({split})", "predicted type", "true type"
        )
        parts.append(
            plots.figure(
                "entity-confusion",
                figure,
                "Spans with the same boundaries "
                "paired; (missed): no predicted span there; row (none): a "
                "predicted span where there is no true one.",
            )
        )
    return parts


def _describe(span: Span | None, record: dict[str, Any]) -> str:
    if span is None:
        return "—"
    start, end, kind = span
    text = _joined(record["tokens"][start:end], record["text"])
    return f"{text} ({kind})" if kind else text


def _error_parts(found: list[tuple[dict[str, Any], list]], plots: Plots) -> list[str]:
    counts: Counter = Counter()
    by_type: dict[str, Counter] = {}
    for record, errors in found:
        for category, gold, pred in errors:
            kind = (gold or pred)[2] if (gold or pred) else ""
            by_type.setdefault(category, Counter())[kind or "(word)"] += 1
            counts[(category, _describe(gold, record), _describe(pred, record))] += 1
    if not counts:
        return [note("No span errors on the test set.")]
    types = sorted({t for c in by_type.values() for t in c})
    figure = grouped_bars_figure(
        types,
        {c: [by_type.get(c, Counter())[t] for t in types] for c in CATEGORIES},
        "Span errors by kind and (true, else predicted) type",
        "spans",
    )
    total = sum(counts.values())
    summary = ", ".join(f"{sum(by_type.get(c, Counter()).values()):,} {c}" for c in CATEGORIES)
    rows = [[n, c, g, p] for (c, g, p), n in counts.most_common(FREQUENT_SHOWN)]
    return [
        Html(f"<p>{total:,} span errors over {len(found):,} test sentences: {esc(summary)}.</p>"),
        plots.figure(
            "span-errors",
            figure,
            "Missed: a true span no prediction touches; "
            "spurious: a predicted span touching no true one; wrong type: right "
            "boundaries, other type; wrong boundary: overlapping, other boundaries.",
        ),
        Html("<h3>Most frequent span errors</h3>"),
        table(["count", "error", "true span", "predicted span"], rows, "texts"),
    ]


def _marked(record: dict[str, Any], spans: list[Span], wrong: set[tuple[int, int]]) -> Html:
    """The sentence's tokens with ``spans`` highlighted (wrong ones in red), type on hover."""
    tokens = record["tokens"]
    glue = " " if " ".join(tokens) in record["text"] else ""
    starts = {s: (e, k) for s, e, k in spans}
    out, i = [], 0
    while i < len(tokens):
        if i in starts:
            end, kind = starts[i]
            cls = "wrong" if (i, end) in wrong else "right"
            words = esc(glue.join(tokens[i:end]))
            out.append(
                f'<mark class="{cls}" title="{esc(kind)}">{words}<sub>{esc(kind)}</sub></mark>'
            )
            i = end
        else:
            out.append(str(esc(tokens[i])))
            i += 1
    return Html(glue.join(out))


def _worst(worst: list[tuple[dict[str, Any], list]], scheme: str) -> list[str]:
    if not worst:
        return [note("Every test sentence is tagged without a span error.")]
    # a long paragraph collects the most errors and fills the page; keep to readable ones
    shown = [item for item in worst if len(item[0]["text"]) <= WORST_MAX_CHARS]
    rows = []
    for record, errors in shown[:WORST_SHOWN]:
        wrong_gold = {(g[0], g[1]) for _, g, _ in errors if g}
        wrong_pred = {(p[0], p[1]) for _, _, p in errors if p}
        gold = _marked(record, spans_of(record["gold_tags"], scheme), wrong_gold)
        pred = _marked(record, spans_of(record["tags"], scheme), wrong_pred)
        rows.append([len(errors), gold, pred])
    legend = Html(
        f"<p>The sentences of at most {WORST_MAX_CHARS} characters with the most span errors "
        f"({len(worst) - len(shown):,} longer ones with errors are counted above but not shown). "
        "Green: a span that is right; red: a span involved in an error; the type follows each "
        "span.</p>"
    )
    if not rows:
        return [legend]
    return [legend, table(["errors", "true spans", "predicted spans"], rows, "texts")]
