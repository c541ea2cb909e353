"""Vision-language fine-tuning (image-text-to-text): tunelab's training speed against the
hand-written ``Trainer`` script of the usual SmolVLM recipe doing the same work, at equal
accuracy, and memory per image token.

Data: generated in code, so the answer is only in the image: noisy squares of six colours,
each in a chat "what colour is it?" -> the colour (1,200 training chats, 300 test), half as
OpenAI content parts, half as LLaMA-Factory's ``images`` + ``<image>``.
Model: one randomly initialised SmolVLM (Idefics3) built by ``tunelab.models.scratch_vlm``
(vision encoder 2 layers, hidden 128, 32x32 pixels in 4x4 patches, pixel shuffle by 2: 16
image tokens; Llama decoder 2 layers, hidden 128), written once and loaded by both arms.

- **tunelab**: ``tunelab train`` (task image-text-to-text, loss on the answers only, vision
  tower frozen), no early stopping; samples/s over the seconds of ``Trainer.train`` (which in
  tunelab also computes the validation loss every epoch and keeps the best checkpoint).
- **Trainer script**: the recipe of Hugging Face's SmolVLM fine-tuning notebook, written
  carefully: a ``datasets.Dataset`` of chats, a collator that renders each chat with
  ``processor.apply_chat_template``, runs the processor on the batch (dynamic padding) and
  masks padding and image tokens in the labels; the vision tower frozen the same way; the same
  batch size, rate, warm-up, weight decay, epochs, fp32; no evaluation or checkpoints. Its
  answers are generated the same way (greedy, from the question's turn).
- **Memory per image token**: peak resident memory of ``--memory-steps`` tunelab training
  steps with readers of 32, 64 and 128 pixels (16, 64, 256 image tokens per image); the slope
  over tokens x batch size is the memory one image token costs.

Each arm runs in its own process (``--threads`` CPU threads). Usage::

    python benchmarks/vlm_speed.py [--epochs 2] [--threads 2]

Writes ``benchmarks/results/vlm_speed.json`` and prints the figures.
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
RESULTS = HERE / "results" / "vlm_speed.json"
BATCH, RATE = 16, 3e-3
COLOURS = {
    "red": (220, 40, 40), "green": (40, 190, 40), "blue": (40, 40, 220),
    "yellow": (230, 220, 40), "purple": (150, 40, 180), "orange": (240, 140, 30),
}  # fmt: skip
QUESTION = "what colour is it?"


def make_data(folder: Path, train: int = 1200, test: int = 300) -> None:
    """The colour chats: ``train.jsonl``, ``validation.jsonl`` (100) and ``test.jsonl``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    count = 0
    for split, rows in (("train", train), ("validation", 100), ("test", test)):
        lines = []
        for _ in range(rows):
            name = list(COLOURS)[int(rng.integers(len(COLOURS)))]
            noise = rng.integers(-35, 35, (40, 40, 3))
            pixels = np.clip(np.array(COLOURS[name]) + noise, 0, 255).astype(np.uint8)
            path = f"img/{count}.png"
            Image.fromarray(pixels).save(folder / path)
            if count % 2:
                chat = {"messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": path}},
                    {"type": "text", "text": QUESTION}]},
                    {"role": "assistant", "content": name}]}  # fmt: skip
            else:
                chat = {"images": [path], "messages": [
                    {"role": "user", "content": "<image>" + QUESTION},
                    {"role": "assistant", "content": name}]}  # fmt: skip
            lines.append(json.dumps(chat))
            count += 1
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_model(folder: Path, image_size: int) -> Path:
    from tunelab.models.scratch_vlm import save_scratch_vlm

    return save_scratch_vlm([QUESTION, *COLOURS] * 50, folder, image_size=image_size,
                            patch_size=4, layers=2, hidden=128, heads=4, vision_layers=2,
                            vision_hidden=128, seed=0)  # fmt: skip


def _answers(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["messages"][-1]["content"] for line in lines]


def arm_tunelab(work: Path, model: Path, epochs: float, steps: int | None = None) -> dict:
    import tunelab

    data = work / "data"
    config = {
        "task": "image-text-to-text", "output": str(work / "tunelab-run"), "seed": 42,
        "data": {"train": str(data / "train.jsonl"), "validation": str(data / "validation.jsonl"),
                 "test": str(data / "test.jsonl")},
        "model": {"name": str(model)},
        "generation": {"max_new_tokens": 4},
        "training": {"epochs": epochs, "learning_rate": RATE, "batch_size": BATCH,
                     "early_stopping_patience": None, "logging_steps": 1000},
    }  # fmt: skip
    if steps is not None:  # the memory arm: a few steps, nothing evaluated
        config["data"] = {"train": config["data"]["train"]}
        config["training"]["max_steps"] = steps
    result = tunelab.train(config, overwrite=True)
    metrics = result["metrics"]
    if steps is not None:
        return {"peak_rss_mb": peak_mb()}
    seconds = metrics["train"]["optimizer_seconds"]
    return {"train_seconds": round(seconds, 2),
            "train_samples_per_s": round(1200 * epochs / seconds, 1),
            "test_exact_match": round(metrics["test"]["exact_match"], 4),
            "peak_rss_mb": peak_mb()}  # fmt: skip


def arm_trainer(work: Path, model_dir: Path, epochs: float) -> dict:
    """The SmolVLM notebook's recipe, written carefully (see the module)."""
    import torch
    from datasets import Dataset
    from PIL import Image
    from transformers import (
        AutoModelForImageTextToText,
        AutoProcessor,
        Trainer,
        TrainingArguments,
    )

    data = work / "data"
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    model.model.vision_model.requires_grad_(False)
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    pad = processor.tokenizer.pad_token_id

    def rows(split: str) -> list[dict[str, str]]:
        out = []
        for line in (data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            chat = json.loads(line)
            path = chat["images"][0] if "images" in chat else \
                chat["messages"][0]["content"][0]["image_url"]["url"]  # fmt: skip
            out.append({"image": str(data / path), "answer": chat["messages"][-1]["content"]})
        return out

    def conversation(answer: str | None) -> list[dict[str, Any]]:
        turns: list[dict[str, Any]] = [{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": QUESTION}]}]  # fmt: skip
        if answer is not None:
            turns.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return turns

    def collate(batch: list[dict[str, str]]) -> dict[str, Any]:
        texts = [processor.apply_chat_template(conversation(r["answer"]), tokenize=False)
                 for r in batch]  # fmt: skip
        images = [[Image.open(r["image"]).convert("RGB")] for r in batch]
        encoded = processor(text=texts, images=images, return_tensors="pt", padding=True)
        labels = encoded["input_ids"].clone()
        labels[labels == pad] = -100
        labels[labels == image_token] = -100
        encoded["labels"] = labels
        return dict(encoded)

    args = TrainingArguments(
        output_dir=str(work / "trainer"), per_device_train_batch_size=BATCH,
        learning_rate=RATE, num_train_epochs=epochs, eval_strategy="no", save_strategy="no",
        report_to="none", logging_steps=1000, remove_unused_columns=False, use_cpu=True,
        seed=42, warmup_steps=0.06, weight_decay=0.01,
    )  # fmt: skip
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows("train")),
                      data_collator=collate)  # fmt: skip
    started = time.time()
    trainer.train()
    seconds = time.time() - started
    model.eval()
    stop = [processor.tokenizer.convert_tokens_to_ids("<|im_end|>"),
            processor.tokenizer.eos_token_id]  # fmt: skip
    correct = 0
    test = rows("test")
    with torch.inference_mode():
        for row in test:
            text = processor.apply_chat_template(conversation(None), tokenize=False,
                                                 add_generation_prompt=True)  # fmt: skip
            inputs = processor(text=[text], images=[[Image.open(row["image"]).convert("RGB")]],
                               return_tensors="pt")  # fmt: skip
            generated = model.generate(**inputs, max_new_tokens=4, do_sample=False,
                                       eos_token_id=stop)  # fmt: skip
            answer = processor.decode(generated[0, inputs["input_ids"].shape[1]:],
                                      skip_special_tokens=True).strip()  # fmt: skip
            correct += answer == row["answer"]
    return {"train_seconds": round(seconds, 2),
            "train_samples_per_s": round(1200 * epochs / seconds, 1),
            "test_exact_match": round(correct / len(test), 4),
            "peak_rss_mb": peak_mb()}  # fmt: skip


def _child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    model = work / f"vlm-{args.size}"
    if args.child == "trainer":
        result = arm_trainer(work, model, args.epochs)
    elif args.child == "memory":
        result = arm_tunelab(work, model, 1, steps=args.memory_steps)
    else:
        result = arm_tunelab(work, model, args.epochs)
    print("RESULT " + json.dumps(result))


def _run_child(name: str, size: int, work: Path, args: argparse.Namespace) -> dict:
    return run_child(__file__, name, "--work", str(work), "--size", str(size),
                     "--epochs", str(args.epochs), "--threads", str(args.threads),
                     "--memory-steps", str(args.memory_steps))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-steps", type=int, default=8)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        make_data(work / "data")
        for size in (32, 64, 128):
            make_model(work / f"vlm-{size}", size)
        result: dict[str, Any] = {"epochs": args.epochs, "batch_size": BATCH,
                                  "learning_rate": RATE, "threads": args.threads}  # fmt: skip
        result["tunelab"] = _run_child("tunelab", 32, work, args)
        print("tunelab", result["tunelab"], flush=True)
        result["trainer_script"] = _run_child("trainer", 32, work, args)
        print("trainer script", result["trainer_script"], flush=True)
        ours, theirs = result["tunelab"], result["trainer_script"]
        result["speed_ratio"] = round(
            ours["train_samples_per_s"] / theirs["train_samples_per_s"], 2
        )
        memory = {}
        for size in (32, 64, 128):
            tokens = (size // 4 // 2) ** 2
            memory[tokens] = _run_child("memory", size, work, args)["peak_rss_mb"]
            print("memory", tokens, memory[tokens], flush=True)
        xs = [tokens * BATCH for tokens in memory]
        ys = list(memory.values())
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mean_x) ** 2 for x in xs
        )
        result["memory"] = {"image_tokens_per_image": list(memory),
                            "peak_rss_mb": list(memory.values()),
                            "mb_per_image_token_in_a_batch": round(slope, 4)}  # fmt: skip
    from results_file import write_results

    write_results(RESULTS, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
