"""The tagging baseline: what the training rows' own tags predict, with no model.

Entities (bio, bioes, io, bmeso) and words (bmes): every token sequence the training rows tag
as one span is remembered with its commonest type, where the rows tag it so at least half the
times it occurs; new rows are tagged by the longest remembered match from left to right. For
entities this is the CoNLL-2003 shared task's baseline (complete entities seen in training),
made to skip forms that are mostly not entities; for word segmentation it is forward
maximum matching against the training words, unknown characters left as one-character
words. Plain tags (part of speech): each token's commonest training tag, else the commonest
tag overall.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence

from tunelab.data.tag_schemes import ENTITY_SCHEMES, spans_from_tags, tags_from_spans

METHOD = "tags remembered from the training rows, longest match first"
Tokens = tuple[str, ...]


class TagMemory:
    """Fit on tagged training rows with :meth:`fit`, then :meth:`tag` new token rows."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.spans: dict[Tokens, str] = {}  # entity or word forms, by their tokens
        self._prefixes: set[Tokens] = set()
        self.by_token: dict[str, str] = {}  # plain tags
        self.commonest = "O"

    def fit(self, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> TagMemory:
        """Remember the spans (or each token's tags) of the training rows."""
        if self.scheme not in (*ENTITY_SCHEMES, "bmes"):
            return self._fit_plain(tokens, tags)
        kinds: dict[Tokens, Counter[str]] = defaultdict(Counter)
        for row, row_tags in zip(tokens, tags, strict=True):
            for start, end, kind in spans_from_tags(row_tags, self.scheme):
                kinds[tuple(row[start:end])][kind] += 1
        occurrences = self._occurrences(tokens, kinds.keys())
        self.spans = {
            form: counts.most_common(1)[0][0]
            for form, counts in kinds.items()
            if 2 * sum(counts.values()) >= occurrences[form]
        }
        self._prefixes = _prefixes(self.spans)
        return self

    def _longest_match(self, row: Sequence[str], start: int) -> tuple[int, str | None]:
        """The end and type of the longest remembered form at ``start`` (type None: none)."""
        ends = list(_form_ends(row, start, self.spans.keys(), self._prefixes))
        return (ends[-1], self.spans[tuple(row[start : ends[-1]])]) if ends else (start, None)

    @staticmethod
    def _occurrences(rows: Sequence[Sequence[str]], forms: Iterable[Tokens]) -> Counter[Tokens]:
        """How often each form occurs in ``rows``, tagged or not."""
        known = set(forms)
        prefixes = _prefixes(known)
        return Counter(
            tuple(row[start:end])
            for row in rows
            for start in range(len(row))
            for end in _form_ends(row, start, known, prefixes)
        )

    def _fit_plain(
        self, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]
    ) -> TagMemory:
        seen: dict[str, Counter[str]] = defaultdict(Counter)
        overall: Counter[str] = Counter()
        for row, row_tags in zip(tokens, tags, strict=True):
            for token, tag in zip(row, row_tags, strict=True):
                seen[token][tag] += 1
                overall[tag] += 1
        self.by_token = {token: counts.most_common(1)[0][0] for token, counts in seen.items()}
        self.commonest = overall.most_common(1)[0][0] if overall else "O"
        return self

    def tag(self, row: Sequence[str]) -> list[str]:
        """The tags of one row of tokens, in the scheme it was fit in."""
        if self.scheme not in (*ENTITY_SCHEMES, "bmes"):
            return [self.by_token.get(token, self.commonest) for token in row]
        spans, start = [], 0
        while start < len(row):
            end, kind = self._longest_match(row, start)
            if kind is not None:
                spans.append((start, end, kind))
                start = end
                continue
            if self.scheme == "bmes":  # an unknown character: a word of its own
                spans.append((start, start + 1, ""))
            start += 1
        return tags_from_spans(spans, len(row), self.scheme)


def _form_ends(
    row: Sequence[str], start: int, forms: Collection[Tokens], prefixes: set[Tokens]
) -> Iterator[int]:
    """The ends of the ``forms`` that start at ``start`` in ``row``, shortest first; the walk
    stops where no form goes on (``prefixes``: every leading part of every form)."""
    for end in range(start + 1, len(row) + 1):
        form = tuple(row[start:end])
        if form not in prefixes:
            return
        if form in forms:
            yield end


def _prefixes(forms: Iterable[Tokens]) -> set[Tokens]:
    """Every leading part of every form (the forms included)."""
    return {form[:end] for form in forms for end in range(1, len(form) + 1)}
