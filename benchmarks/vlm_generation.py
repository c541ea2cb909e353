"""Vision-language answers generated in batches vs one conversation at a time.

``ImageTextToText.forward`` (what ``tunelab predict``, the test evaluation and ``tunelab
serve`` call) generates up to ``GENERATION_BATCH`` conversations per ``generate`` call,
left-padded. This measures answers per second at batch sizes 1 (what it did before), 4, 8
and 16 on the same test chats, and checks that every batch size gives the same answers as
batch 1 (greedy, fp32).

Model: a trained image-text-to-text run, by default the zh-chart-qa example's
(``tunelab train examples/zh-chart-qa.yaml``: a 3-layer SmolVLM-style model from scratch,
16 image tokens per chart); data: that example's test chats. The sizes alternate order over
the repeats, in one process.

Usage::

    python benchmarks/vlm_generation.py [--model runs/zh-chart-qa/model]
        [--data data/zh-chart-qa/test.jsonl] [--rows 128] [--repeats 3]

Writes ``benchmarks/results/vlm_generation.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from results_file import mean_sd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "vlm_generation.json"
SIZES = (1, 4, 8, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs/zh-chart-qa/model")
    parser.add_argument("--data", type=Path, default=ROOT / "data/zh-chart-qa/test.jsonl")
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"{args.model} is no trained model; run "
                         "`tunelab train examples/zh-chart-qa.yaml` first")  # fmt: skip

    import torch

    from tunelab.data.load import read_table
    from tunelab.models.trained import load_trained

    torch.set_num_threads(torch.get_num_threads())
    model, processor, task, max_length = load_trained(args.model)
    frame = task.standardize(read_table(args.data, max_rows=args.rows))
    seconds: dict[int, list[float]] = {size: [] for size in SIZES}
    answers: dict[int, list[str]] = {}
    for repeat in range(args.repeats):
        for size in SIZES[repeat % len(SIZES) :] + SIZES[: repeat % len(SIZES)]:
            started = time.perf_counter()
            answers[size] = list(task.forward(model, processor, frame, max_length, size))
            seconds[size].append(time.perf_counter() - started)
    rows = len(frame)
    found = {
        "settings": {"model": str(args.model.relative_to(ROOT)) if args.model.is_relative_to(ROOT)
                     else str(args.model), "rows": rows, "repeats": args.repeats,
                     "max_new_tokens": task.settings["max_new_tokens"], "precision": "fp32",
                     "threads": torch.get_num_threads()},
        "sizes": {str(size): {
            "answers_per_second": [round(rows / s, 2) for s in seconds[size]],
            "same_answers_as_batch_1": sum(a == b for a, b in zip(answers[size], answers[1],
                                                                  strict=True)) / rows,
        } for size in SIZES},
    }  # fmt: skip
    base = statistics.mean(found["sizes"]["1"]["answers_per_second"])
    lines = ["| conversations per call | answers/s | vs one at a time | same answers |",
             "|---:|---:|---:|---:|"]  # fmt: skip
    for size in SIZES:
        entry = found["sizes"][str(size)]
        entry["speedup"] = round(statistics.mean(entry["answers_per_second"]) / base, 2)
        lines.append(f"| {size} | {mean_sd(entry['answers_per_second'], 1)} | "
                     f"{entry['speedup']}x | {entry['same_answers_as_batch_1']:.1%} |")  # fmt: skip
    print("\n".join(lines))
    args.out.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
