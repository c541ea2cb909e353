"""Few-shot (SetFit-style) vs. plain fine-tuning on the same few examples per class.

On zh-sentiment with the zh-bert-mini starter: 8, 16 and 32 examples per class, drawn with
seeds 0 to 4 (``data.train_per_class``), scored on the full test split. Plain fine-tuning
gets 20 epochs at the starter's best rate (at 16 per class that is 40 updates); few-shot
gets 20 rounds of contrastive pairs and a logistic-regression head (its C chosen by
cross-validation). Neither sees a validation set (there is none with 16 examples).

Usage::

    python benchmarks/few_shot.py [--shots 8,16,32] [--seeds 5] [--threads 1]

Writes ``benchmarks/results/few_shot.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = ROOT / "runs" / "benchmarks" / "few_shot"
COMMON = ["data.validation=null", "data.split.validation=0", "training.batch_size=16"]
ARMS = {
    "plain fine-tuning": ["training.method=full", "training.learning_rate=5e-4",
                          "training.epochs=20"],
    "few-shot": ["training.method=few-shot", "training.learning_rate=1e-4",
                 "few_shot.pair_rounds=20"],
}  # fmt: skip


def run(arm: str, shots: int, seed: int, threads: int) -> dict:
    """One training run in its own process; its test metrics and wall time."""
    out = WORK / f"{arm.split()[0]}-{shots}-{seed}"
    settings = [*COMMON, *ARMS[arm], f"data.train_per_class={shots}", f"seed={seed}"]
    settings.append(f"training.threads={threads}")
    command = [
        sys.executable, "-m", "tunelab.cli", "train", str(ROOT / "examples" / "zh-sentiment.yaml"),
        "--output", str(out), "--overwrite", *[a for s in settings for a in ("--set", s)],
    ]  # fmt: skip
    started = time.time()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"accuracy": metrics["test"]["accuracy"], "seconds": round(time.time() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", default="8,16,32")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    results = []
    for shots in [int(s) for s in args.shots.split(",")]:
        for arm in ARMS:
            runs = [run(arm, shots, seed, args.threads) for seed in range(args.seeds)]
            accuracies = [r["accuracy"] for r in runs]
            results.append(
                {
                    "per_class": shots,
                    "arm": arm,
                    "accuracies": accuracies,
                    "mean": statistics.mean(accuracies),
                    "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                    "seconds_per_run": statistics.mean(r["seconds"] for r in runs),
                }
            )
            print(json.dumps(results[-1]), flush=True)
            # after every arm, so a long benchmark that is stopped keeps what it finished
            (HERE / "results" / "few_shot.json").write_text(
                json.dumps({"model": "zh-bert-mini", "data": "zh-sentiment", "arms": ARMS,
                            "results": results}, indent=2) + "\n"
            )  # fmt: skip
    print("| examples per class | plain fine-tuning | few-shot | difference |")
    print("|---:|---:|---:|---:|")
    for plain, few in zip(results[::2], results[1::2], strict=False):
        print(
            f"| {plain['per_class']} | {plain['mean']:.3f} ± {plain['std']:.3f} | "
            f"{few['mean']:.3f} ± {few['std']:.3f} | {few['mean'] - plain['mean']:+.3f} |"
        )


if __name__ == "__main__":
    main()
