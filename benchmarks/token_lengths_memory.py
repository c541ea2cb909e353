"""What counting the training rows' token lengths costs in one tokenizer call and in chunks.

``tunelab train`` counts every training row's untruncated tokens to choose ``max_length``.
This counts the first 644,129 rows of ``data_scale.py``'s 1M-row file (the size of its
training split) with the zh-bert-mini tokenizer both ways, each in its own process, and
records the time and how far each raised the process's peak memory.

Usage::

    python benchmarks/data_scale.py --sizes 1000000   # writes the rows file, once
    python benchmarks/token_lengths_memory.py

Writes ``benchmarks/results/token_lengths_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from arms import peak_mb, run_child
from data_scale import ROOT, WORK

ROWS = 644_129
RESULTS = ROOT / "benchmarks" / "results" / "token_lengths_memory.json"
WAYS = ("one_call", "chunked")


def child(way: str) -> dict:
    import pandas as pd
    from transformers import AutoTokenizer

    from tunelab.config import RunConfig
    from tunelab.tasks import task_from_run_config
    from tunelab.tasks.arrow_rows import chunked_lengths

    frame = pd.read_csv(WORK / "rows-1000000.csv", nrows=ROWS)
    model = ROOT / "models" / "zh-bert-mini"
    config = RunConfig.model_validate(
        {"task": "text-classification", "data": {"train": "rows.csv"},
         "model": {"name": str(model)}}
    )  # fmt: skip
    task = task_from_run_config(config)
    tokenizer = AutoTokenizer.from_pretrained(model)
    before = peak_mb()
    started = time.perf_counter()
    if way == "one_call":
        lengths = task.token_lengths(frame, tokenizer)
    else:
        lengths = chunked_lengths(frame, lambda rows: task.token_lengths(rows, tokenizer))
    return {"rows": len(frame), "tokens": int(lengths.sum()),
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rise_mb": round(peak_mb() - before)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child)), flush=True)
        return
    results = {way: run_child(__file__, way) for way in WAYS}
    RESULTS.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
