"""Counting a data set's tokens on one core and on every core (``tunelab.tokenizer_threads``).

The command line keeps fast tokenizers on one core (``TOKENIZERS_PARALLELISM=false``, so
forked children neither warn nor hang) and lifts that while a run tokenises its data. This
times what the lift is for: the text-classification task's counting pass (``measure``, which
``tunelab train`` runs on the training rows to choose ``max_length``) over the rows of
``benchmarks/data_scale.py``'s file, with the zh-bert-mini tokenizer, in a fresh process each
time, the two settings alternating.

Usage::

    python benchmarks/tokenizer_threads.py [--rows 100000] [--repeats 3]

Writes ``benchmarks/results/tokenizer_threads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from data_scale import WORK, write_rows

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "tokenizer_threads.json"


def worker(path: Path) -> float:
    """Seconds the counting pass takes on the rows of ``path`` in this process."""
    import pandas as pd
    from transformers import AutoTokenizer

    from tunelab.tasks.text_classification import TextClassification

    frame = pd.read_csv(path)
    task = TextClassification()
    task.fit_labels(frame)
    tokenizer = AutoTokenizer.from_pretrained(ROOT / "models" / "zh-bert-mini")
    started = time.perf_counter()
    task.measure(frame, tokenizer, 513)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.worker))))
        return
    path = WORK / f"rows-{args.rows}.csv"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        write_rows(args.rows, path)
    seconds: dict[str, list[float]] = {"one core": [], "every core": []}
    for repeat in range(args.repeats):
        order = list(seconds) if repeat % 2 == 0 else list(seconds)[::-1]
        for setting in order:
            env = {**os.environ, "TOKENIZERS_PARALLELISM": str(setting == "every core").lower()}
            done = subprocess.run([sys.executable, __file__, "--worker", str(path)], env=env,
                                  capture_output=True, text=True, check=True)  # fmt: skip
            seconds[setting].append(round(json.loads(done.stdout.strip().splitlines()[-1]), 2))
            print(setting, seconds[setting][-1], flush=True)
    result = {
        "rows": args.rows,
        "cores": os.cpu_count(),
        "seconds": seconds,
        "speed_up": round(statistics.mean(seconds["one core"])
                          / statistics.mean(seconds["every core"]), 2),
    }  # fmt: skip
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
