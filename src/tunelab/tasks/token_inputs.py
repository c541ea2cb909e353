"""Sequence-labelling rows in every input shape, turned into one: text, tokens, offsets, tags.

Users bring token/tag lists (CoNLL, JSONL), raw text with character spans (the export of
Label Studio and doccano), or raw text alone (prediction). Each becomes a row with
``text`` (the string entity offsets refer to), ``tokens``, ``starts`` (each token's offset
in ``text``) and, when labelled, ``tags``.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.normalize import WIDE_CHARACTERS
from tunelab.data.tag_schemes import tags_from_spans
from tunelab.errors import UserError

log = logging.getLogger("tunelab")

TEXT, TOKENS, STARTS, TAGS = "text", "tokens", "starts", "tags"

# One token per CJK character, as Chinese BERT tokenizers do; other scripts: runs of word
# characters, and single punctuation marks.
_TOKEN = re.compile(rf"[{WIDE_CHARACTERS}]|[^\W{WIDE_CHARACTERS}]+|[^\w\s]")
_IS_WIDE = re.compile(rf"[{WIDE_CHARACTERS}]")


def pre_tokenize(text: str) -> tuple[list[str], list[int]]:
    """Split raw text into tokens (each CJK character; words and punctuation otherwise)."""
    matches = list(_TOKEN.finditer(text))
    return [m.group() for m in matches], [m.start() for m in matches]


def join_tokens(tokens: list[str]) -> tuple[str, list[int]]:
    """A readable text for given tokens: no space between CJK characters, one elsewhere."""
    parts: list[str] = []
    starts: list[int] = []
    position = 0
    for i, token in enumerate(tokens):
        if i and not (_IS_WIDE.match(tokens[i - 1][-1:]) and _IS_WIDE.match(token[:1])):
            parts.append(" ")
            position += 1
        starts.append(position)
        parts.append(token)
        position += len(token)
    return "".join(parts), starts


def _as_list(value: Any) -> list[str] | None:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    if isinstance(value, str):
        return value.split()
    return None


def _span_fields(span: Any) -> tuple[Any, Any, Any]:
    if isinstance(span, dict):
        label = span.get("label", span.get("labels"))
        if isinstance(label, (list, tuple)):  # Label Studio: "labels": ["PER"]
            label = label[0] if label else None
        return span.get("start"), span.get("end"), label
    if isinstance(span, (list, tuple)) and len(span) == 3:  # doccano: [start, end, label]
        return span[0], span[1], span[2]
    return None, None, None


def is_nested_spans(value: Any) -> bool:
    """Whether a cell holds CLUENER's entity spans, ``{type: {entity text: [[start, end],
    ...]}}`` with ``end`` inclusive (``{}``: a row without entities)."""
    return isinstance(value, dict) and all(isinstance(e, dict) for e in value.values())


def nested_spans_column(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> str | None:
    """The first column whose non-empty cells (a sample) all hold CLUENER's nested spans,
    some of them entities."""
    from tunelab.data.columns import sample_cells

    for name in frame.columns:
        if str(name) in exclude:
            continue
        cells = sample_cells(frame, name)
        if len(cells) and cells.map(is_nested_spans).all() and cells.map(bool).any():
            return str(name)
    return None


def _flat_spans(spans: dict, text: str, where: str) -> list[dict[str, Any]]:
    """CLUENER's ``{type: {entity: [[start, end]]}}`` (end inclusive) as ``{start, end,
    label}`` spans (end exclusive), each checked against the text it names.

    Raises:
        UserError: naming ``where`` for an offset pair that is not two integers, or whose
            characters are not the entity text it is filed under.
    """
    flat = []
    for kind, entities in spans.items():
        for entity, places in entities.items():
            for place in places if isinstance(places, (list, tuple)) else [places]:
                if not (
                    isinstance(place, (list, tuple))
                    and len(place) == 2
                    and all(isinstance(v, (int, np.integer)) for v in place)
                ):
                    raise UserError(
                        f"{where}: entity '{entity}' ({kind}) has offsets {place!r}; CLUENER's "
                        "shape gives [start, end] pairs of character positions"
                    )
                start, end = int(place[0]), int(place[1]) + 1
                if text[start:end] != str(entity):
                    raise UserError(
                        f"{where}: entity '{entity}' ({kind}) at {place[0]}-{place[1]} does not "
                        f"match the text there ('{text[start:end]}'); CLUENER offsets count "
                        "characters from 0 with the end inclusive: fix the offsets"
                    )
                flat.append({"start": start, "end": end, "label": kind})
    return flat


def spans_to_token_spans(
    text: str, starts: list[int], tokens: list[str], spans: Any, where: str
) -> tuple[list[tuple[int, int, str]], int, int]:
    """Character spans as token spans; a span that cuts a token takes the whole token.

    Returns:
        The token spans, how many character spans did not fall on token boundaries, and how
        many lay inside another span (dropped: CLUENER files a company inside a book title;
        flat tags keep the outer one).

    Raises:
        UserError: naming ``where`` for a span that is malformed or outside the text.
    """
    if is_nested_spans(spans):  # CLUENER: {type: {entity: [[start, end]]}}
        spans = _flat_spans(spans, text, where)
    ends = [s + len(t) for s, t in zip(starts, tokens, strict=True)]
    result, misaligned = [], 0
    for span in spans if isinstance(spans, (list, tuple, np.ndarray)) else []:
        start, end, label = _span_fields(span)
        if not (isinstance(start, (int, np.integer)) and isinstance(end, (int, np.integer))):
            raise UserError(f"{where}: span {span!r} needs integer 'start' and 'end' and a 'label'")
        if label is None or str(label).strip() == "":
            raise UserError(f"{where}: span {span!r} has no label")
        if not 0 <= start < end <= len(text):
            raise UserError(
                f"{where}: span {start}-{end} lies outside the text ({len(text)} characters); "
                "offsets count characters from 0 with 'end' exclusive"
            )
        # tokens are in text order: the first ending after start to the last starting before end
        first, last = bisect.bisect_right(ends, start), bisect.bisect_left(starts, end)
        if first >= last:
            raise UserError(f"{where}: span {start}-{end} covers only whitespace")
        misaligned += starts[first] != start or ends[last - 1] != end
        result.append((first, last, str(label).strip()))
    # longest first among spans that start together, so an outer span comes before those in it
    result.sort(key=lambda span: (span[0], -span[1]))
    kept: list[tuple[int, int, str]] = []
    for span in result:
        if kept and span[1] <= kept[-1][1]:  # inside the span before: flat tags hold one layer
            continue
        if kept and span[0] < kept[-1][1]:
            e1, s2 = kept[-1][1], span[0]
            raise UserError(
                f"{where}: spans overlap at characters {starts[s2]}-{starts[e1 - 1] + 1}; "
                "sequence labelling needs non-overlapping spans"
            )
        kept.append(span)
    return kept, misaligned, len(result) - len(kept)


def standardize_rows(
    frame: pd.DataFrame,
    text_column: str,
    tokens_column: str,
    tags_column: str,
    spans_column: str,
    with_labels: bool,
    span_scheme: str = "bio",
) -> pd.DataFrame:
    """One row shape (text, tokens, starts, tags) from any supported input shape.

    Token lists win over text; labelled text needs a spans column. Labelled rows without
    tokens are dropped (listed in ``attrs["empty_rows"]``).

    Raises:
        UserError: naming the file and row, for missing columns or rows that disagree.
    """
    source = frame.attrs.get("source", "data")
    columns = ", ".join(map(str, frame.columns))
    rows: list[dict[str, Any]] = []
    misaligned = 0
    nested: dict[int, int] = {}  # row: spans dropped inside an outer one
    if tokens_column in frame.columns:
        if with_labels and tags_column not in frame.columns:
            raise UserError(
                f"{source} has tokens but no column '{tags_column}' (set by data.tags_column); "
                f"its columns are: {columns}"
            )
        for row, item in frame.iterrows():
            tokens = _as_list(item[tokens_column])
            if tokens is None:
                raise UserError(f"{source} row {row}: '{tokens_column}' is not a list of tokens")
            text, starts = join_tokens(tokens)
            record = {TEXT: text, TOKENS: tokens, STARTS: starts}
            if with_labels:
                tags = _as_list(item[tags_column])
                if tags is None or len(tags) != len(tokens):
                    found = "no list" if tags is None else f"{len(tags)} tags"
                    raise UserError(
                        f"{source} row {row}: {len(tokens)} tokens but {found} in column "
                        f"'{tags_column}'; give exactly one tag per token"
                    )
                record[TAGS] = tags
            rows.append(record)
    elif text_column in frame.columns and (spans_column in frame.columns or not with_labels):
        for row, item in frame.iterrows():
            text = "" if item[text_column] is None else str(item[text_column])
            tokens, starts = pre_tokenize(text)
            record = {TEXT: text, TOKENS: tokens, STARTS: starts}
            if with_labels:
                spans, cut, inner = spans_to_token_spans(
                    text, starts, tokens, item[spans_column], f"{source} row {row}"
                )
                misaligned += cut
                if inner:
                    nested[int(row)] = inner
                record[TAGS] = tags_from_spans(spans, len(tokens), span_scheme)
            rows.append(record)
    else:
        need = (
            f"'{tokens_column}' and '{tags_column}', or '{text_column}' and '{spans_column}'"
            if with_labels
            else f"'{tokens_column}' or '{text_column}'"
        )
        raise UserError(
            f"{source} needs columns {need} (set by data.tokens_column, data.tags_column, "
            f"data.text_column, data.spans_column); its columns are: {columns}"
        )
    result = pd.DataFrame(rows, index=frame.index, columns=[TEXT, TOKENS, STARTS, TAGS])
    if not with_labels:
        result = result.drop(columns=[TAGS])
    # unlabelled rows stay, so that prediction answers every input (an empty one with nothing)
    empty = (result[TOKENS].map(len) == 0) & with_labels
    result = result[~empty]
    empty_rows = [int(i) for i in frame.index[empty.to_numpy()]]
    result.attrs = {**frame.attrs, "empty_rows": empty_rows, "misaligned_spans": misaligned,
                    "nested_spans": sum(nested.values())}  # fmt: skip
    if nested:
        shown = ", ".join(map(str, list(nested)[:10]))
        log.warning(
            "%s: %d span(s) inside a longer one left out, the outer kept, as flat tags hold one "
            "layer (rows %s%s)", source, sum(nested.values()), shown,
            " and more" if len(nested) > 10 else "",
        )  # fmt: skip
    return result
