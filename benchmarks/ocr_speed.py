"""Reading lines (image-to-text): tunelab's training and reading speed against a plain
``transformers.Trainer`` script doing the same work, and memory per image token.

Data: ``tunelab data example zh-ocr-lines`` (rendered People's Daily clauses, 32 px high).
Model: one randomly initialised scratch-ocr reader (ViT encoder, 4 layers, hidden 256, 32x320
pixels in 8x8 patches = 160 image tokens, under a 2-layer BERT decoder over the training
texts' characters), written once and loaded by both arms, so both start from the same weights.

- **tunelab**: ``tunelab train`` with ``examples/zh-ocr-lines.yaml``'s settings for a fixed
  number of epochs, no early stopping; images/s is training images over the seconds of
  ``Trainer.train`` (which in tunelab also computes the validation loss every epoch and saves
  the best checkpoint), with its default jitter of training images (shift, scale, contrast,
  blur) and again with ``image.augment: false`` (the script has none). Reading:
  ``tunelab.predict`` on the test images; CER from the run.
- **Trainer script**: what a careful user writes by hand: a ``datasets.Dataset`` of paths
  whose ``set_transform`` opens the images, pads each line with white to 32x320 (scaled to fit)
  and runs the image processor per batch, labels tokenised and padded with -100 per batch,
  ``Trainer`` with the same batch size, rate, warm-up, weight decay, epochs and precision, no
  evaluation or checkpoints; reading with ``model.generate`` in batches of 64.
- **Memory per image token**: peak resident memory (``ru_maxrss``) of a process training
  ``--memory-steps`` steps of tunelab on readers of 160, 320 and 640 pixels width (80, 160,
  320 image tokens); the slope over tokens x batch size is the memory one image token costs.

Each arm runs in its own process (``--threads`` CPU threads), so peak memory is per arm.

Usage::

    python benchmarks/ocr_speed.py [--epochs 2] [--threads 2] [--rows 2000]

Writes ``benchmarks/results/ocr_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from arms import peak_mb, run_child

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "ocr_speed.json"
BATCH, RATE, HEIGHT, WIDTH, PATCH = 32, 1e-3, 32, 320, 8


def _config(work: Path, data: Path, model: Path, epochs: float, rows: int) -> dict[str, Any]:
    import pandas as pd
    import yaml

    config = yaml.safe_load((ROOT / "examples" / "zh-ocr-lines.yaml").read_text("utf-8"))
    train = pd.read_csv(data / "train.csv").iloc[:rows]
    train.to_csv(data / f"train-{rows}.csv", index=False)
    config.update(output=str(work / f"tunelab-{model.name}"))
    config["data"].update(
        train=str(data / f"train-{rows}.csv"), validation=str(data / "validation.csv"),
        test=str(data / "test.csv"),
    )  # fmt: skip
    config["model"] = {"name": str(model)}
    config["training"].update(epochs=epochs, early_stopping_patience=None, logging_steps=1000)
    return config


def arm_tunelab(
    work: Path, data: Path, model: Path, epochs: float, rows: int, augment: bool = True
) -> dict[str, Any]:
    """``tunelab train`` (and predict) on the first ``rows`` training lines; without
    ``augment``, no jitter of the training images (the script has none)."""
    import pandas as pd

    import tunelab

    config = _config(work, data, model, epochs, rows)
    config.setdefault("image", {})["augment"] = augment
    started = time.time()
    result = tunelab.train(config, overwrite=True)
    wall = time.time() - started
    metrics = result["metrics"]
    test = pd.read_csv(data / "test.csv")
    paths = [str(data / p) for p in test["image"]]
    started = time.time()
    tunelab.predict(result["model_dir"], texts=paths)
    read_seconds = time.time() - started
    seconds = metrics["train"]["optimizer_seconds"]  # Trainer.train, as the script times it
    return {
        "train_images": rows,
        "train_seconds": round(seconds, 2),
        "train_images_per_s": round(rows * epochs / seconds, 1),
        "wall_seconds": round(wall, 1),
        "read_images_per_s": round(len(paths) / read_seconds, 1),
        "test_cer": round(metrics["test"]["cer"], 4),
        "test_exact_match": round(metrics["test"]["exact_match"], 4),
        "peak_rss_mb": peak_mb(),
    }


def arm_trainer(
    work: Path, data: Path, model_dir: Path, epochs: float, rows: int
) -> dict[str, Any]:
    """The hand-written Trainer script: same model, data, batch, rate, epochs, fp32."""
    import pandas as pd
    import torch
    from datasets import Dataset
    from PIL import Image
    from transformers import (
        AutoModelForImageTextToText,
        AutoProcessor,
        Trainer,
        TrainingArguments,
    )

    from tunelab.evaluation.reading import reading_metrics

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    tokenizer = processor.tokenizer
    train = pd.read_csv(data / "train.csv").iloc[:rows]
    test = pd.read_csv(data / "test.csv")

    def padded(path: str) -> Any:
        image = Image.open(data / path).convert("RGB")
        scale = min(HEIGHT / image.height, WIDTH / image.width)
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        )
        canvas = Image.new("RGB", (WIDTH, HEIGHT), "white")
        canvas.paste(image, (0, (HEIGHT - image.height) // 2))
        return canvas

    def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
        pixels = processor.image_processor(
            images=[padded(p) for p in batch["image"]], return_tensors="pt"
        )["pixel_values"]
        ids = [row[1:] for row in tokenizer(batch["text"])["input_ids"]]  # [CLS] is the start
        width = max(len(row) for row in ids)
        labels = torch.tensor([row + [-100] * (width - len(row)) for row in ids])
        return {"pixel_values": pixels, "labels": labels}

    dataset = Dataset.from_dict({"image": train["image"].tolist(), "text": train["text"].tolist()})
    dataset.set_transform(transform)

    def collate(rows_: list[dict[str, Any]]) -> dict[str, Any]:
        width = max(len(r["labels"]) for r in rows_)
        labels = [torch.cat([r["labels"], torch.full((width - len(r["labels"]),), -100)])
                  for r in rows_]  # fmt: skip
        return {"pixel_values": torch.stack([r["pixel_values"] for r in rows_]),
                "labels": torch.stack(labels)}  # fmt: skip

    args = TrainingArguments(
        output_dir=str(work / "trainer"), per_device_train_batch_size=BATCH,
        learning_rate=RATE, num_train_epochs=epochs, eval_strategy="no", save_strategy="no",
        report_to="none", logging_steps=1000, remove_unused_columns=False, use_cpu=True,
        seed=42, warmup_steps=0.06, weight_decay=0.01,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collate)
    started = time.time()
    trainer.train()
    seconds = time.time() - started
    model.eval()
    outputs: list[str] = []
    started = time.time()
    with torch.inference_mode():
        for start in range(0, len(test), 64):
            chunk = test["image"].iloc[start : start + 64].tolist()
            pixels = processor.image_processor(
                images=[padded(p) for p in chunk], return_tensors="pt"
            )["pixel_values"]
            generated = model.generate(pixel_values=pixels, max_new_tokens=24)
            outputs += ["".join(t.split()) for t in
                        tokenizer.batch_decode(generated, skip_special_tokens=True)]  # fmt: skip
    read_seconds = time.time() - started
    scores = reading_metrics(outputs, test["text"].tolist())
    return {
        "train_images": rows,
        "train_seconds": round(seconds, 2),
        "train_images_per_s": round(rows * epochs / seconds, 1),
        "read_images_per_s": round(len(test) / read_seconds, 1),
        "test_cer": round(scores["cer"], 4),
        "test_exact_match": round(scores["exact_match"], 4),
        "peak_rss_mb": peak_mb(),
    }


def arm_memory(work: Path, data: Path, model: Path, steps: int) -> dict[str, Any]:
    """Peak memory of ``steps`` training steps of tunelab with this reader."""
    import tunelab

    config = _config(work, data, model, 1, steps * BATCH)
    config["data"].pop("validation")
    config["data"].pop("test")
    tunelab.train(config, overwrite=True)
    return {"peak_rss_mb": peak_mb()}


def _child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    data, model = work / "zh-ocr-lines", work / args.model
    if args.child == "trainer":
        result = arm_trainer(work, data, model, args.epochs, args.rows)
    elif args.child == "memory":
        result = arm_memory(work, data, model, args.memory_steps)
    elif args.child == "tunelab-no-augment":
        result = arm_tunelab(work, data, model, args.epochs, args.rows, augment=False)
    else:
        result = arm_tunelab(work, data, model, args.epochs, args.rows)
    print("RESULT " + json.dumps(result))


def _run_child(name: str, model: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    options = ["--work", str(work), "--model", model, "--epochs", str(args.epochs),
               "--threads", str(args.threads), "--rows", str(args.rows),
               "--memory-steps", str(args.memory_steps)]  # fmt: skip
    return run_child(__file__, name, *options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--memory-steps", type=int, default=6)
    parser.add_argument("--data", default=None, help="a built zh-ocr-lines folder to reuse")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="reader-320", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    import shutil

    import pandas as pd

    from tunelab.data.examples import build_example
    from tunelab.models.scratch import save_scratch_ocr

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.data:
            shutil.copytree(args.data, work / "zh-ocr-lines")
        else:
            build_example("zh-ocr-lines", work / "zh-ocr-lines", 42)
        texts = pd.read_csv(work / "zh-ocr-lines" / "train.csv")["text"].astype(str).tolist()
        for width in (160, 320, 640):
            save_scratch_ocr(texts, work / f"reader-{width}", HEIGHT, width, PATCH, 4, 256, 4, 2,
                             24, seed=42)  # fmt: skip
        speed = {
            "Trainer script": _run_child("trainer", "reader-320", work, args),
            "tunelab": _run_child("tunelab", "reader-320", work, args),
            "tunelab, augment off": _run_child("tunelab-no-augment", "reader-320", work, args),
        }
        memory = {
            width: _run_child("memory", f"reader-{width}", work, args)["peak_rss_mb"]
            for width in (160, 320, 640)
        }
    tokens = {width: (HEIGHT // PATCH) * (width // PATCH) for width in memory}
    slope_mb = (memory[640] - memory[160]) / ((tokens[640] - tokens[160]) * BATCH)
    ours, theirs = speed["tunelab"], speed["Trainer script"]
    result = {
        "data": f"zh-ocr-lines (tunelab data example zh-ocr-lines, seed 42), first {args.rows} "
        "training lines, all test lines",
        "model": "scratch-ocr: random ViT 4 layers hidden 256, 32x320 px, patch 8 (160 image "
        "tokens), 2-layer BERT decoder (same weights in both arms)",
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
            "read_images_per_s": round(ours["read_images_per_s"] / theirs["read_images_per_s"], 2),
        },
        "memory": {
            "steps": args.memory_steps,
            "peak_rss_mb_by_image_tokens": {str(tokens[w]): memory[w] for w in memory},
            "kb_per_image_token_in_a_batch": round(slope_mb * 1024, 1),
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| arm | train images/s | read images/s | test CER | exact match | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in speed.items():
        cells = [row[key] for key in ("train_images_per_s", "read_images_per_s", "test_cer",
                                      "test_exact_match", "peak_rss_mb")]  # fmt: skip
        print(f"| {name} | " + " | ".join(map(str, cells)) + " |")
    print(f"memory: {result['memory']}")


if __name__ == "__main__":
    main()
