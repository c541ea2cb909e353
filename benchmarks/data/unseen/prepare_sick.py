"""Build a public sentence-pair set tunelab was never tuned on: SICK (entailment, 3 classes).

SICK (Marelli et al., LREC 2014) holds 9,927 English sentence pairs, each with an entailment
judgment (ENTAILMENT, CONTRADICTION, NEUTRAL) and a relatedness score from 1 to 5; every
sentence occurs in several pairs. The copy used here is ``SICK.txt`` from
praguna/sick_dataset: tab-separated, columns ``pair_ID, sentence_A, sentence_B,
relatedness_score, entailment_judgment``, without SemEval's split column.

Written to ``<out>/sick/{train,validation,test}.csv.gz`` with every column kept (so the plain
command meets two columns that could be the labels and asks which), split 80/10/10 with
scikit-learn ``train_test_split`` (stratified by the entailment judgment, ``random_state=0``).
Texts are unchanged. CSV files are gzipped at level 9 with a zero timestamp.

How the raw file was obtained (no internet here; the ``fetch`` tool brings a public GitHub
repository's newest stored snapshot)::

    # fetch github:praguna/sick_dataset (commit a35d440f028175a4c774a19e9d6ef02c3a6f9e06)
    git --git-dir=/work/.mirror/praguna+sick_dataset/repo show HEAD:SICK.txt > /tmp/sick/SICK.txt

Usage::

    .venv/bin/python benchmarks/data/unseen/prepare_sick.py --raw /tmp/sick/SICK.txt
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandas as pd
from prepare import write_splits  # this folder is on the path when run as a script
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
NAME = "sick"
LABEL = "entailment_judgment"
SOURCE = {
    "repository": "https://github.com/praguna/sick_dataset",
    "path": "SICK.txt",
    "origin": "Marelli et al., 'A SICK cure for the evaluation of compositional distributional "
    "semantic models', LREC 2014; https://marcobaroni.org/composes/sick.html",
    "licence": "CC BY-NC-SA 3.0 (SICK's own terms: attribution, non-commercial, share-alike); "
    "the data files are not committed here",
}


def data_card(splits: dict[str, pd.DataFrame], commit: str) -> str:
    total = pd.concat(splits.values())
    lines = [
        f"# {NAME}: SICK, entailment between two sentences (3 classes)",
        "",
        "- **Language / task**: English; sentence-pair classification (entailment), with a "
        "1-5 relatedness score beside it",
        f"- **Source repository**: {SOURCE['repository']}",
        f"- **Path**: `{SOURCE['path']}`",
        f"- **Commit**: `{commit}`",
        f"- **Original source**: {SOURCE['origin']}",
        f"- **Licence**: {SOURCE['licence']}",
        "- **Files**: `train.csv.gz`, `validation.csv.gz`, `test.csv.gz` (UTF-8 CSV, columns "
        "`pair_ID,sentence_A,sentence_B,relatedness_score,entailment_judgment`)",
        "- **Built by**: `benchmarks/data/unseen/prepare_sick.py` (the raw file and how it was "
        "fetched: its docstring)",
        "",
        "## Counts",
        "",
        "| label | " + " | ".join(splits) + " | all |",
        "| --- | " + " | ".join("---:" for _ in splits) + " | ---: |",
    ]
    for label in sorted(total[LABEL].unique()):
        counts = [int((frame[LABEL] == label).sum()) for frame in splits.values()]
        row = " | ".join(f"{c:,}" for c in counts)
        lines.append(f"| {label} | {row} | {sum(counts):,} |")
    sizes = " | ".join(f"**{len(f):,}**" for f in splits.values())
    lines.append(f"| **total** | {sizes} | **{len(total):,}** |")
    sentences = pd.concat([total["sentence_A"], total["sentence_B"]])
    lines += [
        "",
        f"Distinct sentences: {sentences.nunique():,} in {len(sentences):,} sentence slots. "
        "Split 80/10/10 with scikit-learn `train_test_split`, stratified by "
        f"`{LABEL}`, `random_state=0`; texts unchanged, no rows dropped.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw", type=Path, required=True, help="SICK.txt")
    parser.add_argument(
        "--commit",
        default="a35d440f028175a4c774a19e9d6ef02c3a6f9e06",
        help="the fetched snapshot's commit",
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    frame = pd.read_csv(args.raw, sep="\t", dtype=str, keep_default_na=False,
                        quoting=csv.QUOTE_NONE)  # fmt: skip
    train, rest = train_test_split(frame, test_size=0.2, stratify=frame[LABEL], random_state=0)
    validation, test = train_test_split(rest, test_size=0.5, stratify=rest[LABEL], random_state=0)
    splits = {"train": train, "validation": validation, "test": test}
    write_splits(args.out / NAME, splits, data_card(splits, args.commit), columns=None)


if __name__ == "__main__":
    main()
