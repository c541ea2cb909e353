"""Training steps on packed against padded batches, batch by batch, for ``PACK_FROM``.

MiniLM (the installed all-MiniLM-L6-v2) as tunelab trains it (bf16 autocast, tunelab's CPU
dropout masks, the last layer on the first token) takes the same batches, as tunelab's
sampler draws them (length-bucketed, labels mixed), once padded (``DataCollatorWithPadding``)
and once packed (``UnpaddedCollator``); each step is timed twice and the faster kept. Each
batch's padding factor (longest row x rows / real tokens) stands beside the two times, which
is how ``tunelab.models.unpadded.PACK_FROM`` was chosen.

Usage::

    python benchmarks/unpadded_steps.py [--data en-sst2,zh-sentiment] [--batches 16]

Writes ``benchmarks/results/unpadded_steps.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DATA = {  # training file, rows sampled, token limit (tunelab's 99th percentile on those rows)
    "en-sst2": (ROOT / "examples" / "data" / "en-sst2" / "train.csv.gz", 1000, 512),
    "zh-sentiment": (ROOT / "data" / "zh-sentiment" / "train.csv", 500, 305),
}
RESULTS = HERE / "results" / "unpadded_steps.json"


def steps(data: str, batches: int) -> list[dict]:
    """Padding factor and milliseconds a step, padded and packed, for each batch."""
    import pandas as pd
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
    )

    from tunelab.models import unpadded
    from tunelab.models.fast_dropout import fast_cpu_dropout
    from tunelab.models.load import resolve_model_source
    from tunelab.models.unpadded import UnpaddedCollator, use_unpadded_batches
    from tunelab.training.sampling import bucketed_batches

    path, rows, limit = DATA[data]
    source = resolve_model_source(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(source)
    frame = pd.read_csv(path).sample(n=rows, random_state=0)
    labels = sorted(frame["label"].astype(str).unique())
    encoded = tokenizer(frame["text"].astype(str).tolist(), truncation=True, max_length=limit)
    features = [
        {**{name: encoded[name][i] for name in encoded},
         "labels": labels.index(str(frame["label"].iloc[i]))}
        for i in range(rows)
    ]  # fmt: skip
    drawn = bucketed_batches(
        [len(row["input_ids"]) for row in features], 32,
        generator=torch.Generator().manual_seed(0), labels=frame["label"].tolist(),
    )[:batches]  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(labels), attn_implementation="sdpa"
    )
    fast_cpu_dropout(model)
    padded = DataCollatorWithPadding(tokenizer)
    packed = UnpaddedCollator(DataCollatorWithPadding(tokenizer), use_unpadded_batches(model))
    unpadded.PACK_FROM = 0.0  # every batch packed: the threshold is what is being chosen
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()

    def seconds(batch: dict) -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - started

    for indices in drawn[:2]:  # warm-up: the first steps of each kind set up their kernels
        chosen = [features[i] for i in indices]
        seconds(padded(chosen))
        seconds(packed(chosen))
    found = []
    for indices in drawn:
        chosen = [features[i] for i in indices]
        lengths = [len(row["input_ids"]) for row in chosen]
        pad = min(seconds(padded(chosen)), seconds(padded(chosen)))
        pack = min(seconds(packed(chosen)), seconds(packed(chosen)))
        found.append({
            "padding_factor": round(max(lengths) * len(lengths) / sum(lengths), 3),
            "longest": max(lengths), "padded_ms": round(1e3 * pad, 1),
            "packed_ms": round(1e3 * pack, 1), "speed_up": round(pad / pack, 3),
        })  # fmt: skip
        print(data, found[-1], flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="en-sst2,zh-sentiment")
    parser.add_argument("--batches", type=int, default=16)
    args = parser.parse_args()
    if not DATA["zh-sentiment"][0].is_file():
        from tunelab.data.examples import build_example

        build_example("zh-sentiment", DATA["zh-sentiment"][0].parent)
    results: dict = {"model": MODEL, "batch_size": 32, "precision": "bf16 autocast"}
    for data in args.data.split(","):
        found = steps(data, args.batches)
        below = [s["speed_up"] for s in found if s["padding_factor"] < 1.10]
        above = [s["speed_up"] for s in found if s["padding_factor"] >= 1.10]
        results[data] = {
            "steps": found,
            "speed_up_below_1.10": [min(below), statistics.mean(below), max(below)]
            if below else None,
            "speed_up_from_1.10": [min(above), statistics.mean(above), max(above)]
            if above else None,
        }  # fmt: skip
        print(data, "below 1.10 (min, mean, max):", results[data]["speed_up_below_1.10"],
              "from 1.10:", results[data]["speed_up_from_1.10"])  # fmt: skip
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
