"""What pretraining is worth: zh-bert-mini vs. the same model randomly initialised, vs.
zh-bert-mini after domain-adaptive pretraining (DAPT) on the review texts, vs. a TF-IDF
character 1-3-gram logistic regression, on zh-sentiment at growing training sizes.

Every model sees the same subsets (seeded) and is scored on the same full test split.
Sizes below 5,000 run with 3 seeds (mean ± standard deviation); larger ones with one
unless ``--large-seeds`` says more.

Usage::

    python benchmarks/pretraining_value.py [--sizes 200,1000,5000,all] [--seeds 3]
        [--only "zh-bert-mini,zh-bert-mini + DAPT"] [--large-seeds 3]
        [--checkpoint "stage 1=runs/pretrain/zh-bert-mini-stage1" --only "stage 1"]

Writes ``benchmarks/results/pretraining_value.json`` and prints a Markdown table.
``--only`` reruns some columns (say, after the starter changed) and keeps the others'
results, and the rows of sizes not in ``--sizes``, from the existing file; the TF-IDF
column is cheap and always rerun. ``--large-seeds`` gives 5,000 examples and more several
seeds too (one by default: those runs are the slow ones). ``--checkpoint LABEL=PATH``
adds a column for another pretrained model (an earlier stage, your own pretraining run),
fine-tuned with the starter's recipe.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data" / "zh-sentiment"
STARTER = ROOT / "models" / "zh-bert-mini"
WORK = ROOT / "runs" / "benchmarks" / "pretraining_value"
# More passes over small subsets, so that every size gets a few hundred updates at least;
# the full set gets two (one epoch left the starter at 0.785, two at 0.830).
EPOCHS = {200: 10, 1000: 5, 5000: 3}
FULL_EPOCHS = 2
# One recipe for all three: 5e-4 was the best of 1e-4/2e-4/5e-4 for the starter and of
# 3e-4/5e-4 for random init on 1,000 examples.
LEARNING_RATES = {"random init": 5e-4, "zh-bert-mini": 5e-4, "zh-bert-mini + DAPT": 5e-4}
# Columns from --checkpoint are other pretrained encoders: the starter's recipe.
STARTER_RATE = LEARNING_RATES["zh-bert-mini"]


def parse_checkpoints(specs: list[str], parser: argparse.ArgumentParser) -> dict[str, Path]:
    """``LABEL=PATH`` pairs from ``--checkpoint``, each path a saved model folder."""
    checkpoints: dict[str, Path] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label.strip() or not path.strip():
            parser.error(f"--checkpoint {spec!r}: write it as LABEL=PATH")
        folder = Path(path.strip())
        if not (folder / "config.json").is_file():
            parser.error(f"--checkpoint {spec!r}: {folder} has no config.json; give a model folder")
        if label.strip() in LEARNING_RATES or label.strip() == "TF-IDF char 1-3 + LR":
            parser.error(f"--checkpoint {spec!r}: {label.strip()!r} names a built-in column")
        checkpoints[label.strip()] = folder
    return checkpoints


def subset(train: pd.DataFrame, size: int | None, seed: int) -> pd.DataFrame:
    """A stratified sample of ``size`` training rows (all rows for None)."""
    if size is None or size >= len(train):
        return train
    from sklearn.model_selection import train_test_split

    part, _ = train_test_split(train, train_size=size, random_state=seed, stratify=train["label"])
    return part


def tfidf_accuracy(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Character 1-3-gram TF-IDF + logistic regression test accuracy."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1),
        LogisticRegression(C=4.0, max_iter=2000),
    )
    model.fit(train["text"], train["label"])
    return float((model.predict(test["text"]) == test["label"]).mean())


def random_init_copy(source: Path, out: Path) -> Path:
    """The starter's architecture and tokenizer with fresh random weights."""
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(source))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def domain_adapted_copy(source: Path, train: pd.DataFrame, out: Path) -> dict:
    """Continue masked-LM pretraining of ``source`` on the review training texts."""
    from tunelab.training.pretrain import pretrain

    corpus = out.parent / "reviews-train.txt"
    corpus.write_text("\n".join(train["text"]) + "\n", encoding="utf-8")
    return pretrain(
        {
            "objective": "mlm",
            "data": [str(corpus)],
            "from_model": str(source),
            "output": str(out),
            "held_out": 0.02,
            "training": {
                "epochs": 1,
                "learning_rate": 1e-4,
                "batch_size": 32,
                "eval_steps": 1000,
                "logging_steps": 100,
            },
        },
        overwrite=True,
    )


def fine_tune(model: Path, train: pd.DataFrame, size: int | None, seed: int, lr: float) -> float:
    """Test accuracy of ``tunelab.train`` on ``train`` from ``model``."""
    import tunelab

    folder = Path(tempfile.mkdtemp(dir=WORK))
    train.to_csv(folder / "train.csv", index=False)
    # 500 validation rows pick the best epoch well enough and cost a third of the full set.
    pd.read_csv(DATA / "validation.csv").sample(n=500, random_state=0).to_csv(
        folder / "validation.csv", index=False
    )
    result = tunelab.train(
        {
            "output": str(folder / "run"),
            "seed": seed,
            "data": {
                "train": str(folder / "train.csv"),
                "validation": str(folder / "validation.csv"),
                "test": str(DATA / "test.csv"),
            },
            "model": {"name": str(model), "max_length": 128},
            "training": {
                "epochs": EPOCHS.get(size or 0, FULL_EPOCHS),
                "learning_rate": lr,
                "batch_size": 32,
                "logging_steps": 1000,
                "save_total_limit": 1,
            },
        }
    )
    return result["metrics"]["test"]["accuracy"]


@contextlib.contextmanager
def results_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock (in the work folder) while a run reads, merges and writes ``out``."""
    WORK.mkdir(parents=True, exist_ok=True)
    with open(WORK / f"{out.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def markdown_table(results: dict[str, dict[str, list[float]]]) -> str:
    """One row per size, one column per model: mean ± standard deviation over seeds."""
    names = ["TF-IDF char 1-3 + LR", *LEARNING_RATES]
    names += sorted({name for row in results.values() for name in row} - set(names))
    lines = ["| training examples | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]  # fmt: skip
    for label, row in results.items():
        cells = []
        for name in names:
            values = row.get(name)
            if not values:
                cells.append("-")
                continue
            spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.3f}{spread}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_label(columns: list[str], args: argparse.Namespace) -> str:
    """What one run covered, as the key of its minutes in the results file."""
    return f"{', '.join(columns)} | sizes {args.sizes} | seeds {args.seeds}/{args.large_seeds}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="200,1000,5000,all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--large-seeds", type=int, default=1, help="seeds at 5,000 examples and more"
    )
    parser.add_argument("--reuse-dapt", action="store_true", help="keep an existing DAPT model")
    parser.add_argument("--only", default=None, help="comma-separated model columns to rerun")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="another pretrained model to fine-tune as a column of its own (repeatable)",
    )
    args = parser.parse_args()
    sizes = [None if s == "all" else int(s) for s in args.sizes.split(",")]
    checkpoints = parse_checkpoints(args.checkpoint, parser)
    known = [*LEARNING_RATES, *checkpoints]
    columns = known if args.only is None else args.only.split(",")
    unknown = sorted(set(columns) - set(known))
    if unknown:
        parser.error(f"--only: unknown column(s) {unknown}; choose from {known}")
    out = HERE / "results" / "pretraining_value.json"

    if not (DATA / "train.csv").is_file():
        from tunelab.data.examples import build_example

        build_example("zh-sentiment", DATA)
    WORK.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(DATA / "train.csv")
    test = pd.read_csv(DATA / "test.csv")
    started = time.time()
    models: dict[str, Path] = {}
    if "random init" in columns:
        models["random init"] = random_init_copy(STARTER, WORK / "random-init")
    if "zh-bert-mini" in columns:
        models["zh-bert-mini"] = STARTER
    dapt = None
    if "zh-bert-mini + DAPT" in columns:
        dapt_dir = WORK / "zh-bert-mini-dapt"
        if args.reuse_dapt and (dapt_dir / "pretrain_metrics.json").is_file():
            dapt = json.loads((dapt_dir / "pretrain_metrics.json").read_text())
        else:
            dapt = domain_adapted_copy(STARTER, train, dapt_dir)
        models["zh-bert-mini + DAPT"] = dapt_dir
    ran_checkpoints = {name: path for name, path in checkpoints.items() if name in columns}
    models.update(ran_checkpoints)

    results: dict[str, dict[str, list[float]]] = {}
    for size in sizes:
        label = str(size or f"all ({len(train)})")
        small = size is not None and size < 5000
        seeds = list(range(args.seeds if small else args.large_seeds))
        row: dict[str, list[float]] = {"TF-IDF char 1-3 + LR": []}
        for seed in seeds:
            part = subset(train, size, seed)
            row["TF-IDF char 1-3 + LR"].append(tfidf_accuracy(part, test))
            for name, path in models.items():
                row.setdefault(name, []).append(
                    fine_tune(path, part, size, seed, LEARNING_RATES.get(name, STARTER_RATE))
                )
            print(label, seed, {k: round(v[-1], 4) for k, v in row.items()}, flush=True)
        results[label] = row

    # Parallel --only runs each merge their columns into the file: one at a time.
    with results_lock(out):
        # Read the file only now: another --only run may have finished meanwhile.
        kept = json.loads(out.read_text()) if args.only and out.is_file() else {}
        # Sizes this run left out keep their rows, in the file's order.
        merged = dict(kept.get("results", {}))
        for label, row in results.items():
            merged[label] = {**merged.get(label, {}), **row}
        results = merged
        if dapt is None:
            dapt = kept.get("dapt")
        out.parent.mkdir(exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    # Keys this script does not write (notes on how a rerun went) stay.
                    **kept,
                    "results": results,
                    "dapt": dapt,
                    # One entry per run that wrote columns: runs with --only may go in parallel.
                    "minutes": {
                        **kept.get("minutes", {}),
                        run_label(columns, args): round((time.time() - started) / 60, 1),
                    },
                    "learning_rates": LEARNING_RATES,
                    # --checkpoint columns: the starter's rate, from these folders.
                    "checkpoints": {
                        **kept.get("checkpoints", {}),
                        **{name: str(path) for name, path in ran_checkpoints.items()},
                    },
                    "epochs_by_size": {**EPOCHS, "all": FULL_EPOCHS},
                },
                indent=2,
            )
            + "\n"
        )
    print(markdown_table(results))


if __name__ == "__main__":
    main()
