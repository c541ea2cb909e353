"""report.html from run folders: sections, plots, escaping, calibration, missing files."""

from __future__ import annotations

import json
import re
import sys

import pytest
from typer.testing import CliRunner

import tunelab
from tests.conftest import make_reviews, tiny_run_config
from tests.unit.evaluation import synthetic_runs as runs
from tunelab.errors import UserError
from tunelab.evaluation.calibration import reliability
from tunelab.evaluation.report import build_report
from tunelab.evaluation.report_tagging import (
    BOUNDARY,
    MISSED,
    SPURIOUS,
    WRONG_TYPE,
    span_errors,
    spans_of,
)


def plots_of(page: str) -> list[str]:
    """The data-plot names on the page, after checking the count the page claims."""
    names = re.findall(r'<figure class="plot" data-plot="([^"]+)">\s*<svg', page)
    claimed = re.search(r'<meta name="plots" content="(\d+)">', page)
    assert claimed and int(claimed.group(1)) == len(names) == page.count("data-plot=")
    return names


def section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', page)


def test_reliability_matches_a_hand_computed_ece():
    scores, correct = zip(*runs.CALIBRATION_ROWS, strict=True)
    result = reliability(scores, correct)
    assert result["ece"] == pytest.approx(runs.EXPECTED_ECE)  # 0.15
    top = result["bins"][9]
    assert (top["count"], top["confidence"], top["accuracy"]) == (4, pytest.approx(0.95), 0.75)
    assert sum(b["count"] for b in result["bins"]) == 6
    # bins are (low, high]: 0.6 belongs to the sixth bin, 0 to the first, 1 to the last
    edges = reliability([0.0, 0.6, 1.0], [1, 1, 1])["bins"]
    assert [b["count"] for b in edges] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert reliability([0.8, 0.8], [1, 1])["ece"] == pytest.approx(0.2)  # underconfident


def test_classification_report_has_every_section_plot_and_escapes_text(tmp_path):
    run = runs.classification_run(tmp_path / "run")
    page = build_report(run, explanations=False).read_text(encoding="utf-8")
    assert section_ids(page) == [
        "config",
        "data",
        "training",
        "metrics",
        "classes",
        "errors",
        "explanations",
    ]
    assert sorted(plots_of(page)) == [
        "confusion-matrix",
        "loss-curve",
        "metric-curve",
        "per-class-scores",
        "reliability-diagram",
    ]
    assert "<details><summary>The resolved config" in page and "task: text-classification" in page
    assert "train: 40 rows, 2 exact / 3 near duplicates" in page  # the task's doctor summary
    assert f"Expected calibration error: <b>{runs.EXPECTED_ECE:.4f}</b>" in page
    # user text never reaches the page as markup
    assert "<script>" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold" in page
    # the most confident wrong prediction leads the worst errors
    errors = page[page.index('<section id="errors">') :]
    assert errors.index("&lt;script&gt;") < errors.index("review number 5")
    assert "not requested" in page[page.index('<section id="explanations">') :]
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network


def test_the_data_section_says_the_median_text_and_when_it_is_past_the_limit(tmp_path):
    run = runs.classification_run(tmp_path / "run")
    page = build_report(run, explanations=False).read_text(encoding="utf-8")
    assert "Token limit 64; median training text 20.0 tokens; 5.0% of training" in page
    report_file = run / "data_report.json"
    data_report = json.loads(report_file.read_text(encoding="utf-8"))
    data_report["tokens"].update(p50=None, truncated_share=0.8)  # most rows cut when counted
    report_file.write_text(json.dumps(data_report), encoding="utf-8")
    page = build_report(run, explanations=False).read_text(encoding="utf-8")
    assert "Token limit 64; the median training text is longer than the model takes" in page
    assert "None" not in page[page.index('<section id="data">') :][:2000]


def test_token_classification_report_counts_each_kind_of_span_error(tmp_path):
    page = build_report(runs.token_run(tmp_path / "run")).read_text(encoding="utf-8")
    assert sorted(plots_of(page)) == [
        "entity-confusion",
        "loss-curve",
        "metric-curve",
        "per-type-scores",
        "span-errors",
    ]
    assert {"types", "errors", "worst", "explanations"} <= set(section_ids(page))
    assert (
        "5 span errors over 4 test sentences: 2 missed, 1 spurious, 1 wrong type, "
        "1 wrong boundary" in page
    )
    assert "<script>" not in page and "&lt;script&gt;<sub>ORG</sub>" in page
    assert "北京 (LOC)" in page and "北京 (ORG)" in page  # the wrong-type pair, as text


def test_span_errors_on_a_hand_made_sentence():
    gold = [(0, 2, "PER"), (3, 5, "LOC"), (6, 8, "ORG"), (9, 10, "PER"), (12, 14, "LOC")]
    pred = [(0, 2, "LOC"), (3, 4, "LOC"), (9, 10, "PER"), (10, 11, "PER"), (15, 16, "ORG")]
    found = span_errors(gold, pred)
    assert found == [
        (WRONG_TYPE, (0, 2, "PER"), (0, 2, "LOC")),
        (BOUNDARY, (3, 5, "LOC"), (3, 4, "LOC")),
        (MISSED, (6, 8, "ORG"), None),
        (MISSED, (12, 14, "LOC"), None),
        (SPURIOUS, None, (10, 11, "PER")),
        (SPURIOUS, None, (15, 16, "ORG")),
    ]
    # plain tags: every token is a span, so errors are tag confusions
    assert span_errors(spans_of(["NN", "VV"], "plain"), spans_of(["NN", "NN"], "plain")) == [
        (WRONG_TYPE, (1, 2, "VV"), (1, 2, "NN"))
    ]


def test_generation_report_shows_samples_lengths_and_worst_rows(tmp_path):
    page = build_report(runs.generation_run(tmp_path / "run")).read_text(encoding="utf-8")
    assert sorted(plots_of(page)) == ["length-histogram", "loss-curve", "row-score-histogram"]
    assert section_ids(page) == [
        "config",
        "data",
        "training",
        "metrics",
        "samples",
        "lengths",
        "errors",
    ]
    assert "<script>" not in page and "show a &lt;b&gt;page&lt;/b&gt;" in page
    assert "1 of 4 outputs are empty." in page
    worst = page[page.index('<section id="errors">') :]
    # the empty output scores 0 and leads; the exact copy scores 100 and comes last
    assert worst.index("show a &lt;b&gt;page") < worst.index("list directory contents")


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        (runs.multi_label_run, ["per-class-scores", "reliability-diagram"]),
        (runs.regression_run, ["predicted-vs-true"]),
    ],
)
def test_multi_label_and_regression_runs(tmp_path, builder, expected):
    page = build_report(builder(tmp_path / "run"), explanations=False).read_text("utf-8")
    assert sorted(plots_of(page)) == expected
    assert "errors" in section_ids(page) and "<script>" not in page


def test_missing_optional_files_give_notes_not_errors(tmp_path):
    run = runs.classification_run(tmp_path / "run", with_history=False)
    for name in ("predictions.jsonl", "data_report.json", "model/config.json"):
        (run / name).unlink()
    metrics = (run / "metrics.json").read_text().replace('"test"', '"held_out"')
    (run / "metrics.json").write_text(metrics)
    page = build_report(run, explanations=False).read_text(encoding="utf-8")
    assert "No training history (history.json)" in page
    assert "No data_report.json" in page
    assert "No test split" in page and "No predictions.jsonl" in page
    assert sorted(plots_of(page)) == ["confusion-matrix", "per-class-scores"]  # validation's


def test_unfinished_or_missing_run_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"run folder .*nowhere does not exist"):
        build_report(tmp_path / "nowhere")
    run = runs.classification_run(tmp_path / "run")
    (run / "metrics.json").unlink()
    with pytest.raises(UserError, match=r"run folder .*run has no metrics.json: the run did not"):
        build_report(run)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(UserError, match=r"metrics.json is not valid JSON"):
        build_report(run)


def test_report_command_rebuilds_and_prints_the_path(tmp_path):
    from tunelab.cli import app

    run = runs.generation_run(tmp_path / "run")
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(run / "report.html")
    assert (run / "report.html").stat().st_size > 10_000
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "none")])
    assert isinstance(missing.exception, UserError)


def test_training_writes_the_report_with_explanations(tiny_bert, tmp_path, monkeypatch):
    reviews = make_reviews(200)
    reviews.loc[::5, "label"] = reviews.loc[::5, "label"].map(
        {"positive": "negative", "negative": "positive"}
    )  # every fifth label flipped: the test split is sure to hold errors to explain
    reviews.to_csv(tmp_path / "reviews.csv", index=False)
    config = tiny_run_config(
        tiny_bert, tmp_path / "reviews.csv", tmp_path / "run", training={"logging_steps": 4}
    )
    result = tunelab.train(config)
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert result["report"] == str(tmp_path / "run" / "report.html")
    assert sorted(plots_of(page)) == [
        "confusion-matrix", "loss-curve", "metric-curve", "per-class-scores",
        "reliability-diagram",
    ]  # fmt: skip
    explanations = page[page.index('<section id="explanations">') :]
    assert explanations.count("<h3>Text ") == 3  # the three worst errors, explained
    assert 'class="tl-ex"' in explanations and "<script" not in explanations

    # without Captum the same report says what to install instead of explaining
    monkeypatch.setitem(sys.modules, "captum.attr", None)  # the import now fails
    page = build_report(tmp_path / "run").read_text(encoding="utf-8")
    explanations = page[page.index('<section id="explanations">') :]
    assert "<h3>Text " not in explanations
    assert "No explanations: explanations need Captum" in explanations
    assert "pip install &#x27;tunelab[explain]&#x27;" in explanations  # the note, escaped
