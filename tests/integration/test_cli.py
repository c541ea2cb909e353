"""The tunelab command end to end: train, evaluate, predict, and every error a user will hit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import make_reviews

TRAIN_FLAGS = [
    "--set", "training.epochs=3", "--set", "training.learning_rate=3e-3",
    "--set", "training.batch_size=16", "--set", "training.early_stopping_patience=null",
]  # fmt: skip


def tunelab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "tunelab.cli", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )  # fmt: skip


def test_train_evaluate_predict(tiny_bert, tmp_path):
    reviews = make_reviews(300)
    reviews.rename(columns={"text": "review", "label": "sentiment"}).to_csv(
        tmp_path / "reviews.csv", index=False
    )
    run = tmp_path / "runs" / "reviews"
    done = tunelab(
        "train", "--task", "text-classification", "--data", tmp_path / "reviews.csv",
        "--text-column", "review", "--label-column", "sentiment", "--model", tiny_bert,
        "--output", run, *TRAIN_FLAGS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # scores to four places, the count of predicted classes as a whole number
    assert re.search(r"test: accuracy=\d\.\d{4} .*predicted_classes=2(\s|$)", done.stdout)
    assert json.loads((run / "metrics.json").read_text())["test"]["accuracy"] > 0.7

    held_out = make_reviews(60, seed=9).rename(columns={"text": "review", "label": "sentiment"})
    held_out.to_csv(tmp_path / "more.csv", index=False)
    done = tunelab("evaluate", run, "--data", tmp_path / "more.csv", "--output", tmp_path / "ev")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["test"]["examples"] == 60

    done = tunelab("predict", run / "model", "--text", "很好很好", "--text", "太糟糕了")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in records] == ["很好很好", "太糟糕了"]
    assert all(r["label"] in {"positive", "negative"} for r in records)

    # --data, as train and evaluate name the file (--input is the same option)
    done = tunelab("predict", run, "--data", tmp_path / "more.csv", "--text-column", "review",
                   "--output", tmp_path / "out.jsonl")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()) == 60


def test_init_writes_a_config_that_trains(tmp_path):
    done = tunelab("init", "--out", tmp_path / "c.yaml")
    assert done.returncode == 0, done.stderr
    assert "learning_rate: auto  # peak learning rate" in (tmp_path / "c.yaml").read_text()


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


ERROR_CASES = {
    "missing file": (lambda d: ["--data", d / "nope.csv"], r"data file .*nope.csv does not exist"),
    "unknown format": (
        lambda d: ["--data", (d / "x.docx").write_bytes(b"PK") and d / "x.docx"],
        r"unknown file format '.docx'",
    ),
    "missing column": (
        lambda d: ["--data", _write(d / "c.csv", make_reviews(50)), "--text-column", "review"],
        r"has no column 'review' .*its columns are: text, label",
    ),
    "empty file": (
        lambda d: ["--data", (d / "e.csv").write_text("") == 0 and d / "e.csv"],
        r"e.csv is empty",
    ),
    "one class": (
        lambda d: ["--data", _write(d / "o.csv", make_reviews(50).assign(label="pos"))],
        r"only one class 'pos' in column 'label'",
    ),
    "class too small": (
        lambda d: [
            "--data",
            _write(
                d / "s.csv",
                pd.concat([make_reviews(50), pd.DataFrame({"text": ["x"], "label": ["rare"]})]),
            ),
        ],
        r"class 'rare' has only 1 row",
    ),
    "empty texts, strict": (
        lambda d: [
            "--data",
            _write(
                d / "n.csv",
                make_reviews(50).assign(text=lambda f: f["text"].where(f.index != 3, "")),
            ),
            "--set",
            "data.drop_invalid=false",
        ],
        r"column 'text' is empty in rows 4; .*drop_invalid",
    ),
    "unseen label in test": (
        lambda d: [
            "--data",
            _write(d / "t.csv", make_reviews(50)),
            "--test",
            _write(d / "u.csv", make_reviews(6).assign(label="neutral")),
        ],
        r"u.csv row 1 has label 'neutral' that the training data never has",
    ),
    "unknown config key": (
        lambda d: ["--data", d / "t.csv", "--set", "training.lr=1e-4"],
        r"unknown config key 'training.lr'; allowed keys here are: epochs",
    ),
    "ill-typed config value": (
        lambda d: ["--data", d / "t.csv", "--set", "training.epochs=many"],
        r"config key 'training.epochs' has value 'many'",
    ),
    "unreachable model": (
        lambda d: ["--data", _write(d / "m.csv", make_reviews(50)), "--model", "org/not-here"],
        r"model 'org/not-here' is not a local folder and could not be loaded from the Hugging Face",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_user_errors_are_one_line_exit_2_and_write_nothing(case, tmp_path):
    make_args, pattern = ERROR_CASES[case]
    args = make_args(tmp_path)
    done = tunelab("train", *args, "--output", tmp_path / "run")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert not (tmp_path / "run" / "model").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_empty_texts_are_dropped_with_a_warning_by_default(tiny_bert, tmp_path):
    data = _write(tmp_path / "n.csv", make_reviews(80).assign(
        text=lambda f: f["text"].where(~f.index.isin([3, 10]), "  ")))  # fmt: skip
    done = tunelab("train", "--data", data, "--model", tiny_bert, "--output", tmp_path / "run",
                   "--set", "training.max_steps=2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "dropped 2 row(s) with empty 'text' (rows 4, 11)" in done.stderr


def test_doctor_reports_and_fixes(tmp_path):
    from tests.unit.data.test_doctor import planted

    planted(tmp_path)
    done = tunelab(
        "doctor", tmp_path / "train.csv", "--test", tmp_path / "test.csv",
        "--report", tmp_path / "report.json", "--fix", "--out", tmp_path / "clean.jsonl",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "leakage: 10 test texts also in train" in done.stdout
    assert "suspected label errors in train" in done.stdout
    assert json.loads((tmp_path / "report.json").read_text())["splits"]["train"]["rows"] == 1046
    assert (tmp_path / "clean.jsonl").is_file() and (tmp_path / "clean.label_errors.csv").is_file()

    done = tunelab("doctor", tmp_path / "train.csv", "--fix")
    assert done.returncode == 2 and "--fix needs --out" in done.stderr


def test_token_classification_from_conll_to_entity_spans(tiny_bert, tmp_path):
    from tests.conftest import make_entities

    rows = make_entities(240)
    blocks = ["\n".join(f"{t} {tag}" for t, tag in zip(r["tokens"], r["tags"], strict=True))
              for r in rows]  # fmt: skip
    (tmp_path / "ner.conll").write_text("\n\n".join(blocks) + "\n", "utf-8")
    run = tmp_path / "runs" / "ner"
    done = tunelab(
        "train", "--task", "token-classification", "--data", tmp_path / "ner.conll",
        "--model", tiny_bert, "--output", run, "--scheme", "bioes", *TRAIN_FLAGS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"test: .* f1=\d\.\d{4}", done.stdout)
    config = json.loads((run / "model" / "config.json").read_text())
    assert "E-PER" in config["label2id"] and config["tunelab"]["scheme"] == "bioes"

    done = tunelab("predict", run, "--text", "我们张三在北京买了东西")
    assert done.returncode == 0, done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {(e["label"], e["start"], e["end"]) for e in record["entities"]} == {
        ("PER", 2, 4),
        ("LOC", 5, 7),
    }


def test_curve_trains_growing_subsets_and_answers_a_target(tiny_bert, tmp_path):
    make_reviews(200).to_csv(tmp_path / "reviews.csv", index=False)
    config = tmp_path / "run.yaml"
    config.write_text(f"data:\n  train: {tmp_path / 'reviews.csv'}\nmodel:\n  name: {tiny_bert}\n")
    out = tmp_path / "curve"
    done = tunelab(
        "curve", config, "--sizes", "20,40,80", "--seeds", "2", "--seeds-below", "30",
        "--min-steps", "4", "--target", "0.9", "--out", out, *TRAIN_FLAGS[:6],
        "--set", "training.epochs=1", "--set", "training.threads=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"20 rows: f1_macro=\d\.\d{4} ± \d\.\d{4} \(2 seeds\)", done.stdout)
    assert "fit: f1_macro = " in done.stdout and "target f1_macro 0.9: " in done.stdout
    curve = json.loads((out / "curve.json").read_text(encoding="utf-8"))
    assert [s["size"] for s in curve["sizes"]] == [20, 40, 80]
    assert len(curve["trials"]) == 4 and curve["target"]["target"] == 0.9
    assert (out / "curve.png").stat().st_size > 0 and (out / "curve.svg").stat().st_size > 0
    assert not (out / "size-80-seed-42" / "model").exists()

    done = tunelab("curve", config, "--sizes", "20,x", "--out", out)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: --sizes must be positive integers separated by commas, got '20,x'"
    )


def test_lora_run_then_merge_gives_a_model_without_adapters(tiny_sentiment_body, tmp_path):
    make_reviews(300).to_csv(tmp_path / "reviews.csv", index=False)
    run = tmp_path / "lora"
    done = tunelab(
        "train", "--data", tmp_path / "reviews.csv", "--model", tiny_sentiment_body,
        "--peft", "lora", "--output", run, *TRAIN_FLAGS, "--set", "training.learning_rate=1e-2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"lora: training [\d,]+ of [\d,]+ parameters \(\d+\.\d+%\)", done.stderr)
    done = tunelab("merge", run)
    assert done.returncode == 0, done.stderr
    assert (run / "merged" / "model.safetensors").is_file()
    adapter = tunelab("predict", run, "--text", "很好很好")
    merged = tunelab("predict", run / "merged", "--text", "很好很好")
    assert json.loads(adapter.stdout)["label"] == json.loads(merged.stdout)["label"]

    done = tunelab("train", "--data", tmp_path / "reviews.csv", "--model", tiny_sentiment_body,
                   "--peft", "qlora", "--output", tmp_path / "q")  # fmt: skip
    assert done.returncode == 2 and "needs a CUDA GPU" in done.stderr


def test_a_pair_file_with_one_column_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "queries.csv").write_text("query\nhow to list files\ncopy a file\n")
    done = tunelab(
        "train", "--task", "sentence-embedding", "--data", tmp_path / "queries.csv",
        "--model", "sentence-transformers/all-MiniLM-L6-v2", "--output", tmp_path / "run",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "has one column (query)" in lines[0]
    assert not (tmp_path / "run" / "model").exists()
