"""Report sections of sentence embeddings: retrieval before and after fine-tuning against
BM25, sample queries with what they found, and the queries whose document was not found."""

from __future__ import annotations

from typing import Any

from tunelab.evaluation.report_page import Html, Plots, TaskReport, note, section, shorten, table

RETRIEVAL_KEYS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
SIMILARITY_KEYS = ("spearman", "pearson")
SHOWN = 10


def sections(run: Any, plots: Plots) -> Any:
    """The sentence-embedding sections of ``run`` (a report ``RunFolder``)."""
    split, scores = run.scores()
    keys = SIMILARITY_KEYS if "spearman" in scores else RETRIEVAL_KEYS
    rows = []
    before = (run.metrics.get("before") or {}).get(split) or {}
    if before:
        rows.append(["pretrained model, before fine-tuning", *[before.get(k) for k in keys]])
    rows.append(["fine-tuned model", *[scores.get(k) for k in keys]])
    baseline = run.metrics.get("baseline") or {}
    if isinstance(baseline.get(split), dict):
        rows.append([f"baseline: {baseline.get('method', '')}",
                     *[baseline[split].get(k) for k in keys]])  # fmt: skip
    size = (
        f"{scores.get('examples', 0):,} queries searching {scores.get('corpus', 0):,} documents"
        if "corpus" in scores
        else f"{scores.get('examples', 0):,} scored pairs"
    )
    parts = [Html(f"<p>{split.capitalize()} split: {size}.</p>"), table(["model", *keys], rows)]
    records = [r for r in run.predictions or [] if "retrieved" in r]
    if not records:
        return TaskReport([section("retrieval", "Retrieval", parts)])
    missed = [r for r in records if r.get("rank") is None]
    missed_part = (
        [Html(f"<p>{len(missed):,} of {len(records):,} queries found none of their documents "
              f"in the first 10; the first {min(SHOWN, len(missed))}:</p>"),
         _queries_table(missed[:SHOWN])]
        if missed
        else [note("Every test query found one of its documents in the first 10.")]
    )  # fmt: skip
    return TaskReport(
        [
            section("retrieval", "Retrieval", parts),
            section("samples", "Sample queries", [_queries_table(records[:SHOWN])]),
            section("errors", "Queries that missed", missed_part),
        ]
    )


def _queries_table(records: list[dict[str, Any]]) -> Html:
    rows = [
        [
            shorten(str(r["text"]), 200),
            shorten(" | ".join(map(str, r.get("gold", []))), 300),
            shorten(str((r.get("retrieved") or [""])[0]), 300),
            r.get("rank") or "> 10",
        ]
        for r in records
    ]
    return table(["query", "its document", "first retrieved", "rank"], rows, "texts")
