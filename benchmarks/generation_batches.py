"""Decoder-only generation on a CPU: one batch of up to 64 rows against batches capped by
tokens (``tunelab.inference.CPU_GENERATION_TOKENS``), on a run's own test prompts.

Reads a causal-lm run folder (its ``model/`` and ``predictions.jsonl``, whose ``source``
holds each chat before the answer), answers the same prompts both ways, alternating, two
rounds, in one process, and compares time, the tool-call scores and the answers themselves.

Usage::

    python benchmarks/generation_batches.py RUN_FOLDER [--batch-size 64]

Writes ``benchmarks/results/generation_batches.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from results_file import write_results

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "generation_batches.json"
ARMS = {"one batch (no token cap)": 10**9, "token cap": None}


def main() -> None:
    import pandas as pd
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab import inference
    from tunelab.data.tool_calls import call_metrics
    from tunelab.tasks.generation import CausalGeneration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    cap = inference.CPU_GENERATION_TOKENS
    model = AutoModelForCausalLM.from_pretrained(args.run / "model")
    tokenizer = AutoTokenizer.from_pretrained(args.run / "model")
    rows = [json.loads(line) for line in (args.run / "predictions.jsonl").open()]
    frame = pd.DataFrame({"source": [r["source"] for r in rows],
                          "target": [r["reference"] for r in rows],
                          "messages": [json.loads(r["source"]) for r in rows]})  # fmt: skip
    max_length = int(model.config.tunelab["max_length"])
    task = CausalGeneration()
    results: dict = {"run": str(args.run), "rows": len(rows), "cap_tokens": cap, "arms": {}}
    answers: dict[str, list[str]] = {}
    for round_ in (1, 2):
        for arm, tokens in ARMS.items():
            inference.CPU_GENERATION_TOKENS = tokens or cap
            started = time.perf_counter()
            out = list(task.forward(model, tokenizer, frame, max_length, args.batch_size, "bf16"))
            seconds = round(time.perf_counter() - started, 1)
            scores = call_metrics(out, frame["target"].tolist())
            results["arms"].setdefault(arm, []).append({"seconds": seconds, **scores})
            answers.setdefault(arm, out)
            print(round_, arm, seconds, scores, flush=True)
    first, second = answers.values()
    results["same_answers"] = sum(a == b for a, b in zip(first, second, strict=True))
    write_results(OUT, results)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
