"""KTO's row order: the fixed file order TRL trains in, against tunelab's one seeded shuffle.

TRL's ``KTOTrainer`` trains rows in the dataset's order (it refuses any other sampler) and
takes each answer's KL estimate from its neighbour's answer put after its own prompt. Two
training files in the shapes users bring, on zh-llama-mini with LoRA (as
``benchmarks/preference.py``'s KTO runs):

- **pairs**: en-zh-prefs chosen/rejected pairs, which KTO reads as a good and a bad answer to
  each prompt, side by side in file order (so every second KL estimate used the matched
  answer);
- **sorted**: the same prompts as single answers, every good one first, then every bad one
  (feedback exported label by label).

Each is trained as it was before the shuffle (``file order``: the shuffle patched out) and as
tunelab trains it now, scored on the same held-out pairs: preference accuracy (the chosen
answer's mean token log-probability higher), the log-probability margin, and the implicit
reward accuracy against the adapter-free base.

Usage::

    python benchmarks/kto_order.py [--train-rows 384] [--test-rows 200] [--seeds 0 1]

Writes ``benchmarks/results/kto_order.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEYS = ("preference_accuracy", "logp_margin", "reward_accuracy", "reward_margin")


def answers(
    train_rows: int, test_rows: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``train_rows`` en-zh-prefs training pairs drawn with ``seed``, ``test_rows`` held-out
    pairs (always the same), and the pairs' chosen answers as good single answers and their
    rejected ones as bad (prompt, completion, label)."""
    from tunelab.data.examples import build_example

    prefs = ROOT / "data" / "en-zh-prefs"
    if not (prefs / "test.jsonl").is_file():
        build_example("en-zh-prefs", prefs)
    pairs = pd.read_json(prefs / "train.jsonl", lines=True).sample(train_rows, random_state=seed)
    test = pd.read_json(prefs / "test.jsonl", lines=True).sample(test_rows, random_state=0)
    good = pairs.assign(completion=pairs["chosen"], label=True)
    bad = pairs.assign(completion=pairs["rejected"], label=False)
    return pairs, test, good, bad


def files(work: Path, train_rows: int, test_rows: int, seed: int) -> dict[str, Path]:
    """The pair file, the label-sorted single answers of the same prompts, and the held-out
    pairs, written under ``work``."""
    pairs, test, good, bad = answers(train_rows, test_rows, seed)
    single = pd.concat([good, bad])[["prompt", "completion", "label"]]
    written = {"pairs": pairs, "sorted": single, "test": test}
    for name, frame in written.items():
        frame.to_json(work / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)
    return {name: work / f"{name}.jsonl" for name in written}


@contextlib.contextmanager
def file_order() -> Iterator[None]:
    """KTO rows as tunelab trained them before the seeded shuffle: in file order."""
    from datasets import Dataset

    shuffle = Dataset.shuffle
    Dataset.shuffle = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        Dataset.shuffle = shuffle  # type: ignore[method-assign]


def train_kto(train: Path, test: Path, output: Path, seed: int, **preference: float) -> dict:
    """One KTO run as both KTO benchmarks make it (zh-llama-mini, LoRA r=16, 1 epoch, batch 16,
    lr 2e-3, fp32): its time and the held-out scores before and after; ``preference`` adds to
    the preference settings."""
    import tunelab

    config = {
        "task": "preference",
        "output": str(output),
        "seed": seed,
        "data": {
            "train": str(train),
            "test": str(test),
            "split": {"validation": 0.05, "test": 0.0},
        },
        "model": {"name": "zh-llama-mini", "max_length": 128},
        "training": {
            "epochs": 1,
            "learning_rate": 2e-3,
            "batch_size": 16,
            "precision": "fp32",
            "logging_steps": 1000,
            "early_stopping_patience": None,
        },
        "generation": {"max_new_tokens": 16, "score_before": True},
        "peft": {"method": "lora", "r": 16, "alpha": 32},
        "preference": {"method": "kto", "beta": 0.1, **preference},
    }
    started = time.time()
    metrics = tunelab.train(config)["metrics"]
    return {
        "seconds": round(time.time() - started, 1),
        "before": {key: metrics["before"]["test"].get(key) for key in KEYS},
        "after": {key: metrics["test"].get(key) for key in KEYS},
    }


def run(data: dict[str, Path], train: str, order: str, seed: int, work: Path) -> dict:
    output = work / f"{train}-{order.replace(' ', '-')}-{seed}"
    with file_order() if order == "file order" else contextlib.nullcontext():
        return train_kto(data[train], data["test"], output, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-rows", type=int, default=384, help="training pairs")
    parser.add_argument("--test-rows", type=int, default=200, help="held-out pairs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "kto_order.json")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for seed in args.seeds:
            data = files(work, args.train_rows, args.test_rows, seed)
            for train in ("pairs", "sorted"):
                for order in ("file order", "shuffled once"):
                    name = f"{train}, {order}, seed {seed}"
                    results[name] = run(data, train, order, seed, work)
                    print(name, json.dumps(results[name]), flush=True)
    about = {"what": __doc__.split("\n")[0], "train_pairs": args.train_rows,
             "test_pairs": args.test_rows}  # fmt: skip
    write_results(args.out, about, results, "training file, order, seed")


def write_results(out: Path, about: dict, results: dict[str, dict], named: str) -> None:
    """``about`` and the runs into ``out`` (runs of other seeds already there stay), and the
    runs' held-out scores as a Markdown table whose first column is ``named``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    runs = {**previous.get("runs", {}), **results}
    out.write_text(json.dumps({**about, "runs": runs}, indent=1) + "\n")
    print(f"| {named} | pref. acc. after | log-p margin after | reward acc. |")
    print("|---|---:|---:|---:|")
    for name, found in results.items():
        after = found["after"]
        print(f"| {name} | {after['preference_accuracy']:.3f} | {after['logp_margin']:.3f} | "
              f"{after['reward_accuracy']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
