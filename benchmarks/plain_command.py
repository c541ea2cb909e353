"""A new user's first run, recorded: ``tunelab train`` with the given arguments and nothing
else, in its own process, its wall time from launch to exit, every line it printed, and the
metrics it wrote.

For data sets nobody tuned tunelab on, where the figure worth keeping is what the plain
command does and says (see "Defaults and figures are judged on data they were not tuned
on"), not a comparison of arms; those have their own scripts (``tagging_unseen.py``,
``default_settings.py``).

Usage::

    python benchmarks/plain_command.py NAME -- --data benchmarks/data/unseen/ud_zh_gsdsimp/\\
        train.conllu.gz --test benchmarks/data/unseen/ud_zh_gsdsimp/test.conllu.gz

Writes ``benchmarks/results/plain_command.json`` (one entry per NAME, replaced on a rerun).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from arms import machine
from results_file import read_results, write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "plain_command.json"


def _scalars(metrics: dict) -> dict:
    """The numbers and words of a metrics section, nested sections kept, per-class and
    confusion tables left out."""
    kept = {}
    for key, value in metrics.items():
        if isinstance(value, dict) and key not in ("per_class", "per_tag", "per_type"):
            kept[key] = _scalars(value)
        elif isinstance(value, (int, float, str)):
            kept[key] = value
    return kept


def run(arguments: list[str]) -> dict:
    """``tunelab train ARGUMENTS --output <temporary folder>``: wall seconds, exit code, the
    lines it printed (stderr and stdout, in order) and its metrics.json."""
    work = Path(tempfile.mkdtemp(prefix="plain-command-"))
    tunelab = Path(sys.executable).with_name("tunelab")  # the venv's console script
    command = [str(tunelab), "train", *arguments, "--output", str(work)]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    metrics_file = work / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.exists() else {}
    shutil.rmtree(work, ignore_errors=True)
    return {
        "command": "tunelab train " + " ".join(arguments),
        "exit_code": done.returncode,
        "wall_seconds": round(seconds, 1),
        "printed": done.stdout.splitlines(),
        "metrics": {s: _scalars(metrics.get(s) or {}) for s in ("validation", "test", "baseline")},
        "warnings": metrics.get("warnings", []),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the entry's name in the results file")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="after --: train's flags")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    arguments = args.arguments[1:] if args.arguments[:1] == ["--"] else args.arguments
    result = run(arguments)
    results = read_results(args.out)
    results[args.name] = result
    write_results(args.out, results)
    print("\n".join(result["printed"]))
    print(f"{args.name}: exit {result['exit_code']}, {result['wall_seconds']} s")


if __name__ == "__main__":
    main()
