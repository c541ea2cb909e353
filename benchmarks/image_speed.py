"""Images: tunelab's training and prediction speed against a plain ``transformers.Trainer``
script doing the same work, and peak memory as the training set grows 10x.

Data: scikit-learn's handwritten digits (``tunelab data example digits``: 1,437 training
images as 32x32 PNG files). Model: one randomly initialised ViT (4 layers, hidden 128,
patch 4), written once and loaded by both arms, so both start from the same weights.

- **tunelab**: ``tunelab train`` on the class folders with ``examples/digits.yaml``'s
  settings (batch 32, learning rate 1e-3, fp32, augmentation on), a fixed number of epochs;
  images/s is training images over the seconds of ``Trainer.train`` (which in tunelab also
  evaluates the validation images every epoch and saves the best checkpoint; what tunelab
  adds around it, the data doctor, baseline, test evaluation and report, is the wall time).
  Prediction: ``tunelab.predict`` on the test folder.
- **Trainer script**: what a careful user writes by hand: a ``datasets.Dataset`` of paths
  whose ``set_transform`` opens the images, applies the same random resized crop (60-100% of
  the area, aspect 3:4 to 4:3; no flips for digits) and runs the image processor per batch,
  ``Trainer`` with the same batch size, rate, warm-up, weight decay, epochs and precision, no
  evaluation or checkpoints; prediction with ``Trainer.predict`` on the test images.
- **Memory**: peak resident memory (``ru_maxrss``) of a process running ``tunelab train``
  for one epoch on the training images listed once and listed ten times (a CSV of paths).

Each arm runs in its own process (one CPU thread), so peak memory is per arm.

Usage::

    python benchmarks/image_speed.py [--epochs 10] [--threads 1]

Writes ``benchmarks/results/image_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from arms import peak_mb, run_child

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "image_speed.json"
BATCH, RATE = 32, 1e-3


def _files(folder: Path) -> list[tuple[str, str]]:
    return [(str(p), p.parent.name) for p in sorted(folder.rglob("*.png"))]


def arm_tunelab(work: Path, data: Path, model: Path, epochs: float, copies: int) -> dict[str, Any]:
    """``tunelab train`` (and predict) on the digits; ``copies`` > 1 lists the training
    images that many times in a CSV of paths."""
    import yaml

    import tunelab

    config = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text(encoding="utf-8"))
    train: Path = data / "train"
    if copies > 1:
        import pandas as pd

        rows = _files(data / "train") * copies
        train = data / f"train-x{copies}.csv"
        pd.DataFrame(rows, columns=["image", "label"]).to_csv(train, index=False)
    config.update(output=str(work / f"tunelab-x{copies}"))
    config["data"].update(
        train=str(train), validation=str(data / "validation"), test=str(data / "test")
    )
    config["model"] = {"name": str(model)}
    config["training"].update(epochs=epochs, early_stopping_patience=None)
    config["data"]["clean"] = {"drop_duplicates": False}  # the copies are the point here
    started = time.time()
    result = tunelab.train(config, overwrite=True)
    wall = time.time() - started
    metrics = result["metrics"]
    test_files = _files(data / "test")
    started = time.time()
    tunelab.predict(result["model_dir"], input=data / "test")
    predict_seconds = time.time() - started
    steps_images = len(_files(data / "train")) * copies * epochs
    seconds = metrics["train"]["optimizer_seconds"]  # Trainer.train, as the script times it
    return {
        "train_images": len(_files(data / "train")) * copies,
        "train_seconds": seconds,
        "train_images_per_s": round(steps_images / seconds, 1),
        "wall_seconds": round(wall, 1),
        "predict_images_per_s": round(len(test_files) / predict_seconds, 1),
        "test_accuracy": round(metrics["test"]["accuracy"], 4),
        "peak_rss_mb": peak_mb(),
    }


def arm_trainer(work: Path, data: Path, model_dir: Path, epochs: float) -> dict[str, Any]:
    """The hand-written Trainer script: same model, data, batch, rate, epochs, fp32."""
    import numpy as np
    import torch
    from datasets import Dataset
    from PIL import Image
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageClassification,
        Trainer,
        TrainingArguments,
    )

    train, test = _files(data / "train"), _files(data / "test")
    names = sorted({label for _, label in train}, key=int)
    processor = AutoImageProcessor.from_pretrained(model_dir)
    model = AutoModelForImageClassification.from_pretrained(
        model_dir, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)}, ignore_mismatched_sizes=True,
    )  # fmt: skip

    def crop(image: Any) -> Any:
        width, height = image.size
        area = width * height * random.uniform(0.6, 1.0)
        aspect = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = min(width, max(1, round(math.sqrt(area * aspect))))
        h = min(height, max(1, round(math.sqrt(area / aspect))))
        left, top = random.randint(0, width - w), random.randint(0, height - h)
        return image.resize((width, height), box=(left, top, left + w, top + h))

    def dataset(rows: list[tuple[str, str]], augment: bool) -> Dataset:
        table = Dataset.from_dict(
            {"path": [p for p, _ in rows], "labels": [names.index(c) for _, c in rows]}
        )

        def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
            images = [Image.open(p).convert("RGB") for p in batch["path"]]
            if augment:
                images = [crop(image) for image in images]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            return {"pixel_values": pixels, "labels": torch.tensor(batch["labels"])}

        table.set_transform(transform)
        return table

    args = TrainingArguments(
        output_dir=str(work / "trainer"), per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=64, learning_rate=RATE, num_train_epochs=epochs,
        eval_strategy="no", save_strategy="no", report_to="none", logging_steps=1000,
        remove_unused_columns=False, use_cpu=True, seed=42, warmup_steps=0.06,
        weight_decay=0.01,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=dataset(train, augment=True))
    started = time.time()
    trainer.train()
    seconds = time.time() - started
    started = time.time()
    predicted = trainer.predict(dataset(test, augment=False))
    predict_seconds = time.time() - started
    gold = np.array([names.index(c) for _, c in test])
    return {
        "train_images": len(train),
        "train_seconds": round(seconds, 2),
        "train_images_per_s": round(len(train) * epochs / seconds, 1),
        "predict_images_per_s": round(len(test) / predict_seconds, 1),
        "test_accuracy": round(float((predicted.predictions.argmax(-1) == gold).mean()), 4),
        "peak_rss_mb": peak_mb(),
    }


def _child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    work, data, model = Path(args.work), Path(args.work) / "digits", Path(args.work) / "vit"
    if args.child == "trainer":
        result = arm_trainer(work, data, model, args.epochs)
    else:
        result = arm_tunelab(work, data, model, args.epochs, int(args.child.split("x")[1]))
    print("RESULT " + json.dumps(result))


def _run_child(name: str, work: Path, epochs: float, threads: int) -> dict[str, Any]:
    return run_child(__file__, name, "--work", str(work), "--epochs", str(epochs),
                     "--threads", str(threads))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    from tunelab.data.examples import build_example
    from tunelab.models.scratch import save_scratch_vit

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_example("digits", work / "digits", 42)
        save_scratch_vit(work / "vit", 32, 4, layers=4, hidden=128, heads=4, seed=42)
        speed = {
            "Trainer script": _run_child("trainer", work, args.epochs, args.threads),
            "tunelab": _run_child("x1", work, args.epochs, args.threads),
        }
        memory = {
            "x1": _run_child("x1", work, 1, args.threads),
            "x10": _run_child("x10", work, 1, args.threads),
        }
    ours, theirs = speed["tunelab"], speed["Trainer script"]
    result = {
        "data": "digits (tunelab data example digits, seed 42)",
        "model": "random ViT, 4 layers, hidden 128, 32x32 pixels, patch 4 (same weights)",
        "settings": {
            "epochs": args.epochs,
            "threads": args.threads,
            "batch_size": BATCH,
            "learning_rate": RATE,
            "precision": "fp32",
        },
        "speed": speed,
        "ratios": {
            "train_images_per_s": round(
                ours["train_images_per_s"] / theirs["train_images_per_s"], 2
            ),
            "predict_images_per_s": round(
                ours["predict_images_per_s"] / theirs["predict_images_per_s"], 2
            ),
        },
        "memory_one_epoch": {
            k: {key: v[key] for key in ("train_images", "peak_rss_mb", "wall_seconds")}
            for k, v in memory.items()
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| arm | train images/s | predict images/s | test accuracy | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    for name, row in speed.items():
        print(f"| {name} | {row['train_images_per_s']} | {row['predict_images_per_s']} | "
              f"{row['test_accuracy']} | {row['peak_rss_mb']} |")  # fmt: skip
    for row in memory.values():
        print(f"| tunelab, 1 epoch, {row['train_images']} images | | | | {row['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
