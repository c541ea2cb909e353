"""A run that learns nothing says so: during training, in the summary, metrics.json, the
report headline and `tunelab runs`; and every classification run carries its baseline."""

from __future__ import annotations

import json
import random

import pandas as pd

from tests.conftest import FILLER
from tests.integration.test_cli import TRAIN_FLAGS, tunelab


def _labels_independent_of_texts(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    texts = ["".join(rng.choices(FILLER, k=rng.randint(4, 12))) for _ in range(n)]
    return pd.DataFrame({"text": texts, "label": [rng.choice(["好评", "差评"]) for _ in texts]})


def test_a_run_that_learns_nothing_says_so(tiny_bert, tmp_path):
    for split, (rows, seed) in {
        "train": (300, 0),
        "validation": (200, 1),
        "test": (400, 2),
    }.items():
        _labels_independent_of_texts(rows, seed).to_csv(tmp_path / f"{split}.csv", index=False)
    run = tmp_path / "runs" / "noise"
    done = tunelab(
        "train", "--data", tmp_path / "train.csv", "--validation", tmp_path / "validation.csv",
        "--test", tmp_path / "test.csv", "--model", tiny_bert, "--output", run, *TRAIN_FLAGS,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # at once, after an evaluation during training
    assert "after epoch" in done.stderr and "on validation:" in done.stderr
    # the summary line
    summary = [line for line in done.stdout.splitlines() if line.startswith("WARNING: test:")]
    assert summary and ("one class" in summary[0] or "chance" in summary[0])
    assert "baseline validation (TF-IDF" in done.stdout and "baseline test (TF-IDF" in done.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["warnings"][0] == summary[0].removeprefix("WARNING: ")
    assert set(metrics["baseline"]) >= {"method", "validation", "test"}
    page = (run / "report.html").read_text()
    headline = page[page.index('<p class="summary">') : page.index("<nav>")]
    assert 'class="warning"' in headline and "baseline&#x27;s" in headline

    listing = tunelab("runs", tmp_path / "runs")
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("noise"))
    assert " !" in row and f"{metrics['baseline']['test']['f1_macro']:.4f}" in row


def test_a_run_that_learns_has_no_warning_and_beats_nothing_silently(tiny_bert, tmp_path):
    from tests.conftest import make_reviews

    make_reviews(300).to_csv(tmp_path / "reviews.csv", index=False)
    run = tmp_path / "run"
    done = tunelab("train", "--data", tmp_path / "reviews.csv", "--model", tiny_bert,
                   "--output", run, *TRAIN_FLAGS)  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["predicted_classes"] == 2
    assert not any("chance" in w or "one class" in w for w in metrics["warnings"])
    assert "WARNING: test:" not in done.stdout
