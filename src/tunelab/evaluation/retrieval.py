"""Retrieval and similarity scores for sentence embeddings.

Every query has a set of relevant documents in one shared corpus (binary relevance, as in
BEIR/MTEB): recall@k is the share of a query's relevant documents among its first k,
MRR@10 the reciprocal rank of the first relevant one (0 beyond 10), NDCG@10 the discounted
gain of the first ten against the best possible order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_AT = (1, 5, 10)
CUT = 10  # MRR and NDCG look at the first ten documents


def cosine_matrix(queries: np.ndarray, documents: np.ndarray) -> np.ndarray:
    """Cosine similarity of each query (rows) to each document (columns)."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    d = documents / np.maximum(np.linalg.norm(documents, axis=1, keepdims=True), 1e-12)
    return q @ d.T


def ranking(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of each row's ``depth`` highest scores, best first (ties: lower index first)."""
    depth = min(depth, scores.shape[1])
    top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def top_documents(queries: np.ndarray, corpus: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The first ``CUT`` documents of each query by cosine similarity, in query chunks (the
    full matrix of a large corpus would not fit in memory)."""
    parts = [
        ranking(cosine_matrix(queries[i : i + chunk], corpus), CUT)
        for i in range(0, len(queries), chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, CUT), dtype=int)


def retrieval_scores(ranked: np.ndarray, relevant: Sequence[set[int]]) -> dict[str, float]:
    """recall@1/5/10, MRR@10 and NDCG@10 from each query's first documents.

    Args:
        ranked: ``(queries, >= 10)`` document indices, best first (fewer columns only when
            the corpus is smaller).
        relevant: for each query, the indices of its relevant documents (non-empty).
    """
    hits = np.array(
        [[int(doc) in rel for doc in row[:CUT]] for row, rel in zip(ranked, relevant, strict=True)],
        dtype=bool,
    ).reshape(len(relevant), -1)
    counts = np.array([len(rel) for rel in relevant], dtype=float)
    result = {f"recall@{k}": float((hits[:, :k].sum(axis=1) / counts).mean()) for k in RECALL_AT}
    found = hits.any(axis=1)
    first = np.where(found, hits.argmax(axis=1) + 1, 0)
    result["mrr@10"] = float(np.where(found, 1.0 / np.maximum(first, 1), 0.0).mean())
    discounts = 1.0 / np.log2(np.arange(2, CUT + 2))
    gains = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    ideal = np.array([discounts[: int(min(c, CUT))].sum() for c in counts])
    result["ndcg@10"] = float((gains / ideal).mean())
    return result


def similarity_scores(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Spearman and Pearson correlation of predicted similarities with gold scores."""
    from scipy.stats import pearsonr, spearmanr

    if len(gold) < 2 or np.ptp(gold) == 0 or np.ptp(predicted) == 0:
        return {"spearman": 0.0, "pearson": 0.0}
    return {
        "spearman": float(spearmanr(predicted, gold).statistic),
        "pearson": float(pearsonr(predicted, gold).statistic),
    }
