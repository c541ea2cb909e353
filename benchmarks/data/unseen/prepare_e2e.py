"""Build a public generation set tunelab was never tuned on: E2E NLG (restaurant descriptions).

The E2E NLG Challenge data (Novikova, Dušek and Rieser, SIGDIAL 2017) pairs a meaning
representation of a restaurant (``name[The Vaults], eatType[pub], priceRange[more than £30],
...``) with several human-written descriptions of it. The GitHub repository holds the
development set (4,672 descriptions of 547 restaurants) and the test set with its references
(4,693 descriptions of 630 restaurants); its training set is a release download, out of reach
here. So:

- ``train.csv.gz`` / ``validation.csv.gz``: the development set, split by restaurant (every
  description of one meaning representation on one side; scikit-learn ``GroupShuffleSplit``,
  10% of the restaurants held out, ``random_state=0``), one row per description;
- ``test.csv.gz``: the test set, one row per restaurant, its first description as
  ``completion`` (what a single-reference metric compares against);
- ``test_references.csv.gz``: every test description (``prompt, reference``), for multi-
  reference BLEU and chrF as the challenge scored them.

Columns ``prompt, completion``: the prompt is ``"Describe this restaurant in a sentence or two:
"`` followed by the meaning representation unchanged; the completion is the description
unchanged. CSV files are gzipped at level 9 with a zero timestamp. The data is CC BY-SA 4.0,
so the files are committed, under the same licence.

How the raw files were obtained (no internet here; the ``fetch`` tool brings a public GitHub
repository's newest stored snapshot)::

    # fetch github:tuetschek/e2e-dataset (commit ab0d967dd5729ce455ef14ba9ffafc456a335264)
    cd /work/.mirror/tuetschek+e2e-dataset/repo
    git show HEAD:devset.csv > /tmp/e2e/devset.csv
    git show HEAD:testset_w_refs.csv > /tmp/e2e/testset_w_refs.csv

Usage::

    .venv/bin/python benchmarks/data/unseen/prepare_e2e.py --raw /tmp/e2e
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from prepare import write_splits  # this folder is on the path when run as a script
from sklearn.model_selection import GroupShuffleSplit

HERE = Path(__file__).resolve().parent
NAME = "e2e"
INSTRUCTION = "Describe this restaurant in a sentence or two: "
SOURCE = {
    "repository": "https://github.com/tuetschek/e2e-dataset",
    "paths": "`devset.csv`, `testset_w_refs.csv`",
    "origin": "Novikova, Dušek and Rieser, 'The E2E Dataset: New Challenges for End-to-End "
    "Generation', SIGDIAL 2017; https://arxiv.org/abs/1706.09254",
    "licence": "CC BY-SA 4.0; the files here are derived from it and shared under the same licence",
}


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"prompt": INSTRUCTION + frame["mr"], "completion": frame["ref"]})


def splits_of(development: pd.DataFrame, test: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Training and validation rows from the development set, split by restaurant; one test
    row per test restaurant; and every test reference."""
    splitter = GroupShuffleSplit(n_splits=1, test_size=0.1, random_state=0)
    train_at, validation_at = next(splitter.split(development, groups=development["mr"]))
    first = test.drop_duplicates("mr", keep="first")
    return {
        "train": _rows(development.iloc[train_at]),
        "validation": _rows(development.iloc[validation_at]),
        "test": _rows(first),
        "test_references": pd.DataFrame(
            {"prompt": INSTRUCTION + test["mr"], "reference": test["ref"]}
        ),
    }


def data_card(splits: dict[str, pd.DataFrame], commit: str) -> str:
    lines = [
        f"# {NAME}: E2E NLG, restaurant descriptions from meaning representations",
        "",
        "- **Language / task**: English; data-to-text generation (prompt → completion), "
        "several human references per input",
        f"- **Source repository**: {SOURCE['repository']}",
        f"- **Paths**: {SOURCE['paths']}",
        f"- **Commit**: `{commit}`",
        f"- **Original source**: {SOURCE['origin']}",
        f"- **Licence**: {SOURCE['licence']}",
        "- **Files**: `train.csv.gz`, `validation.csv.gz`, `test.csv.gz` (UTF-8 CSV, columns "
        "`prompt,completion`), `test_references.csv.gz` (`prompt,reference`: every test "
        "description)",
        "- **Built by**: `benchmarks/data/unseen/prepare_e2e.py` (the raw files and how they "
        "were fetched: its docstring)",
        "",
        "## Counts",
        "",
        "| file | rows | distinct prompts | mean words in the description |",
        "| --- | ---: | ---: | ---: |",
    ]
    for split, frame in splits.items():
        texts = frame["completion" if "completion" in frame else "reference"]
        words = texts.str.split().str.len().mean()
        lines.append(f"| {split} | {len(frame):,} | {frame['prompt'].nunique():,} | {words:.1f} |")
    lines += [
        "",
        "Training and validation come from the E2E development set (the training set is a "
        "release download, not in the repository), split by meaning representation with "
        "scikit-learn `GroupShuffleSplit(test_size=0.1, random_state=0)`; the test rows "
        "are the E2E test set, one per meaning representation with its first reference. "
        "Texts unchanged, no rows dropped.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw", type=Path, required=True,
                        help="folder holding devset.csv and testset_w_refs.csv")  # fmt: skip
    parser.add_argument("--commit", default="ab0d967dd5729ce455ef14ba9ffafc456a335264",
                        help="the fetched snapshot's commit")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    read = {"dtype": str, "keep_default_na": False}
    splits = splits_of(pd.read_csv(args.raw / "devset.csv", **read),
                       pd.read_csv(args.raw / "testset_w_refs.csv", **read))  # fmt: skip
    write_splits(args.out / NAME, splits, data_card(splits, args.commit), columns=None)


if __name__ == "__main__":
    main()
