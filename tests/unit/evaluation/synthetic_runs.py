"""Run folders written by hand: the files a finished run holds, for each kind of task.

The report reads only these files, so building them directly tests it in milliseconds.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


def _write(folder: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".jsonl"):
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in content))
        elif name.endswith(".yaml"):
            path.write_text(yaml.safe_dump(content, allow_unicode=True))
        else:
            path.write_text(json.dumps(content, ensure_ascii=False))
    return folder


def _history(metric: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    for step in range(10, 110, 10):
        history.append(
            {"loss": 1.0 / step**0.3, "learning_rate": 1e-4, "epoch": step / 100, "step": step}
        )
        if step % 50 == 0:
            history.append(
                {
                    "eval_loss": 0.8 / step**0.2,
                    f"eval_{metric}": 0.5 + step / 400,
                    "eval_runtime": 1.2,
                    "epoch": step / 100,
                    "step": step,
                }
            )
    history.append({"train_runtime": 30.0, "train_loss": 0.5, "epoch": 1.0, "step": 100})
    return history


def _data_report(rows: int) -> dict[str, Any]:
    split = {"rows": rows, "duplicates": {"exact_duplicates": 2, "near_duplicates": 3}}
    return {
        "rows_before": {"train": rows, "test": 6},
        "rows_after": {"train": rows - 2, "test": 6},
        "doctor": {"splits": {"train": split}, "leakage": {}},
        "tokens": {"max_length": 64, "truncated_share": 0.05, "p50": 20.0},
    }


# (score of the predicted class, correct?) for the six test rows: ECE 0.15 by hand
# bin (0.9, 1]: confidence 0.95, 3 of 4 right -> gap 0.2, weight 4/6
# bin (0.5, 0.6]: confidence 0.55, 1 of 2 right -> gap 0.05, weight 2/6
CALIBRATION_ROWS = [
    (0.95, True),
    (0.95, True),
    (0.95, True),
    (0.95, False),
    (0.55, True),
    (0.55, False),
]
EXPECTED_ECE = 0.2 * 4 / 6 + 0.05 * 2 / 6


def classification_run(folder: Path, with_history: bool = True) -> Path:
    """A single-label run (labels ``good``/``bad``) whose wrong rows include hostile text."""
    predictions = []
    for i, (score, correct) in enumerate(CALIBRATION_ROWS):
        gold = "good" if i % 2 == 0 else "bad"
        label = gold if correct else ("bad" if gold == "good" else "good")
        text = HOSTILE if not correct and score > 0.9 else f"review number {i}"
        predictions.append(
            {
                "text": text,
                "label": label,
                "score": score,
                "gold": gold,
                "probabilities": {
                    label: score,
                    ("bad" if label == "good" else "good"): round(1 - score, 6),
                },
            }
        )
    per_class = {
        n: {"precision": 0.7, "recall": 0.6, "f1-score": 0.65, "support": 3.0}
        for n in ("bad", "good")
    }
    test = {
        "examples": 6,
        "accuracy": 4 / 6,
        "f1_macro": 0.65,
        "per_class": per_class,
        "confusion_matrix": {"labels": ["bad", "good"], "matrix": [[2, 1], [1, 2]]},
    }
    files: dict[str, Any] = {
        "config.yaml": {"task": "text-classification", "model": {"name": "tiny-bert"}},
        "metrics.json": {
            "train": {"seconds": 12.5, "steps": 100},
            "validation": test,
            "test": test,
        },
        "predictions.jsonl": predictions,
        "data_report.json": _data_report(40),
        "model/config.json": {
            "tunelab": {"task": "text-classification", "problem_type": "single_label"}
        },
    }
    if with_history:
        files["history.json"] = _history("f1_macro")
    return _write(folder, files)


def multi_label_run(folder: Path) -> Path:
    """A multi-label run over labels a, b, c."""
    rng = random.Random(0)
    predictions = []
    for i in range(30):
        probabilities = {n: round(rng.random(), 3) for n in "abc"}
        gold = [n for n in "abc" if rng.random() < 0.4]
        predictions.append(
            {
                "text": f"row {i} {HOSTILE}",
                "probabilities": probabilities,
                "labels": [n for n, p in probabilities.items() if p >= 0.5],
                "gold": gold,
            }
        )
    return _write(
        folder,
        {
            "config.yaml": {"task": "text-classification", "model": {"name": "tiny-bert"}},
            "metrics.json": {"test": {"examples": 30, "subset_accuracy": 0.2, "f1_micro": 0.5}},
            "predictions.jsonl": predictions,
            "model/config.json": {
                "tunelab": {"task": "text-classification", "problem_type": "multi_label"}
            },
        },
    )


def regression_run(folder: Path) -> Path:
    """A regression run: values against gold numbers."""
    predictions = [
        {"text": f"row {i}", "value": i * 0.9 + 0.3, "gold": float(i)} for i in range(20)
    ]
    return _write(
        folder,
        {
            "config.yaml": {"task": "text-classification", "model": {"name": "tiny-bert"}},
            "metrics.json": {"test": {"examples": 20, "mse": 0.5, "pearson": 0.99}},
            "predictions.jsonl": predictions,
            "model/config.json": {
                "tunelab": {"task": "text-classification", "problem_type": "regression"}
            },
        },
    )


def token_run(folder: Path) -> Path:
    """A BIO entity run with one sentence of each span error and one hostile token."""
    sentences = [
        # right PER, and a LOC predicted as ORG (wrong type)
        (
            list("张三去北京"),
            ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"],
            ["B-PER", "I-PER", "O", "B-ORG", "I-ORG"],
        ),
        # LOC missed entirely, and a spurious PER
        (
            list("他在上海住了"),
            ["O", "O", "B-LOC", "I-LOC", "O", "O"],
            ["B-PER", "O", "O", "O", "O", "O"],
        ),
        # wrong boundary: 李小明 tagged as 李小
        (
            list("李小明来了"),
            ["B-PER", "I-PER", "I-PER", "O", "O"],
            ["B-PER", "I-PER", "O", "O", "O"],
        ),
        # hostile token text inside a missed entity
        (["<script>", "x"], ["B-ORG", "O"], ["O", "O"]),
    ]
    predictions = [
        {"text": "".join(t), "tokens": t, "tags": p, "gold_tags": g, "entities": []}
        for t, g, p in sentences
    ]
    per_type = {
        n: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2} for n in ("LOC", "ORG", "PER")
    }
    test = {
        "examples": 4,
        "precision": 0.4,
        "recall": 0.3,
        "f1": 0.35,
        "accuracy": 0.8,
        "per_type": per_type,
        "confusion": {
            "LOC": {"(missed)": 1, "ORG": 1},
            "PER": {"PER": 1, "(missed)": 1},
            "(none)": {"PER": 1},
        },
    }
    return _write(
        folder,
        {
            "config.yaml": {"task": "token-classification", "model": {"name": "tiny-bert"}},
            "metrics.json": {"train": {"seconds": 3.0}, "test": test},
            "predictions.jsonl": predictions,
            "history.json": _history("f1"),
            "model/config.json": {"tunelab": {"task": "token-classification", "scheme": "bio"}},
        },
    )


def generation_run(folder: Path) -> Path:
    """A causal-LM run whose outputs are partly right."""
    predictions = [
        {
            "source": "list files",
            "reference": "list directory contents",
            "output": "list directory contents",
        },
        {"source": "copy files", "reference": "copy files and directories", "output": "copy files"},
        {"source": HOSTILE, "reference": "show a <b>page</b>", "output": ""},
        {"source": "翻译这个", "reference": "这是中文", "output": "这是英文"},
    ]
    return _write(
        folder,
        {
            "config.yaml": {"task": "causal-lm", "model": {"name": "tiny-llama"}},
            "metrics.json": {
                "test": {"examples": 4, "chrf": 40.0, "rougeL": 0.5, "loss": 2.0, "perplexity": 7.4}
            },
            "predictions.jsonl": predictions,
            "history.json": [
                {"loss": 3.0, "step": 5},
                {"loss": 2.0, "step": 10},
                {"eval_loss": 2.2, "step": 10},
            ],
            "model/config.json": {"tunelab": {"task": "causal-lm"}},
        },
    )
