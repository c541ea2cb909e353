"""Images: tunelab's image-classification (scratch-vit) vs. logistic regression on pixels.

On scikit-learn's handwritten digits (``tunelab data example digits``: 1,797 real 8x8 scans
as 32x32 PNG files in class folders, split 80/10/10 with seed 42), one seed, one CPU thread:

- ``tunelab train examples/digits.yaml``: a 4-layer ViT (hidden 128) trained from random
  weights, the best epoch by validation macro-F1;
- the baseline every run of the task fits beside it: logistic regression on each image shrunk
  to 16x16 RGB pixels (``ImageClassification.baseline_outputs``), on the same splits.

Usage::

    python benchmarks/image_digits.py [--epochs 30]

Writes ``benchmarks/results/image_digits.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

import tunelab
from tunelab.data.examples import build_example

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCORES = ("accuracy", "f1_macro")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=None, help="override training.epochs")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits"
        summary = build_example("digits", data, args.seed)
        config = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text(encoding="utf-8"))
        config["seed"] = args.seed
        config["output"] = str(Path(tmp) / "run")
        config["data"].update({s: str(data / s) for s in ("train", "validation", "test")})
        if args.epochs is not None:
            config["training"]["epochs"] = args.epochs
        started = time.time()
        result = tunelab.train(config)
        seconds = round(time.time() - started, 1)
        history = json.loads((Path(tmp) / "run" / "history.json").read_text(encoding="utf-8"))
    metrics = result["metrics"]
    rows = {
        "tunelab scratch-vit (4 layers, hidden 128)": {
            k: round(metrics["test"][k], 4) for k in SCORES
        },
        metrics["baseline"]["method"]: {
            k: round(metrics["baseline"]["test"][k], 4) for k in SCORES
        },
    }
    report = {
        "data": {"name": "digits", "rows": summary["rows"], "split_seed": args.seed},
        "config": config["model"] | {"training": config["training"], "image": config["image"]},
        "test": rows,
        "train": {
            "seconds_total": seconds,
            "steps": metrics["train"]["steps"],
            "samples_per_second": metrics["train"]["samples_per_second"],
            "epochs_run": max((h.get("epoch", 0) for h in history), default=None),
            "baseline_seconds": metrics["baseline"]["seconds"],
        },
        "warnings": metrics.get("warnings", []),
    }
    out = HERE / "results" / "image_digits.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"digits test split ({summary['rows']['test']} images), seed {args.seed}\n")
    print("| model | accuracy | macro-F1 |\n|---|---|---|")
    for name, scores in rows.items():
        print(f"| {name} | {scores['accuracy']:.4f} | {scores['f1_macro']:.4f} |")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
