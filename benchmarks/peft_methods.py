"""Full fine-tuning vs. parameter-efficient methods on zh-sentiment with the zh-bert-mini starter.

Each arm is one ``tunelab train`` process (so peak memory is that run's own), on the same
splits, epochs and length; arms differ only in ``peft.method`` and learning rate (adapters
want larger rates than full fine-tuning). Where a method has several rates, the one with the
best validation accuracy is reported; every arm is in the JSON.

Usage::

    python benchmarks/peft_methods.py [--epochs 2] [--threads 1]
    python benchmarks/peft_methods.py --speed-steps 150   # speed only, arms back to back

Writes ``benchmarks/results/peft_methods.json`` (``peft_speed.json`` for ``--speed-steps``)
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = ROOT / "runs" / "benchmarks" / "peft_methods"
# (name, peft.method, learning rate, extra overrides, run folder)
ARMS = [
    ("full", "none", 5e-4, [], "none-0.0005"),  # the best starter rate in pretraining_value.py
    ("lora r=8", "lora", 1e-3, ["peft.r=8", "peft.alpha=16"], "lora-0.001"),
    ("lora r=8", "lora", 3e-3, ["peft.r=8", "peft.alpha=16"], "lora-0.003"),
    # LoRA closes the gap more slowly than full fine-tuning: a third epoch, a larger rank
    ("lora r=16, 3 epochs", "lora", 1e-3, ["peft.r=16", "peft.alpha=32", "training.epochs=3"],
     "lora-r16-3ep"),
]  # fmt: skip


def run_arm(
    method: str,
    rate: float,
    extra: list[str],
    epochs: float,
    threads: int,
    folder: str,
    reuse: bool = False,
) -> dict:
    """Train one arm in its own process; return its metrics.json."""
    out = WORK / folder
    if reuse and (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    command = [
        sys.executable, "-m", "tunelab.cli", "train", str(ROOT / "examples" / "zh-sentiment.yaml"),
        "--output", str(out), "--overwrite",
        "--set", f"peft.method={method}", "--set", f"training.learning_rate={rate}",
        "--set", f"training.epochs={epochs}", "--set", f"training.threads={threads}",
        *[arg for item in extra for arg in ("--set", item)],
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep arms that finished before")
    parser.add_argument(
        "--speed-steps", type=int, default=0, help="only time this many steps of each method"
    )
    args = parser.parse_args()
    if args.speed_steps:
        speed(args.speed_steps, args.threads)
        return

    rows = []
    for name, method, rate, extra, folder in ARMS:
        metrics = run_arm(method, rate, extra, args.epochs, args.threads, folder, args.reuse)
        train = metrics["train"]
        rows.append(
            {
                "arm": name,
                "method": method,
                "learning_rate": rate,
                "trainable_parameters": train["trainable_parameters"],
                "trainable_share": train["trainable_share"],
                "validation_accuracy": metrics["validation"]["accuracy"],
                "test_accuracy": metrics["test"]["accuracy"],
                "test_f1_macro": metrics["test"]["f1_macro"],
                "train_seconds": train["optimizer_seconds"],
                "peak_memory_mb": train["peak_memory_mb"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    best = {}
    for row in rows:  # the rate with the best validation accuracy stands for its arm
        if (
            row["arm"] not in best
            or row["validation_accuracy"] > best[row["arm"]]["validation_accuracy"]
        ):
            best[row["arm"]] = row
    full = best["full"]
    result = {
        "data": "zh-sentiment (13,855 train / 1,732 validation / 1,733 test)",
        "model": "zh-bert-mini",
        "epochs": args.epochs,
        "threads": args.threads,
        "arms": rows,
        "chosen": list(best.values()),
    }
    (HERE / "results" / "peft_methods.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| method | trainable | share | lr | test accuracy | vs full | seconds | peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in best.values():
        print(
            f"| {row['arm']} | {row['trainable_parameters']:,} | {row['trainable_share']:.2%} | "
            f"{row['learning_rate']:g} | {row['test_accuracy']:.3f} | "
            f"{row['test_accuracy'] - full['test_accuracy']:+.3f} | {row['train_seconds']:.0f} | "
            f"{row['peak_memory_mb']:.0f} |"
        )


def speed(steps: int, threads: int) -> None:
    """Training throughput of each method over the same steps, run back to back."""
    rows = []
    for name, method, rate, extra, folder in ARMS:
        if any(r["arm"] == name for r in rows):
            continue
        steps_only = [*extra, f"training.max_steps={steps}"]
        metrics = run_arm(method, rate, steps_only, 1, threads, folder + "-speed")
        train = metrics["train"]
        rows.append(
            {
                "arm": name,
                "steps": train["steps"],
                "optimizer_seconds": train["optimizer_seconds"],
                "samples_per_second": train["samples_per_second"],
                "peak_memory_mb": train["peak_memory_mb"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    (HERE / "results" / "peft_speed.json").write_text(
        json.dumps({"steps": steps, "threads": threads, "arms": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
