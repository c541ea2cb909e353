"""BM25 (Okapi): the classical retrieval baseline that a sentence encoder has to beat."""

from __future__ import annotations

import logging
import re

import numpy as np

log = logging.getLogger("tunelab")

METHOD = "BM25 Okapi (rank-bm25; k1 1.5, b 0.75) over lower-cased words and CJK characters"
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased words; each CJK character is a word of its own (no segmenter needed)."""
    return _TOKEN.findall(text.lower())


def bm25_top_documents(queries: list[str], corpus: list[str], depth: int) -> np.ndarray:
    """The ``depth`` best documents of each query by BM25, best first.

    Returns:
        ``(queries, min(depth, corpus))`` corpus indices; ties keep corpus order.
    """
    from rank_bm25 import BM25Okapi

    index = BM25Okapi([bm25_tokens(text) or [""] for text in corpus])
    depth = min(depth, len(corpus))
    ranked = np.zeros((len(queries), depth), dtype=int)
    for i, query in enumerate(queries):
        scores = index.get_scores(bm25_tokens(query))
        ranked[i] = np.argsort(-scores, kind="stable")[:depth]
    return ranked
