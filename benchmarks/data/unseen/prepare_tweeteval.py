"""Build three public English tweet-classification sets tunelab was never tuned on: TweetEval.

TweetEval (Barbieri et al., Findings of EMNLP 2020) unifies seven SemEval tweet tasks with
fixed train/validation/test splits. Three are used here, as a user gets them:

=================  ===============================================  =====================
name               task                                             rows train/val/test
=================  ===============================================  =====================
tweeteval_emotion  emotion (anger, joy, optimism, sadness)          3,257 / 374 / 1,421
tweeteval_irony    irony (irony, non_irony)                         2,862 / 955 / 784
tweeteval_hate     hate speech against immigrants and women         9,000 / 1,000 / 2,970
                   (hate, not-hate); SemEval-2019 HatEval
=================  ===============================================  =====================

Each is written to ``<out>/<name>/{train,validation,test}.csv.gz`` (UTF-8 CSV, columns
``text,label``; the label ids replaced by the names in the set's ``mapping.txt``) with a
``DATA_CARD.md``. Nothing is cleaned, deduplicated or dropped: the official files as they
are, line for line (a line's ends trimmed), so what the doctor finds is what the set holds.
HatEval is kept for what it shows: its test tweets were collected apart from its training
ones, and systems score far lower on test than on validation (the shared task's best
English system reached 0.651 macro-F1 on test, Basile et al. 2019).

How the raw files were obtained (no internet here; the ``fetch`` tool brings a public GitHub
repository's newest stored snapshot)::

    # fetch github:cardiffnlp/tweeteval (commit 4fbd22cd7842; no licence file)
    G=/work/.mirror/cardiffnlp+tweeteval/repo
    .venv/bin/python benchmarks/data/unseen/prepare_tweeteval.py --git-dir $G

The files are not committed: the repository has no licence, and the tweets are under
Twitter's terms (the benchmark's README asks users to cite the papers of each task).

Usage::

    .venv/bin/python benchmarks/data/unseen/prepare_tweeteval.py --git-dir REPO [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pandas as pd
from prepare import counts_table, write_splits  # this folder is on the path when run as a script

HERE = Path(__file__).resolve().parent
TASKS = {
    "tweeteval_emotion": ("emotion", "emotion of a tweet (4 classes)",
                          "SemEval-2018 Task 1 (Mohammad et al., 2018)"),
    "tweeteval_irony": ("irony", "irony in a tweet (2 classes)",
                        "SemEval-2018 Task 3 (Van Hee et al., 2018)"),
    "tweeteval_hate": ("hate", "hate speech against immigrants and women (2 classes)",
                       "SemEval-2019 Task 5, HatEval (Basile et al., 2019)"),
}  # fmt: skip
SPLITS = {"train": "train", "validation": "val", "test": "test"}
COMMIT = "4fbd22cd78421f05b1ecdb4fc5725bc7a7bd8f66"


def show(git_dir: Path, path: str) -> str:
    """One file of the repository snapshot, as text."""
    done = subprocess.run(["git", f"--git-dir={git_dir}", "show", f"HEAD:{path}"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def read_task(git_dir: Path, task: str) -> dict[str, pd.DataFrame]:
    """The three official splits of one TweetEval task, labels as their names."""
    names = {}
    for line in show(git_dir, f"datasets/{task}/mapping.txt").splitlines():
        if line.strip():
            number, name = line.split("\t")[:2]
            names[number.strip()] = name.strip()
    splits = {}
    for split, stem in SPLITS.items():
        texts = show(git_dir, f"datasets/{task}/{stem}_text.txt").splitlines()
        labels = show(git_dir, f"datasets/{task}/{stem}_labels.txt").splitlines()
        if len(texts) != len(labels):
            raise SystemExit(f"{task}/{stem}: {len(texts)} texts but {len(labels)} labels")
        splits[split] = pd.DataFrame({"text": [t.strip() for t in texts],
                                      "label": [names[x.strip()] for x in labels]})  # fmt: skip
    return splits


def data_card(name: str, splits: dict[str, pd.DataFrame]) -> str:
    task, what, origin = TASKS[name]
    lines = [
        f"# {name}: TweetEval {task}",
        "",
        f"- **Language / task**: English; {what}",
        "- **Source repository**: https://github.com/cardiffnlp/tweeteval",
        f"- **Path**: `datasets/{task}/{{train,val,test}}_{{text,labels}}.txt`, `mapping.txt`",
        f"- **Commit**: `{COMMIT}`",
        f"- **Original source**: {origin}, as unified by Barbieri et al., 'TweetEval: Unified "
        "Benchmark and Comparative Evaluation for Tweet Classification', Findings of EMNLP 2020",
        "- **Licence**: none stated (the repository has no licence file; tweets are under "
        "Twitter's terms): the prepared files are not committed",
        "- **Labels**: the ids replaced by the names in `mapping.txt`",
        "- **Files**: `train.csv.gz`, `validation.csv.gz`, `test.csv.gz` (UTF-8 CSV, columns "
        "`text,label`)",
        "- **Built by**: `benchmarks/data/unseen/prepare_tweeteval.py`",
        "",
        "## Counts",
        "",
        *counts_table(splits),
    ]
    lengths = pd.concat(splits.values())["text"].str.len()
    lines += [
        "",
        f"Text length in characters: mean {lengths.mean():.1f}, median {lengths.median():g}, "
        f"max {lengths.max()}. The official split, unchanged: no row cleaned, deduplicated or "
        "dropped (a line's ends trimmed).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--git-dir", type=Path, required=True, help="the fetched repository")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for name, (task, _, _) in TASKS.items():
        splits = read_task(args.git_dir, task)
        write_splits(args.out / name, splits, data_card(name, splits))


if __name__ == "__main__":
    main()
