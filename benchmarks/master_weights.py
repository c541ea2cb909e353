"""A checkpoint stored in bf16, fine-tuned: with fp32 master weights against as loaded.

transformers 5 loads a checkpoint in its stored dtype, and most recent ones store bf16.
Trained as loaded, AdamW's updates land on bf16 weights and the small ones round away;
tunelab now casts the weights that train to fp32 (:mod:`tunelab.models.master_weights`).
This fine-tunes all-MiniLM-L6-v2 rounded to bf16 with the plain command (no flags but the
model, the test file and the seed) on ``--rows`` en-sst2 training sentences, scored on the
set's 872 test sentences, in up to three arms, each seed of ``--seeds`` in turn:

- ``bf16_checkpoint``: the rounded weights saved in bf16 (this tunelab: fp32 master weights);
- ``fp32_checkpoint``: the same rounded weights saved in fp32 (what the cast should equal);
- ``bf16_checkpoint_before``, given ``--before-src`` (the ``src`` of a checkout from before
  the cast, e.g. from ``git worktree add``): the bf16 folder trained as loaded.

Usage::

    python benchmarks/master_weights.py [--rows 2000] [--seeds 42,1,2]
        [--before-src /tmp/before/src] [--data FOLDER] [--arms ...] [--out FILE]

Writes ``benchmarks/results/master_weights.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from arms import machine
from results_file import write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data" / "en-sst2"
RESULTS = ROOT / "benchmarks" / "results" / "master_weights.json"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def rounded_checkpoints(work: Path) -> dict[str, Path]:
    """MiniLM's weights rounded to bf16, saved once in bf16 and once in fp32."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from tunelab.models.load import resolve_model_source

    source = resolve_model_source(MODEL)
    rounded = AutoModel.from_pretrained(source, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(source)
    folders = {"bf16": work / "minilm-bf16", "fp32": work / "minilm-fp32"}
    rounded.save_pretrained(folders["bf16"])
    rounded.float().save_pretrained(folders["fp32"])
    for folder in folders.values():
        tokenizer.save_pretrained(folder)
    return folders


def train(model: Path, data: Path, test: Path, seed: int, work: Path, src: str | None) -> dict:
    """The plain command on ``data``; its test scores, its log's cast line and the wall time."""
    env = dict(os.environ, PYTHONPATH=src) if src else dict(os.environ)
    out = work / f"run-{model.name}-{seed}-{bool(src)}"
    command = [sys.executable, "-m", "tunelab.cli", "train", "--data", str(data),
               "--test", str(test), "--model", str(model), "--output", str(out),
               "--set", f"seed={seed}",
               # the epochs fixed: a checkout from before training.min_steps trains 3 on a
               # small set where this one trains more, and the arms compare the cast alone
               "--set", "training.epochs=3"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{model.name} seed {seed} failed:\n{done.stderr[-3000:]}")
    test = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["test"]
    cast = [line for line in done.stderr.splitlines() if "cast to fp32" in line]
    return {"seed": seed, "accuracy": round(test["accuracy"], 4),
            "f1_macro": round(test["f1_macro"], 4), "wall_seconds": round(seconds, 1),
            "cast_line": cast[0].split("INFO: ")[-1] if cast else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--before-src", default=None)
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="a folder with train.csv.gz and test.csv.gz (text, label)",
    )
    parser.add_argument("--arms", default=None, help="which arms, comma-separated (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="master-weights-") as folder:
        work = Path(folder)
        folders = rounded_checkpoints(work)
        data = work / "train.csv"
        rows = pd.read_csv(args.data / "train.csv.gz")
        rows.sample(min(args.rows, len(rows)), random_state=0).to_csv(data, index=False)
        arms = {"bf16_checkpoint": (folders["bf16"], None),
                "fp32_checkpoint": (folders["fp32"], None)}  # fmt: skip
        if args.before_src:
            arms["bf16_checkpoint_before"] = (folders["bf16"], args.before_src)
        if args.arms:
            arms = {arm: arms[arm] for arm in args.arms.split(",")}
        runs: dict[str, list[dict]] = {arm: [] for arm in arms}
        for seed in (int(s) for s in args.seeds.split(",")):
            for arm, (model, src) in arms.items():
                runs[arm].append(train(model, data, args.data / "test.csv.gz", seed, work, src))
                print(arm, runs[arm][-1], flush=True)
    found = {
        "machine": machine(), "model": MODEL, "data": args.data.name, "train_rows": args.rows,
        "runs": runs,
        "mean_accuracy": {arm: round(statistics.mean(r["accuracy"] for r in rows), 4)
                          for arm, rows in runs.items()},
    }  # fmt: skip
    write_results(args.out, found)
    print(found["mean_accuracy"])


if __name__ == "__main__":
    main()
