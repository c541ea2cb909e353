"""Image and audio classifiers from random weights: the plain command with the epochs raised
to ``training.min_steps`` against the same command held at its 3 epochs.

Offline, ``model.name: auto`` falls back to a small ViT (images) or Whisper-style encoder
(audio) trained from scratch. Each set's ``tunelab data example`` folder is trained with the
plain command (``tunelab train --data FOLDER --seed S``) and with ``--set
training.min_steps=null`` (3 epochs, as before the raise), seeds alternating, and the test
macro-F1, the linear baseline's, the epochs trained and the wall time are kept.

Usage::

    python benchmarks/min_steps_scratch.py [--sets digits,zh-lookalikes,spoken-commands]
        [--seeds 0,1,2]

Writes ``benchmarks/results/min_steps_scratch.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from arms import machine
from results_file import mean_sd, write_results

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "min_steps_scratch.json"
ARMS = {"3 epochs (min_steps null)": ["--set", "training.min_steps=null"], "plain command": []}


def run_tunelab(*args: str) -> None:
    """``tunelab ARGS`` in a fresh process; its error's tail stops the benchmark."""
    done = subprocess.run([sys.executable, "-m", "tunelab.cli", *args], capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"tunelab {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def train_and_read(folder: Path, seed: int, extra: list[str], work: Path) -> dict:
    """Train on ``folder`` into ``work/run`` and read back its scores, epochs and time."""
    out = work / "run"
    started = time.perf_counter()
    run_tunelab("train", "--data", str(folder), "--out", str(out), "--seed", str(seed), *extra)
    seconds = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    report = json.loads((out / "data_report.json").read_text(encoding="utf-8"))
    history = json.loads((out / "history.json").read_text(encoding="utf-8"))
    return {
        "test_f1_macro": metrics["test"]["f1_macro"],
        "test_accuracy": metrics["test"]["accuracy"],
        "baseline_test_f1_macro": metrics["baseline"]["test"]["f1_macro"],
        "epochs_set": (report.get("epochs") or {}).get("value", 3.0),
        "evaluations": sum("eval_loss" in entry for entry in history),
        "steps": metrics["train"]["steps"],
        "wall_seconds": round(seconds, 1),
    }


def run_arms(
    name: str, folder: Path, seeds: list[int], arms: dict[str, list[str]], tmp: Path | None = None
) -> dict[str, list[dict]]:
    """Every arm (extra ``tunelab train`` arguments, by name) on ``folder`` for each seed, the
    arms' order rotating from seed to seed (with two arms: alternating); each run's results,
    by arm."""
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    names = list(arms)
    for seed in seeds:
        shift = seed % len(names)
        for arm in names[shift:] + names[:shift]:
            with tempfile.TemporaryDirectory(dir=tmp) as work:
                found = train_and_read(folder, seed, arms[arm], Path(work))
            runs[arm].append({"seed": seed, **found})
            print(name, arm, found, flush=True)
    return runs


def _mean(key: str, digits: str) -> Callable[[dict], str]:
    return lambda column: f"{statistics.mean(column[key]):{digits}}"


def _spread(key: str) -> Callable[[dict], str]:
    return lambda column: mean_sd(column[key])


# a table's columns after set and arm: heading, right-aligned, and the cell from the runs
SUMMARY_COLUMNS = [
    ("test macro-F1", _spread("test_f1_macro")),
    ("baseline macro-F1", _mean("baseline_test_f1_macro", ".3f")),
    ("steps", _mean("steps", ".0f")),
    ("s/run", _mean("wall_seconds", ".0f")),
]
EPOCH_COLUMNS = [("epochs", _mean("epochs_set", "g")), ("test macro-F1", _spread("test_f1_macro")),
                 ("test accuracy", _spread("test_accuracy")),
                 ("baseline macro-F1", _mean("baseline_test_f1_macro", ".3f")),
                 ("s/run", _mean("wall_seconds", ".0f"))]  # fmt: skip


def summary_table(
    sets: dict[str, dict[str, list[dict]]], arm_heading: str,
    columns: list[tuple[str, Callable[[dict], str]]] = SUMMARY_COLUMNS,
) -> None:  # fmt: skip
    """Print each set's arms as Markdown, a column per entry of ``columns`` (by default: test
    macro-F1 as mean ± sd over seeds, the baseline's, the steps and the seconds a run)."""
    print(f"\n| set | {arm_heading} | " + " | ".join(h for h, _ in columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for name, runs in sets.items():
        for arm, found in runs.items():
            column = {key: [run[key] for run in found] for key in found[0]}
            print(f"| {name} | {arm} | " + " | ".join(cell(column) for _, cell in columns) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="digits,zh-lookalikes,spoken-commands")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict = {"machine": machine(), "arms": {name: " ".join(extra) or "(none)"
                                                   for name, extra in ARMS.items()},
                     "sets": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="min-steps-scratch-") as tmp:
        for name in args.sets.split(","):
            folder = Path(tmp) / name
            run_tunelab("data", "example", name, "--out", str(folder))
            results["sets"][name] = run_arms(name, folder, seeds, ARMS, Path(tmp))
    write_results(RESULTS, results)
    summary_table(results["sets"], "arm", EPOCH_COLUMNS)


if __name__ == "__main__":
    main()
