"""Checked precision: a bf16 pass whose labels are fp32's, with only the close calls run twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_reviews
from tunelab.errors import UserError
from tunelab.inference import (
    forward_in_batches,
    resolve_precision,
    resolve_prediction_precision,
    top_two_gap,
)


def _sequence_setup(body: Path) -> tuple:
    """A 3-class head on a trained encoder whose classes 1 and 2 differ by a hair: some rows
    are clear calls for class 0, the others close calls between 1 and 2."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(body)
    torch.manual_seed(3)
    model = AutoModelForSequenceClassification.from_pretrained(body, num_labels=3)
    with torch.no_grad():
        weight = torch.randn_like(model.classifier.weight)
        weight[2] = weight[1] + 1e-3 * torch.randn_like(weight[1])
        model.classifier.weight.copy_(weight)
        model.classifier.bias.zero_()
    texts = list(make_reviews(300, seed=2)["text"])
    return model, tokenizer, dict(tokenizer(texts, truncation=True, max_length=64))


def test_checked_labels_are_fp32_labels_where_bf16_alone_changes_some(
    tiny_sentiment_body: Path,
) -> None:
    model, tokenizer, features = _sequence_setup(tiny_sentiment_body)
    exact = forward_in_batches(model, tokenizer, features, 16, "fp32")
    fast = forward_in_batches(model, tokenizer, features, 16, "bf16")
    # a random head's logits lie close together: bf16 alone flips some decisions
    assert (fast.argmax(-1) != exact.argmax(-1)).sum() > 0
    checked = forward_in_batches(model, tokenizer, features, 16, "checked", margin=top_two_gap)
    assert np.array_equal(checked.argmax(-1), exact.argmax(-1))
    # the rows far from a flip keep their bf16 logits: only the close ones ran twice
    kept_half = ~np.all(checked == exact, axis=-1)
    assert 0 < kept_half.sum() < len(checked)
    assert np.abs(checked - exact).max() < 0.1


def test_checked_runs_few_rows_in_fp32_alone(
    tiny_sentiment_body: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    model, tokenizer, features = _sequence_setup(tiny_sentiment_body)
    monkeypatch.setattr(copy, "deepcopy", lambda *args: pytest.fail("a bf16 copy for 5 rows"))
    few = {name: values[:5] for name, values in features.items()}
    exact = forward_in_batches(model, tokenizer, few, 16, "fp32")
    checked = forward_in_batches(model, tokenizer, few, 16, "checked", margin=top_two_gap)
    assert np.array_equal(checked, exact)  # under CHECK_ROWS rows: fp32 alone, not twice


def test_rows_whose_margin_is_not_a_number_run_again_in_fp32(tiny_sentiment_body: Path) -> None:
    model, tokenizer, features = _sequence_setup(tiny_sentiment_body)
    exact = forward_in_batches(model, tokenizer, features, 32, "fp32")
    checked = forward_in_batches(
        model, tokenizer, features, 32, "checked", margin=lambda logits: float("nan")
    )
    np.testing.assert_allclose(checked, exact, atol=1e-5)  # every row: fp32, other batches


def test_checked_without_a_margin_is_fp32(tiny_sentiment_body: Path) -> None:
    model, tokenizer, features = _sequence_setup(tiny_sentiment_body)
    exact = forward_in_batches(model, tokenizer, features, 32, "fp32")
    assert np.array_equal(forward_in_batches(model, tokenizer, features, 32, "checked"), exact)


def test_checked_per_token_labels_are_fp32_labels(tiny_sentiment_body: Path) -> None:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_sentiment_body)
    torch.manual_seed(4)
    model = AutoModelForTokenClassification.from_pretrained(tiny_sentiment_body, num_labels=5)
    with torch.no_grad():  # tags 3 and 4 a hair apart: close calls on every token
        model.classifier.weight[4] = model.classifier.weight[3] + 1e-4
    texts = list(make_reviews(120, seed=6)["text"])
    features = dict(tokenizer(texts, truncation=True, max_length=48))
    exact = forward_in_batches(model, tokenizer, features, 16, "fp32", ragged=True)
    fast = forward_in_batches(model, tokenizer, features, 16, "bf16", ragged=True)
    assert any((f.argmax(-1) != e.argmax(-1)).any() for f, e in zip(fast, exact, strict=True))
    checked = forward_in_batches(
        model, tokenizer, features, 16, "checked", ragged=True, margin=top_two_gap
    )
    for c, e in zip(checked, exact, strict=True):
        assert c.shape == e.shape
        assert np.array_equal(c.argmax(-1), e.argmax(-1))


def test_top_two_gap_is_the_least_gap_of_any_position() -> None:
    assert top_two_gap(np.array([0.5, 2.0, 1.5])) == pytest.approx(0.5)
    assert top_two_gap(np.array([[3.0, 0.0], [1.0, 1.25]])) == pytest.approx(0.25)
    assert top_two_gap(np.array([4.0])) == float("inf")


def test_multi_label_margin_is_the_distance_to_the_threshold_logit() -> None:
    from tunelab.tasks.text_classification import TextClassification

    task = TextClassification(labels=["a", "b"], problem_type="multi_label", threshold=0.5)
    margin = task._decision_margin()
    assert margin is not None
    assert margin(np.array([0.3, -2.0])) == pytest.approx(0.3)
    task.threshold = 0.8  # sigmoid(x) >= 0.8 where x >= log 4
    assert task._decision_margin()(np.array([1.0, 5.0])) == pytest.approx(np.log(4) - 1.0)
    task.problem_type = "regression"
    assert task._decision_margin() is None


def test_unknown_precision_names_the_value_and_the_choices() -> None:
    with pytest.raises(UserError, match="'fp8' is not one of auto, checked, bf16"):
        resolve_precision("fp8")


def test_auto_prediction_precision_follows_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import tunelab.inference as inference

    monkeypatch.setattr(inference, "resolve_precision", lambda requested: "bf16")
    assert resolve_prediction_precision("auto") == "checked"
    monkeypatch.setattr(inference, "resolve_precision", lambda requested: "fp32")
    assert resolve_prediction_precision("auto") == "fp32"
    assert resolve_prediction_precision("fp32") == "fp32"
    monkeypatch.setattr(inference, "resolve_precision", lambda requested: "bf16")
    assert resolve_prediction_precision("auto", rows=65) == "checked"
    monkeypatch.setattr(inference, "resolve_precision", lambda requested: pytest.fail("probed"))
    assert resolve_prediction_precision("auto", rows=64) == "fp32"  # checked would be fp32


def test_checked_on_half_weights_makes_no_copy(
    tiny_sentiment_body: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    import torch

    model, tokenizer, features = _sequence_setup(tiny_sentiment_body)
    model = model.to(torch.bfloat16)
    own = forward_in_batches(model, tokenizer, features, 32, "fp32")

    def no_copy(value: object, memo: object = None) -> object:
        raise AssertionError("a half-precision model was copied")

    monkeypatch.setattr(copy, "deepcopy", no_copy)
    checked = forward_in_batches(model, tokenizer, features, 32, "checked", margin=top_two_gap)
    assert np.array_equal(checked.argmax(-1), own.argmax(-1))


def test_the_checked_log_line_names_the_rows_it_is_about(
    tiny_sentiment_body: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run scores validation and test one after the other: each line says which."""
    import logging

    from tunelab.inference import naming_rows

    model, tokenizer, features = _sequence_setup(tiny_sentiment_body)
    with caplog.at_level(logging.INFO, logger="tunelab.inference"):
        with naming_rows("validation"):
            forward_in_batches(model, tokenizer, features, 16, "checked", margin=top_two_gap)
        forward_in_batches(model, tokenizer, features, 16, "checked", margin=top_two_gap)
    lines = [r.getMessage() for r in caplog.records if "rows in fp32 as well" in r.getMessage()]
    assert len(lines) == 2
    assert lines[0].startswith("prediction of the validation rows in bfloat16, ")
    assert lines[1].startswith("prediction in bfloat16, ")


def test_checked_runs_fp32_alone_where_most_calibration_rows_are_close(
    tiny_sentiment_body: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Re-running most rows would cost more than the half-precision pass saves."""
    import logging

    from tunelab import inference

    model, tokenizer, features = _sequence_setup(tiny_sentiment_body)
    exact = forward_in_batches(model, tokenizer, features, 16, "fp32")
    monkeypatch.setattr(inference, "CHECK_BREAK_EVEN", 0.0)  # any close calibration row
    with caplog.at_level(logging.INFO, logger="tunelab.inference"):
        checked = forward_in_batches(model, tokenizer, features, 16, "checked", margin=top_two_gap)
    assert np.allclose(checked, exact, atol=1e-5)  # every row's logits are fp32's
    assert "prediction in fp32, all 300 rows: " in caplog.text
    monkeypatch.setattr(inference, "CHECK_BREAK_EVEN", 1.0)  # never: the rows keep bf16's
    mixed = forward_in_batches(model, tokenizer, features, 16, "checked", margin=top_two_gap)
    assert not np.allclose(mixed, exact, atol=1e-5)
    assert np.array_equal(mixed.argmax(-1), exact.argmax(-1))
