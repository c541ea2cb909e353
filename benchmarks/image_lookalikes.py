"""Images: tunelab's image-classification (scratch-vit) vs. logistic regression on pixels, on
look-alike Chinese characters rendered from Debian's fonts.

``tunelab data example zh-lookalikes`` (24 characters such as 己/已/巳 and 未/末, 80 renderings
each in one of 11 faces of fonts-wqy-zenhei, fonts-arphic-ukai and fonts-arphic-uming, at a
random size, rotation, offset and weight, with blur and noise; 48x48 PNG files split 80/10/10
with seed 42, near-duplicate renderings kept in one split), one seed, one CPU thread:

- ``tunelab train examples/zh-lookalikes.yaml``: a 4-layer ViT (hidden 128, 48x48 pixels in
  6x6 patches) trained from random weights, the best epoch by validation macro-F1;
- the baseline every run of the task fits beside it: logistic regression on each image shrunk
  to 16x16 RGB pixels (``ImageClassification.baseline_outputs``), on the same splits;
- what the image doctor found in the data before training (``data_report.json``).

Usage::

    apt-get install -y fonts-wqy-zenhei fonts-arphic-ukai fonts-arphic-uming
    python benchmarks/image_lookalikes.py [--epochs 45]

Writes ``benchmarks/results/image_lookalikes.json`` and prints a Markdown table.
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


def _doctor_summary(data_report: dict) -> dict:
    """The image doctor's counts per split and between splits."""
    doctor = data_report["doctor"]
    return {
        "near_duplicates": {
            split: section.get("near_duplicates", {}).get("count", 0)
            for split, section in doctor["images"].items()
        },
        "leakage_near": {pair: leak["near"] for pair, leak in doctor["leakage"].items()},
        "seconds": doctor["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=None, help="override training.epochs")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "zh-lookalikes"
        started = time.time()
        summary = build_example("zh-lookalikes", data, args.seed)
        build_seconds = round(time.time() - started, 1)
        path = ROOT / "examples" / "zh-lookalikes.yaml"
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["seed"] = args.seed
        config["output"] = str(Path(tmp) / "run")
        config["data"].update({s: str(data / s) for s in ("train", "validation", "test")})
        if args.epochs is not None:
            config["training"]["epochs"] = args.epochs
        started = time.time()
        result = tunelab.train(config)
        seconds = round(time.time() - started, 1)
        run = Path(tmp) / "run"
        history = json.loads((run / "history.json").read_text(encoding="utf-8"))
        data_report = json.loads((run / "data_report.json").read_text(encoding="utf-8"))
    metrics = result["metrics"]
    rows = {
        "tunelab scratch-vit (4 layers, hidden 128, 48x48, patch 6)": {
            k: round(metrics["test"][k], 4) for k in SCORES
        },
        metrics["baseline"]["method"]: {
            k: round(metrics["baseline"]["test"][k], 4) for k in SCORES
        },
    }
    report = {
        "data": {
            "name": "zh-lookalikes",
            "rows": summary["rows"],
            "split_seed": args.seed,
            "packages": {p["package"]: p["version"] for p in summary["packages"]},
            "near_duplicate_groups": summary["near_duplicate_groups"],
            "build_seconds": build_seconds,
        },
        "doctor": _doctor_summary(data_report),
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
    out = HERE / "results" / "image_lookalikes.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"zh-lookalikes test split ({summary['rows']['test']} images), seed {args.seed}\n")
    print("| model | accuracy | macro-F1 |\n|---|---|---|")
    for name, scores in rows.items():
        print(f"| {name} | {scores['accuracy']:.4f} | {scores['f1_macro']:.4f} |")
    print(f"\ntraining {seconds:.0f} s; written to {out}")


if __name__ == "__main__":
    main()
