"""Text normalisation: what cleaning applies to texts, and the key near-duplicates share."""

from __future__ import annotations

import html
import re
import unicodedata

_PUNCTUATION_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+", re.UNICODE)
_TAGS = re.compile(r"<[a-zA-Z/!][^<>]{0,500}>")


def normalized_text(text: str) -> str:
    """The key under which near-identical texts collide.

    NFKC folds full-width and half-width forms, then case, whitespace and punctuation are
    dropped: two reviews that differ only in those are the same review.
    """
    return _PUNCTUATION_OR_SPACE.sub("", unicodedata.normalize("NFKC", text).lower())


def clean_text(
    text: str,
    nfkc: bool = True,
    whitespace: bool = True,
    strip_html: bool = False,
    lowercase: bool = False,
) -> str:
    """Apply the cleaning steps a run is configured with (the same at training and prediction).

    Args:
        nfkc: fold full-width/half-width and compatibility forms (ＡＢＣ１ -> ABC1).
        whitespace: collapse runs of whitespace to one space and trim the ends.
        strip_html: remove markup tags and unescape entities (&amp; -> &).
        lowercase: lower-case Latin letters.
    """
    if strip_html:
        text = html.unescape(_TAGS.sub(" ", text))
    if nfkc:
        text = unicodedata.normalize("NFKC", text)
    if whitespace:
        text = _SPACES.sub(" ", text).strip()
    if lowercase:
        text = text.lower()
    return text
