"""CoNLL-style files: one token per line with its tag, a blank line between sentences; and
CoNLL-U, Universal Dependencies' ten-field form of them."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from tunelab.errors import UserError

log = logging.getLogger("tunelab")


CONLL_SAMPLE_LINES = 400  # lines read to tell a CoNLL file from a table or running text
_MAX_TOKEN_CHARS = 30  # longer first fields are texts, not tokens


def looks_like_conll(text: str) -> bool:
    """Whether ``text`` (a file named .txt) is CoNLL: a token and its tag a line, a blank line
    between sentences, as MSRA, Weibo and Resume NER ship.

    In its first lines: blank lines separate groups of two or more lines on average, every
    line that is not blank splits (on its tab, else on whitespace) into the same number of
    fields, two or more, whose first (the token) is short, and the last field (the tag) takes
    few values. A table has no blank lines between its rows, and running text has no fixed
    number of fields.
    """
    lines = text.split("\n", CONLL_SAMPLE_LINES)[:CONLL_SAMPLE_LINES]  # whole lines only
    lines = ["" if line.lstrip().startswith("-DOCSTART-") else line for line in lines]
    filled = [line.strip() for line in lines if line.strip()]
    groups = sum(1 for before, line in zip(["", *lines], lines, strict=False)
                 if line.strip() and not before.strip())  # fmt: skip
    if not filled or groups < 2 or len(filled) < 2 * groups:
        return False
    tabs = "\t" in filled[0]
    fields = [line.split("\t") if tabs else line.split() for line in filled]
    widths = {len(row) for row in fields}
    if len(widths) != 1 or widths.pop() < 2:
        return False
    if any(len(row[0].strip()) > _MAX_TOKEN_CHARS for row in fields):
        return False
    tags = {row[-1].strip() for row in fields}
    return len(tags) <= max(8, len(fields) // 3)


def parse_conll(text: str, path: Path, tag_column: int = -1) -> pd.DataFrame:
    """Sentences of a CoNLL file as rows with ``tokens`` and ``tags`` lists.

    Fields are split on tabs when the first token line holds one (so a token may hold a
    space, as in tweets' corpora), else on any whitespace; the token is the first field, the
    tag the field ``tag_column`` (0-based; -1: the last), so files with extra columns (POS,
    chunk) work.
    ``-DOCSTART-`` lines are ignored, and so are lines holding a tag after leading whitespace
    but no token (an empty token field: public corpora have them where an invisible
    character was stripped), with a warning naming them. The index is the line number of
    each sentence's first token, so later errors name the line.

    Raises:
        UserError: naming the line, for a line without a tag column or with another number
            of fields than the file's first token line.
    """
    rows: list[dict[str, list[str]]] = []
    index: list[int] = []
    tokens: list[str] = []
    tags: list[str] = []

    def close() -> None:
        if tokens:
            rows.append({"tokens": list(tokens), "tags": list(tags)})
        tokens.clear()
        tags.clear()

    width: tuple[int, int] | None = None  # (fields, line) of the first token line
    empty_tokens: list[int] = []
    lines = text.split("\n")
    tabs = "\t" in next((line.strip() for line in lines if line.strip()), "")
    separated = "tab-separated" if tabs else "whitespace-separated"
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if tabs and "\t" in stripped:
            fields = [field.strip() for field in stripped.split("\t")]
        else:
            fields = stripped.split()
        if not fields:
            close()
            continue
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if len(fields) == 1 and line[0].isspace():
            empty_tokens.append(number)
            continue
        if width is None:
            width = (len(fields), number)
        elif len(fields) != width[0] and len(fields) >= 2:
            # A stray or missing column shifts which field is the tag: refuse, never guess.
            raise UserError(
                f"{path} line {number} has {len(fields)} {separated} fields but line "
                f"{width[1]} has {width[0]}; every token line needs the same columns (a token "
                f"holding a {'tab' if tabs else 'space'} splits into two): fix the line"
            )
        column = tag_column if tag_column >= 0 else len(fields) + tag_column
        if len(fields) < 2 or not 0 < column < len(fields):
            raise UserError(
                f"{path} line {number}: expected a token and a tag separated by whitespace, "
                f"found {len(fields)} field(s) and tag column {tag_column}; fix the line or "
                "set data.tag_column"
            )
        if not tokens:
            index.append(number)
        tokens.append(fields[0])
        tags.append(fields[column])
    close()
    if empty_tokens:
        shown = ", ".join(map(str, empty_tokens[:5]))
        log.warning("%s: skipped %d line(s) holding a tag but no token (line %s%s); the "
                    "sentences keep their other tokens", path, len(empty_tokens), shown,
                    ", ..." if len(empty_tokens) > 5 else "")  # fmt: skip
    return pd.DataFrame(rows, index=pd.Index(index, name="line"), columns=["tokens", "tags"])


CONLLU_FIELDS = 10  # ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC
CONLLU_UPOS = 3


def parse_conllu(text: str, path: Path, tag_column: int = -1) -> pd.DataFrame:
    """Sentences of a CoNLL-U file (Universal Dependencies) as rows of ``tokens`` (the FORM
    field) and ``tags`` (UPOS, or the field ``tag_column`` names: 4 for XPOS).

    ``#`` comment lines are skipped, and so are multiword-token ranges (``1-2 Today's``: their
    words follow on their own lines) and empty nodes (``8.1``), as UD's own evaluation does.
    The index is the line number of each sentence's first word.

    Raises:
        UserError: naming the line, for a word line without the ten tab-separated fields;
            for a ``tag_column`` that is no field after FORM.
    """
    column = CONLLU_UPOS if tag_column < 0 else tag_column
    if not 1 <= column < CONLLU_FIELDS:
        raise UserError(
            f"data.tag_column {tag_column} names no tag field of a CoNLL-U file ({path}); use "
            "3 (UPOS, the default) or 4 (XPOS)"
        )
    rows: list[dict[str, list[str]]] = []
    index: list[int] = []
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if tokens:
                rows.append({"tokens": tokens, "tags": tags})
            tokens, tags = [], []
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != CONLLU_FIELDS:
            raise UserError(
                f"{path} line {number} has {len(fields)} tab-separated fields; a CoNLL-U word "
                f"line has {CONLLU_FIELDS} (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS "
                "MISC): fix the line"
            )
        if "-" in fields[0] or "." in fields[0]:  # a multiword range or an empty node
            continue
        if not tokens:
            index.append(number)
        tokens.append(fields[1])
        tags.append(fields[column])
    if tokens:
        rows.append({"tokens": tokens, "tags": tags})
    return pd.DataFrame(rows, index=pd.Index(index, name="line"), columns=["tokens", "tags"])


def format_conll(rows: list[dict[str, list[str]]]) -> str:
    """Rows of ``tokens`` and ``tags`` as CoNLL text (tab-separated, blank line between)."""
    blocks = (
        "\n".join(f"{t}\t{tag}" for t, tag in zip(row["tokens"], row["tags"], strict=True))
        for row in rows
    )
    return "\n\n".join(blocks) + "\n"
