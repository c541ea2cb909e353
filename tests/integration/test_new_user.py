"""A new user's first contact, played as they would: a spreadsheet of their own with column
names tunelab has never seen, and `tunelab train --data FILE` with nothing else, its output
captured as a CI log or nohup would capture it (no terminal)."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard

from tests.conftest import make_reviews
from tests.integration.test_cli import tunelab


def _workbook_as_people_keep_them(path: Path, rows: int) -> Path:
    """A title row, a blank row, then the header: an order number, the customer's words and
    the verdict, under names no default matches."""
    from openpyxl import Workbook

    reviews = make_reviews(rows)
    book = Workbook()
    sheet = book.active
    sheet.title = "Bewertungen"
    sheet.append(["Kundenbewertungen, Export vom 1. Mai"])
    sheet.append([])
    sheet.append(["Bestellnr.", "Was der Kunde schrieb", "Urteil"])
    for number, (text, label) in enumerate(zip(reviews["text"], reviews["label"], strict=True)):
        sheet.append([10_000 + number, text, {"positive": "gut", "negative": "schlecht"}[label]])
    book.save(path)
    return path


def _scores(metrics: dict) -> dict[tuple[str, str], float]:
    return {
        (split, key): value
        for split in ("validation", "test")
        for key, value in metrics[split].items()
        if isinstance(value, (int, float)) and key != "examples"
    }


def test_a_new_user_trains_on_a_spreadsheet_and_gets_a_card_and_a_push_plan(tmp_path):
    _workbook_as_people_keep_them(tmp_path / "reviews.xlsx", 150)

    done = tunelab("train", "--data", "reviews.xlsx", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    captured = done.stdout + done.stderr
    assert "\r" not in captured  # whole lines, not redrawn bars
    guessed = [line for line in done.stderr.splitlines() if "guessed from reviews.xlsx" in line]
    assert len(guessed) == 1, done.stderr
    assert "text column 'Was der Kunde schrieb'" in guessed[0]
    assert "label column 'Urteil'" in guessed[0] and "--label-column overrides" in guessed[0]
    assert "training: step" in done.stderr and "left" in done.stderr  # plain progress lines
    run = tmp_path / "runs" / "run"
    report = json.loads((run / "data_report.json").read_text(encoding="utf-8"))
    assert [k["value"] for k in report["guessed"]["keys"]] == [
        "text-classification", "Was der Kunde schrieb", "Urteil",
    ]  # fmt: skip

    card = ModelCard.load(run / "model" / "README.md")
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    cards = {(e.dataset_split, e.metric_type): e.metric_value for e in card.data.eval_results}
    assert cards == _scores(metrics)
    assert card.data.pipeline_tag == "text-classification" and card.data.language == "zh"
    assert "tunelab train --data reviews.xlsx" in card.text
    assert "Urteil" in card.text and "## Baseline" in card.text

    done = tunelab("push", "runs/run", "--repo", "me/reviews", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, *files = done.stdout.splitlines()
    assert first.startswith("would upload runs/run/model to the Hugging Face Hub as me/reviews "
                            "(private)")  # fmt: skip
    listed = {line.split()[0] for line in files}
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= listed
