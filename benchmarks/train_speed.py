"""Training speed: `tunelab train` vs. a tutorial-style Trainer script vs. a best-practice one.

All three fine-tune the same initial model on the same zh-sentiment data for the same
epochs and learning rate, each in its own process (so peak memory is its own), and are
scored on the same test set:

- tutorial: ``tokenizer(..., padding="max_length", truncation=True)`` and
  ``TrainingArguments`` defaults (batch 8, fp32, random order), as most fine-tuning
  tutorials show it;
- best practice: dynamic padding (``DataCollatorWithPadding``), ``group_by_length``,
  batch 32, fp32;
- tunelab: ``tunelab.train`` with its defaults (dynamic padding, length-grouped batches,
  ``max_length`` from the data, bf16 autocast where the CPU has bf16 units).

Usage::

    python benchmarks/train_speed.py [--model PATH] [--train-rows N] [--epochs E]

Writes ``benchmarks/results/train_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data" / "zh-sentiment"
SETUPS = ("tutorial", "best_practice", "tunelab")


def _frames(train_rows: int | None):
    import pandas as pd

    train = pd.read_csv(DATA / "train.csv")
    if train_rows:
        train = train.sample(n=min(train_rows, len(train)), random_state=0)
    return train, pd.read_csv(DATA / "validation.csv"), pd.read_csv(DATA / "test.csv")


def _plain_trainer(setup: str, model_dir: str, args: argparse.Namespace) -> dict:
    import numpy as np
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    train, _, test = _frames(args.train_rows)
    labels = sorted(train["label"].unique())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    set_seed(42)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels))
    )

    def encode(frame):
        ids = frame["label"].map({name: i for i, name in enumerate(labels)}).tolist()
        dataset = Dataset.from_dict({"text": frame["text"].tolist(), "label": ids})
        if setup == "tutorial":
            tokenize = lambda b: tokenizer(b["text"], padding="max_length", truncation=True)  # noqa: E731
        else:
            tokenize = lambda b: tokenizer(b["text"], truncation=True)  # noqa: E731
        return dataset.map(tokenize, batched=True, remove_columns=["text"])

    started = time.perf_counter()
    train_ds, test_ds = encode(train), encode(test)
    common = {
        "output_dir": tempfile.mkdtemp(),
        "num_train_epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 42,
    }
    if setup == "best_practice":
        common.update(
            per_device_train_batch_size=32,
            per_device_eval_batch_size=64,
            train_sampling_strategy="group_by_length",
        )
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**common),
        train_dataset=train_ds,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    output = trainer.train()
    train_seconds = time.perf_counter() - started
    logits = trainer.predict(test_ds).predictions
    accuracy = float((np.argmax(logits, axis=-1) == np.array(test_ds["label"])).mean())
    return {
        "samples_per_second": output.metrics["train_samples_per_second"],
        "train_seconds": train_seconds,
        "test_accuracy": accuracy,
    }


def _tunelab(model_dir: str, args: argparse.Namespace) -> dict:
    import tunelab

    out = Path(tempfile.mkdtemp())
    train, _, test = _frames(args.train_rows)
    # No validation set: the plain Trainers evaluate nothing while training either, and the
    # Trainer counts evaluation time into its samples/s.
    for name, frame in (("train", train), ("test", test)):
        frame.to_csv(out / f"{name}.csv", index=False)
    started = time.perf_counter()
    result = tunelab.train(
        {
            "output": str(out / "run"),
            "data": {
                "train": str(out / "train.csv"),
                "test": str(out / "test.csv"),
                "split": {"validation": 0},
            },
            "model": {"name": model_dir},
            "training": {
                "epochs": args.epochs,
                "learning_rate": args.learning_rate,
                "early_stopping_patience": None,
            },
        }
    )
    return {
        "samples_per_second": result["metrics"]["train"]["samples_per_second"],
        "train_seconds": time.perf_counter() - started,
        "test_accuracy": result["metrics"]["test"]["accuracy"],
        "note": "wall time includes checkpoints, the test evaluation and the saved run",
    }


def run_one(setup: str, model_dir: str, args: argparse.Namespace) -> dict:
    """Train one setup in this process and report speed, accuracy and peak memory."""
    import torch

    torch.manual_seed(0)
    result = (
        _tunelab(model_dir, args) if setup == "tunelab" else _plain_trainer(setup, model_dir, args)
    )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="initial model folder (default: a fresh scratch BERT)")
    parser.add_argument("--train-rows", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--setup", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.setup:  # child process: one setup, JSON on the last line
        print(json.dumps(run_one(args.setup, args.model, args)))
        return

    if not (DATA / "train.csv").is_file():
        from tunelab.data.examples import build_example

        build_example("zh-sentiment", DATA)
    model_dir = args.model
    if model_dir is None:
        import pandas as pd

        from tunelab.models.scratch import save_scratch_bert

        texts = pd.read_csv(DATA / "train.csv")["text"].tolist()
        model_dir = str(save_scratch_bert(texts, Path(tempfile.mkdtemp()), 2, 128, 2, min_count=2))
    results = {}
    for setup in SETUPS:
        command = [
            sys.executable, __file__, "--setup", setup, "--model", model_dir,
            "--epochs", str(args.epochs), "--learning-rate", str(args.learning_rate),
        ]  # fmt: skip
        if args.train_rows:
            command += ["--train-rows", str(args.train_rows)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[setup] = json.loads(done.stdout.strip().splitlines()[-1])
        print(setup, results[setup], file=sys.stderr)

    base = results["tutorial"]
    rows = [
        "| setup | samples/s | wall time (s) | peak RSS (MB) | test accuracy | speed vs tutorial |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for setup, r in results.items():
        rows.append(
            f"| {setup} | {r['samples_per_second']:.1f} | {r['train_seconds']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['test_accuracy']:.4f} | "
            f"{r['samples_per_second'] / base['samples_per_second']:.2f}x |"
        )
    ratio = (
        results["tunelab"]["samples_per_second"] / results["best_practice"]["samples_per_second"]
    )
    rows.append(f"\ntunelab vs best-practice Trainer: {ratio:.2f}x samples/s")
    print("\n".join(rows))
    out = HERE / "results" / "train_speed.json"
    out.parent.mkdir(exist_ok=True)
    settings = {"model": args.model or "scratch BERT 2x128", "epochs": args.epochs,
                "learning_rate": args.learning_rate, "train_rows": args.train_rows}  # fmt: skip
    out.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
