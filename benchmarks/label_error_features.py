"""Which features let the doctor's quick model find flipped labels: characters, or words too.

The doctor's label-error search (``tunelab/data/label_noise.py``) feeds out-of-fold
probabilities of a quick TF-IDF model to cleanlab. On each set, a sample of up to 6,000
training rows gets 5% of its labels flipped to another class (three plantings, seeds 1-3),
and the search runs twice on the same rows:

- ``chars``: hashed character 1-3-grams alone;
- ``chars+words``: word 1-2-grams beside them (what the doctor adds where spaces mark words).

Reported per arm: the share of rows flagged, precision and recall of the flags against the
planted flips, and the share of planted flips among the top-k suspects (k = flips planted).

Usage::

    python benchmarks/label_error_features.py [--seeds 1,2,3]

Writes ``benchmarks/results/label_error_features.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "label_error_features.json"
SETS = {  # each a table with "text" and "label" columns
    "en-sst2": ROOT / "examples" / "data" / "en-sst2" / "train.csv.gz",
    "zh-sentiment": ROOT / "data" / "zh-sentiment" / "train.csv",
    "sms_spam": HERE / "data" / "unseen" / "sms_spam" / "train.csv.gz",
}


def planted_search(texts: pd.Series, labels: pd.Series, seed: int, words: bool) -> dict:
    """Flip 5% of ``labels`` (seeded) and score the search, with word features or without,
    against them."""
    from tunelab.data import label_noise

    rng = np.random.default_rng(seed)
    planted = rng.choice(len(labels), len(labels) // 20, replace=False)
    flipped = labels.copy()
    names = sorted(labels.unique())
    for i in planted:
        flipped.iloc[i] = next(n for n in rng.permutation(names) if n != flipped.iloc[i])
    doctors_features = label_noise._quick_features
    label_noise._quick_features = functools.partial(doctors_features, words=words)
    try:
        errors = label_noise.suspected_label_errors(texts, flipped)
    finally:
        label_noise._quick_features = doctors_features
    found, truth = set(errors["row"]), set(planted)
    top = set(errors["row"][: len(planted)])
    return {
        "flagged_share": round(len(found) / len(labels), 4),
        "precision": round(len(found & truth) / max(len(found), 1), 4),
        "recall": round(len(found & truth) / len(truth), 4),
        "top_k_share": round(len(top & truth) / len(truth), 4),
    }


def main() -> None:
    from tunelab.data import label_noise

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {"seeds": seeds, "flipped_share": 0.05, "sets": {}}
    arms = {"chars": False, "chars+words": True}
    for name, path in SETS.items():
        if not path.exists():
            print(f"{name}: {path} missing, skipped")
            continue
        frame = pd.read_csv(path)
        frame = frame.sample(min(6000, len(frame)), random_state=0).reset_index(drop=True)
        texts, labels = frame["text"].astype(str), frame["label"].astype(str)
        found = {arm: [planted_search(texts, labels, seed, words) for seed in seeds]
                 for arm, words in arms.items()}  # fmt: skip
        results["sets"][name] = {
            "rows": len(frame),
            "spaced_words": label_noise.spaced_words(texts.tolist()),
            "runs": found,
        }
        print(name, json.dumps(found), flush=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("| set | features | flagged | precision | recall | flips among top-k |")
    print("|---|---|---:|---:|---:|---:|")
    for name, found in results["sets"].items():
        for arm, runs in found["runs"].items():
            means = {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
            print(f"| {name} | {arm} | {means['flagged_share']:.3f} | {means['precision']:.3f} | "
                  f"{means['recall']:.3f} | {means['top_k_share']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
