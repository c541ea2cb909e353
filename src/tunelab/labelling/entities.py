"""Entity labelling: spans of a text with a type, the queue asking where its tagger is least
sure and pre-filling the spans it guesses.

The queue's model is a linear-chain CRF (python-crfsuite, the ``label`` extra) on character
window features, the usual fast baseline for Chinese and other unsegmented tagging; it trains
in seconds on a few hundred sentences. Cold start, near-duplicates, leases, skips and double
labelling are :class:`~tunelab.labelling.queue.LabelQueue`'s. Uncertainty is the tagger's
least sure character: the lowest marginal probability of the best tagging's tags, so one
doubtful name in a long sentence is enough to ask it.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.errors import UserError
from tunelab.labelling.queue import LabelQueue, Suggestion

Span = tuple[int, int, str]

# scored per retrain, at most: a random sample of the unlabelled texts (the whole pool is
# minutes of tagging at 50,000 texts; the most uncertain of 5,000 is as good a question)
SCORED_AT_MOST = 5_000


def char_class(char: str) -> str:
    """A coarse class of a character: digit, latin, punctuation, CJK or other."""
    if char.isdigit():
        return "digit"
    if char.isascii() and char.isalpha():
        return "latin"
    if unicodedata.category(char).startswith("P"):
        return "punct"
    return "cjk" if "\u4e00" <= char <= "\u9fff" else "other"


def char_features(tokens: Sequence[str]) -> list[dict[str, str | float]]:
    """Window features of each character (the usual CRF feature set for Chinese tagging)."""
    padded = ["<s2>", "<s1>", *tokens, "</s1>", "</s2>"]
    rows: list[dict[str, str | float]] = []
    for i in range(len(tokens)):
        c = i + 2
        rows.append({
            "bias": 1.0,
            "c0": padded[c], "c-1": padded[c - 1], "c+1": padded[c + 1],
            "c-2": padded[c - 2], "c+2": padded[c + 2],
            "c-1c0": padded[c - 1] + padded[c], "c0c+1": padded[c] + padded[c + 1],
            "c-1c+1": padded[c - 1] + padded[c + 1],
            "class": char_class(tokens[i]),
            "class-1": char_class(padded[c - 1][:1]) if i else "start",
            "class+1": char_class(padded[c + 1][:1]) if i + 1 < len(tokens) else "end",
        })  # fmt: skip
    return rows


def spans_to_tags(length: int, spans: Sequence[Span]) -> list[str]:
    """BIO tags of ``length`` characters with ``spans`` (start, end exclusive, type)."""
    tags = ["O"] * length
    for start, end, kind in spans:
        tags[start] = f"B-{kind}"
        tags[start + 1 : end] = [f"I-{kind}"] * (end - start - 1)
    return tags


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """The spans of BIO ``tags``; an ``I-`` without its ``B-`` starts a span (as seqeval)."""
    spans: list[Span] = []
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        if start >= 0 and (prefix != "I" or name != kind):
            spans.append((start, i, kind))
            start = -1
        if prefix == "B" or (prefix == "I" and start < 0):
            start, kind = i, name
    return spans


def fit_tagger(
    texts: Sequence[str], spans: Sequence[Sequence[Span]], iterations: int = 50
) -> Tagger:
    """A CRF tagger trained on ``texts`` and their ``spans``."""
    try:
        import pycrfsuite
    except ImportError:
        raise UserError("entity labelling needs the python-crfsuite package; install it with "
                        "pip install 'tunelab[label]'") from None  # fmt: skip
    trainer = pycrfsuite.Trainer(verbose=False)
    for text, found in zip(texts, spans, strict=True):
        trainer.append(char_features(list(text)), spans_to_tags(len(text), found))
    trainer.set_params({"c1": 0.05, "c2": 0.01, "max_iterations": iterations,
                        "feature.possible_transitions": True})  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crf.model"
        trainer.train(str(path))
        return Tagger(path.read_bytes())


class Tagger:
    """A trained CRF in memory. crfsuite reads the model from the bytes without copying
    them, so they live as long as the tagger (freed bytes gave garbage tags)."""

    def __init__(self, model: bytes) -> None:
        import pycrfsuite

        self.model = model
        self.tagger = pycrfsuite.Tagger()
        self.tagger.open_inmemory(self.model)

    def tag(self, features: list[dict[str, str | float]]) -> list[str]:
        """The best tagging of one sequence (and its marginals for :meth:`marginal`)."""
        return list(self.tagger.tag(features))

    def marginal(self, tag: str, position: int) -> float:
        """The probability of ``tag`` at ``position`` of the sequence last tagged."""
        return float(self.tagger.marginal(tag, position))


def tag_spans(tagger: Any, texts: Sequence[str]) -> list[list[Span]]:
    """The spans ``tagger`` finds in each text."""
    return [tags_to_spans(tagger.tag(char_features(list(text)))) if text else []
            for text in texts]  # fmt: skip


class EntityQueue(LabelQueue):
    """:class:`LabelQueue` for entity spans: ``label_set`` is the entity types.

    A label is a list of ``(start, end, type)`` spans (end exclusive; an empty list says the
    text has no entity). Suggestions carry the tagger's guessed spans in ``spans``.
    """

    def __init__(self, items: pd.DataFrame, entity_types: Sequence[str], iterations: int = 50,
                 **options: Any) -> None:  # fmt: skip
        self.iterations = iterations
        self.guessed_spans: dict[int, list[Span]] = {}
        self.least_sure: dict[int, tuple[float, str]] = {}
        super().__init__(items, entity_types, **options)

    def _check_label_set(self, label_set: Sequence[str]) -> None:
        parse_entity_types(",".join(label_set))

    def check_label(self, label: Any) -> None:
        """Raises UserError unless ``label`` is a list of spans of known types."""
        if isinstance(label, str) or not isinstance(label, Sequence):
            raise UserError(f"entity labelling takes spans (start, end, type), not {label!r}")
        for span in label:
            if len(span) != 3 or span[2] not in self.label_set:
                raise UserError(f"span {tuple(span)!r} is not (start, end, type) with a type "
                                f"among: {', '.join(self.label_set)}")  # fmt: skip

    def checked(self, item: str, label: Any) -> list[Span]:
        """``label`` as sorted spans, checked against ``item``'s text (inside it, no overlap).

        Raises:
            UserError: naming the span and what is wrong with it.
        """
        self.check_label(label)
        item = str(item)
        if item not in self.row_of:
            raise UserError(f"item {item!r} is not in the unlabelled data")
        text = self.texts[self.row_of[item]]
        spans = sorted((int(s), int(e), str(k)) for s, e, k in label)
        end_before = 0
        for start, end, kind in spans:
            if not 0 <= start < end <= len(text) or start < end_before:
                raise UserError(f"span ({start}, {end}, {kind}) of item {item} is outside its "
                                f"{len(text)} characters or overlaps another; give "
                                "non-overlapping spans inside the text")  # fmt: skip
            end_before = end
        return spans

    def add_label(self, item: str, label: Any, annotator: str | None = None) -> None:
        """Record ``item``'s entity spans (see :meth:`checked`)."""
        self._record(str(item), self.checked(item, label), annotator)

    metric = "entity F1"

    def _fit(self, labels: dict[str, Any]) -> dict[str, Any] | None:
        """The tagger fitted on ``labels`` (a snapshot) and its guesses on a sample of the
        unlabelled texts, as the attributes :meth:`_install` sets."""
        items = [item for item in labels if not self.held_out[self.row_of[item]]]
        texts = [self.texts[self.row_of[item]] for item in items]
        model = fit_tagger(texts, [labels[item] for item in items], self.iterations)
        labelled = self.held_out.copy()  # never asked for its uncertainty
        labelled[[self.row_of[item] for item in labels]] = True
        candidates = np.flatnonzero(~labelled)
        if len(candidates) > SCORED_AT_MOST:
            candidates = np.sort(self.rng.choice(candidates, SCORED_AT_MOST, replace=False))
        margins = np.full(len(self.ids), np.inf)
        guessed_spans, least_sure = {}, {}
        for row in candidates:
            text = self.texts[row]
            if not text:
                continue
            tags = model.tag(char_features(list(text)))
            sure = [model.marginal(tag, i) for i, tag in enumerate(tags)]
            weakest = int(np.argmin(sure))
            margins[row] = sure[weakest]
            least_sure[int(row)] = (sure[weakest], text[weakest])
            guessed_spans[int(row)] = tags_to_spans(tags)
        return {"model": model, "labels_at_training": len(labels), "margins": margins,
                "guessed_spans": guessed_spans, "least_sure": least_sure,
                "point": self._measure(model, labels, len(items))}  # fmt: skip

    def _held_out_score(self, model: Any, held: list[str], labels: dict[str, Any]) -> float:
        from tunelab.evaluation.tagging import sequence_metrics

        texts = [self.texts[self.row_of[item]] for item in held]
        truth = [spans_to_tags(len(t), labels[i]) for t, i in zip(texts, held, strict=True)]
        found = [spans_to_tags(len(t), s)
                 for t, s in zip(texts, tag_spans(model, texts), strict=True)]  # fmt: skip
        return float(sequence_metrics(truth, found, "bio")["f1"])

    def _labels_so_far(self) -> str:
        return f"{len(self.labels)} texts labelled, the first model comes at {self.clusters}"

    def _unsure_reason(self, row: int) -> str:
        sure, char = self.least_sure[row]
        count = len(self.guessed_spans.get(row, []))
        return f"model unsure: {sure:.2f} at '{char}' ({count} entities guessed)"

    def _suggest(self, row: int, reason: str) -> Suggestion:
        spans = None
        if self.model is not None and self.ids[row] not in self.labels:  # blind second opinion
            spans = self.guessed_spans.get(row)
            if spans is None:
                spans = tag_spans(self.model, [self.texts[row]])[0]
        return Suggestion(self.ids[row], self.texts[row], reason, None, spans)


def parse_entity_types(entities: str) -> list[str]:
    """``"PER,LOC,ORG"`` as a list: one or more names without spaces, '-' or '='."""
    names = list(dict.fromkeys(part.strip() for part in entities.split(",") if part.strip()))
    if not names or any(c in name for name in names for c in " -="):
        raise UserError(f"--entities {entities!r} needs one or more entity type names without "
                        "spaces, '-' or '='; give e.g. --entities PER,LOC,ORG")  # fmt: skip
    return names


def parse_spans(answer: str, text: str, entity_types: Sequence[str]) -> list[Span]:
    """Spans typed at the terminal: ``张三=PER 北京=LOC`` (each surface string's first
    occurrence not yet taken; ``北京#2=LOC`` for its second), or ``-`` for none.

    Raises:
        UserError: for a part without ``=TYPE``, an unknown type, or a string not in the text.
    """
    if answer.strip() == "-":
        return []
    spans: list[Span] = []
    for part in answer.split():
        surface, equals, kind = part.rpartition("=")
        if not equals or not surface:
            raise UserError(f"{part!r} is not TEXT=TYPE; type e.g. 张三=PER 北京=LOC, or - "
                            "for no entity")  # fmt: skip
        if kind not in entity_types:
            raise UserError(f"entity type {kind!r} is not one of: {', '.join(entity_types)}")
        surface, _, nth = surface.rpartition("#") if "#" in surface else (surface, "", "1")
        starts = [m.start() for m in re.finditer(re.escape(surface), text)]
        free = [s for s in starts
                if all(s >= e or s + len(surface) <= b for b, e, _ in spans)]  # fmt: skip
        wanted = int(nth) if nth.isdigit() else 1
        if len(free) < wanted:
            times = "" if wanted == 1 else f" {wanted} times"
            raise UserError(f"{surface!r} is not in the text{times}; type a part of the text "
                            "as it is written")  # fmt: skip
        spans.append((free[wanted - 1], free[wanted - 1] + len(surface), kind))
    return sorted(spans)


def show_spans(text: str, spans: Sequence[Span] | None) -> str:
    """``张三=PER 北京=LOC``: spans as :func:`parse_spans` reads them (``-`` for none)."""
    return " ".join(f"{text[s:e]}={k}" for s, e, k in spans or []) or "-"


def entity_f1(queue: EntityQueue, test: pd.DataFrame) -> float | None:
    """Entity F1 (seqeval, strict spans) on ``test`` (``text``, ``spans``) of a tagger trained
    on the queue's labels so far."""
    from tunelab.evaluation.tagging import sequence_metrics

    if not queue.labels:
        return None
    items = list(queue.labels)
    tagger = fit_tagger([queue.texts[queue.row_of[i]] for i in items],
                        [queue.labels[i] for i in items], queue.iterations)  # fmt: skip
    texts = test["text"].astype(str).tolist()
    truth = [spans_to_tags(len(t), s) for t, s in zip(texts, test["spans"], strict=True)]
    guessed = [spans_to_tags(len(t), s) for t, s in zip(texts, tag_spans(tagger, texts),
                                                         strict=True)]  # fmt: skip
    return round(float(sequence_metrics(truth, guessed, "bio")["f1"]), 4)
