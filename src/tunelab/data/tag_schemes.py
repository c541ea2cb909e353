"""Tag schemes of sequence labelling: BIO, BIOES, IO, BMESO (BIOES with M- for I-, as Chinese
NER sets such as ResumeNER write it), word segmentation (bare BMES), plain tags.

Every entity scheme decodes to the same thing, a list of ``(start, end, type)`` spans over
token positions (``end`` exclusive); conversion between schemes is decoding in one and
encoding in the other. Decoding is lenient in the way ``pipeline(aggregation_strategy=
"simple")`` is: an ``I-X`` after ``O`` or after another type opens a new entity, so a
broken sequence still yields spans, and re-encoding it is the repair.
"""

from __future__ import annotations

from collections.abc import Sequence

ENTITY_SCHEMES = ("bio", "bioes", "io", "bmeso")
# Word segmentation as character tagging: Begin, Middle, End of a word, Single-character word.
SEGMENTATION_TAGS = {"B", "M", "E", "S"}
SCHEMES = (*ENTITY_SCHEMES, "bmes", "plain")

Span = tuple[int, int, str]


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` → ``("B", "PER")``; ``"O"`` → ``("O", "")``; ``"PER"`` → ``("", "PER")``."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in "BIESM":
        return tag[0], tag[2:]
    return "", tag


def detect_scheme(tags: set[str]) -> str:
    """The scheme a set of tags is written in.

    ``bmeso`` if any ``M-`` tag occurs (entities as B-/M-/E-/S-), ``bioes`` if any
    ``E-``/``S-`` tag occurs, ``bio`` if any ``B-``, ``io`` if only ``I-`` and ``O``;
    ``bmes`` for bare B/M/E/S (word segmentation); otherwise ``plain`` (one independent tag
    per token, such as part of speech).
    """
    if tags and tags <= SEGMENTATION_TAGS:
        return "bmes"
    prefixes = {split_tag(tag)[0] for tag in tags}
    if "" in prefixes or ("M" in prefixes and "I" in prefixes):
        return "plain"
    if "M" in prefixes:
        return "bmeso"
    if prefixes & {"E", "S"}:
        return "bioes"
    if "B" in prefixes:
        return "bio"
    if "I" in prefixes:
        return "io"
    return "plain"  # only "O": nothing to find


def _segmentation_as_bioes(tag: str) -> tuple[str, str]:
    return {"B": "B", "M": "I", "E": "E", "S": "S"}.get(tag, "O"), ""


def spans_from_tags(tags: Sequence[str], scheme: str) -> list[Span]:
    """The entities (or words, for ``bmes``) a tag sequence encodes, read leniently."""
    spans: list[Span] = []
    start, current = -1, ""

    def close(end: int) -> None:
        nonlocal start, current
        if start >= 0:
            spans.append((start, end, current))
        start, current = -1, ""

    for i, tag in enumerate(tags):
        prefix, kind = _segmentation_as_bioes(tag) if scheme == "bmes" else split_tag(tag)
        if prefix in ("O", ""):
            close(i)
        elif prefix in ("B", "S") or (prefix in ("I", "M", "E") and (start < 0 or kind != current)):
            close(i)
            start, current = i, kind
        if prefix in ("E", "S"):
            close(i + 1)
    close(len(tags))
    return spans


def tags_from_spans(spans: Sequence[Span], length: int, scheme: str) -> list[str]:
    """Encode ``spans`` over ``length`` tokens in ``scheme`` (bio, bioes, io, bmeso or bmes)."""
    tags = ["O"] * length
    for start, end, kind in spans:
        if scheme == "bmes":
            if end - start == 1:
                tags[start] = "S"
            else:
                tags[start:end] = ["B", *["M"] * (end - start - 2), "E"]
            continue
        inside = f"M-{kind}" if scheme == "bmeso" else f"I-{kind}"
        if scheme == "io":
            tags[start:end] = [inside] * (end - start)
        elif scheme == "bio":
            tags[start:end] = [f"B-{kind}", *[inside] * (end - start - 1)]
        elif end - start == 1:
            tags[start] = f"S-{kind}"
        else:
            tags[start:end] = [f"B-{kind}", *[inside] * (end - start - 2), f"E-{kind}"]
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Re-encode a tag sequence from one entity scheme into another."""
    if source == target == "plain":
        return list(tags)
    return tags_from_spans(spans_from_tags(tags, source), len(tags), target)


def broken_positions(tags: Sequence[str], scheme: str) -> list[int]:
    """Token positions where a sequence breaks its scheme's rules (empty when it is valid).

    BIO: an ``I-X`` that follows neither ``B-X`` nor ``I-X``. BIOES additionally: an entity
    that does not end in ``E-X``/``S-X``. BMES: a word that does not end in ``E``/``S``.
    """
    if scheme in ("io", "plain"):
        return []
    valid = tags_from_spans(spans_from_tags(tags, scheme), len(tags), scheme)
    return [i for i, (a, b) in enumerate(zip(tags, valid, strict=True)) if a != b]


def entity_types(tags: set[str], scheme: str) -> list[str]:
    """The entity types a tag set mentions, sorted."""
    if scheme in ("plain", "bmes"):
        return []
    return sorted({split_tag(tag)[1] for tag in tags if tag != "O"})


def scheme_tags(types: Sequence[str], scheme: str) -> list[str]:
    """Every tag of ``scheme`` over entity ``types``: ``O`` first, then per type in order."""
    if scheme == "bmes":
        return ["B", "M", "E", "S"]
    prefixes = {"bio": "BI", "bioes": "BIES", "io": "I", "bmeso": "BMES"}[scheme]
    return ["O", *[f"{p}-{kind}" for kind in types for p in prefixes]]
