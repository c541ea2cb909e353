"""Build a public multi-label set tunelab was never tuned on: GoEmotions, Ekman's labels.

GoEmotions (Demszky et al., ACL 2020) is 58k English Reddit comments, each with one or more
of 27 emotions or neutral; the copy used here groups them into Ekman's six basic emotions
plus neutral (anger, disgust, fear, joy, neutral, sadness, surprise), as monologg's
GoEmotions-pytorch ships it: headerless TSV lines ``text<TAB>label ids, comma-separated
<TAB>comment id`` with the official train/dev/test split.

Written to ``<out>/goemotions_ekman/{train,validation,test}.csv.gz`` with a header
``text,labels,id``: the label ids become their names, joined with commas in the file's own
order (``joy,surprise``), as a person writes several labels in one spreadsheet cell; the
comment id stays as a column a user's file would carry. Texts are kept as they are
(``[NAME]`` and ``[RELIGION]`` are the authors' masks). Sizes: a seeded random sample
(``random_state=0``) of 5,000 official train rows, 500 dev rows and 2,000 test rows, so the
plain command runs in minutes on two CPU cores; random rather than stratified, since a row
holds a set of labels. CSV files are gzipped at level 9 with a zero timestamp.

How the raw files were obtained (no internet here; the ``fetch`` tool brings a public GitHub
repository's newest stored snapshot)::

    # fetch github:monologg/GoEmotions-pytorch
    #   (commit b75f9d3a8b76bc1060687925b04ca98a1b8ea66b; Apache-2.0)
    G=/work/.mirror/monologg+GoEmotions-pytorch/repo
    for s in train dev test labels; do
        git --git-dir=$G show HEAD:data/ekman/$s.$([ $s = labels ] && echo txt || echo tsv) \\
            > /tmp/raw/goemotions/$s.$([ $s = labels ] && echo txt || echo tsv)
    done

Usage::

    .venv/bin/python benchmarks/data/unseen/prepare_goemotions.py --raw /tmp/raw/goemotions
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandas as pd
from prepare import write_gzip_csv  # this folder is on the path when run as a script

HERE = Path(__file__).resolve().parent
NAME = "goemotions_ekman"
SIZES = {"train": ("train", 5000), "validation": ("dev", 500), "test": ("test", 2000)}
SOURCE = {
    "repository": "https://github.com/monologg/GoEmotions-pytorch",
    "commit": "b75f9d3a8b76bc1060687925b04ca98a1b8ea66b",
    "path": "data/ekman/{train,dev,test}.tsv, data/ekman/labels.txt",
    "origin": "Demszky et al., 'GoEmotions: A Dataset of Fine-Grained Emotions', ACL 2020; "
    "https://github.com/google-research/google-research/tree/master/goemotions "
    "(the Ekman grouping is the paper's; monologg's repository applies it)",
    "licence": "Apache-2.0 (monologg's repository; GoEmotions itself is released by Google "
    "Research under Apache-2.0 in google-research/google-research)",
}


def read_split(path: Path, names: list[str]) -> pd.DataFrame:
    """One headerless TSV of ``text, label ids, id`` as ``text, labels, id`` with names."""
    frame = pd.read_csv(path, sep="\t", header=None, names=["text", "ids", "id"], dtype=str,
                        quoting=csv.QUOTE_NONE, keep_default_na=False)  # fmt: skip
    labels = frame["ids"].map(lambda ids: ",".join(names[int(i)] for i in ids.split(",")))
    return pd.DataFrame({"text": frame["text"], "labels": labels, "id": frame["id"]})


def data_card(splits: dict[str, pd.DataFrame], raw_rows: dict[str, int], names: list[str]) -> str:
    total = pd.concat(splits.values())
    lines = [
        f"# {NAME}: GoEmotions, Ekman's six emotions + neutral (multi-label)",
        "",
        "- **Language / task**: English; emotions of Reddit comments, one or more labels a row",
        f"- **Source repository**: {SOURCE['repository']}",
        f"- **Path**: `{SOURCE['path']}`",
        f"- **Commit**: `{SOURCE['commit']}`",
        f"- **Original source**: {SOURCE['origin']}",
        f"- **Licence**: {SOURCE['licence']}",
        "- **Labels**: label ids replaced by their names, several joined with `,` (`joy,surprise`)",
        "- **Files**: `train.csv.gz`, `validation.csv.gz`, `test.csv.gz` (UTF-8 CSV, columns "
        "`text,labels,id`)",
        "- **Built by**: `benchmarks/data/unseen/prepare_goemotions.py` (raw files and how "
        "they were fetched: its docstring)",
        "",
        "## Counts (rows carrying each label)",
        "",
        "| label | " + " | ".join(splits) + " | all |",
        "| --- | " + " | ".join("---:" for _ in splits) + " | ---: |",
    ]
    label_sets = {split: f["labels"].str.split(",") for split, f in splits.items()}
    for name in names:
        counts = [sum(name in labels for labels in sets) for sets in label_sets.values()]
        row = " | ".join(f"{c:,}" for c in counts)
        lines.append(f"| {name} | {row} | {sum(counts):,} |")
    several = [int((f["labels"].str.count(",") > 0).sum()) for f in splits.values()]
    lines.append("| *rows with several labels* | " + " | ".join(f"{c:,}" for c in several)
                 + f" | {sum(several):,} |")  # fmt: skip
    lines.append("| **rows** | " + " | ".join(f"**{len(f):,}**" for f in splits.values())
                 + f" | **{len(total):,}** |")  # fmt: skip
    official = ", ".join(f"{SIZES[s][0]} {raw_rows[s]:,}" for s in splits)
    lengths = total["text"].str.len()
    lines += [
        "",
        f"Official split sizes: {official}. Text length in characters: mean "
        f"{lengths.mean():.1f}, median {lengths.median():g}, max {lengths.max()}.",
        "",
        "## Sampling",
        "",
        "A seeded random sample (`random_state=0`) of each official split: "
        + ", ".join(f"{n:,} of {SIZES[s][0]}" for s, (_, n) in SIZES.items())
        + ". Texts are unchanged; no rows were dropped.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw", type=Path, required=True, help="folder of the raw files")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    names = (args.raw / "labels.txt").read_text(encoding="utf-8").split()
    folder = args.out / NAME
    folder.mkdir(parents=True, exist_ok=True)
    splits, raw_rows = {}, {}
    for split, (source, size) in SIZES.items():
        frame = read_split(args.raw / f"{source}.tsv", names)
        raw_rows[split] = len(frame)
        splits[split] = frame.sample(n=size, random_state=0).reset_index(drop=True)
        write_gzip_csv(splits[split], folder / f"{split}.csv.gz", columns=None)
    (folder / "DATA_CARD.md").write_text(data_card(splits, raw_rows, names), encoding="utf-8")
    print({split: len(frame) for split, frame in splits.items()}, "->", folder)


if __name__ == "__main__":
    main()
