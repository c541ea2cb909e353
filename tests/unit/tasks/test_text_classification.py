import numpy as np
import pandas as pd
import pytest

from tunelab.errors import UserError
from tunelab.tasks.text_classification import TextClassification


def _frame(labels, source="train.csv"):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(len(labels))], "label": labels})
    frame.index = range(1, len(frame) + 1)
    frame.attrs["source"] = source
    return frame


def test_integer_labels_are_one_class_space_sorted_numerically():
    task = TextClassification()
    task.fit_labels(_frame([2, "10", 1.0, "1", 2]))
    assert task.problem_type == "single_label"
    assert task.labels == ["1", "2", "10"]
    assert task.targets(_frame(["10", 1])).tolist() == [2, 0]


def test_lists_mean_multi_label_and_separator_splits_strings():
    task = TextClassification()
    task.fit_labels(_frame([["a", "b"], ["b"], []]))
    assert task.problem_type == "multi_label"
    assert task.targets(_frame([["b"], ["a", "b"]])).tolist() == [[0, 1], [1, 1]]
    task = TextClassification(label_separator="|")
    task.fit_labels(_frame(["sport|news", "news", "tech"]))
    assert task.labels == ["news", "sport", "tech"]


def test_fractions_mean_regression():
    task = TextClassification()
    task.fit_labels(_frame(["0.5", 1.25, "3"]))
    assert task.problem_type == "regression"
    assert task.targets(_frame(["0.5"])).dtype == np.float32


def test_regression_label_that_is_not_a_number_names_the_row():
    task = TextClassification(problem_type="regression")
    with pytest.raises(UserError, match=r"train.csv row 2: label 'high'"):
        task.fit_labels(_frame(["0.5", "high"]))


def test_one_class_is_an_error():
    with pytest.raises(UserError, match=r"only one class 'pos' in column 'label'"):
        TextClassification().fit_labels(_frame(["pos", "pos"]))


def test_unseen_label_in_held_out_data_names_file_row_and_label():
    task = TextClassification()
    task.fit_labels(_frame(["pos", "neg"]))
    with pytest.raises(UserError, match=r"test.csv row 2 has label 'neutral'"):
        task.check_labels(_frame(["pos", "neutral"], source="test.csv"))


def test_single_label_evaluation_and_predictions():
    task = TextClassification()
    task.fit_labels(_frame(["neg", "pos"]))
    frame = _frame(["pos", "neg", "pos"])
    logits = np.array([[0.0, 2.0], [1.0, 0.0], [3.0, 0.0]], dtype=np.float32)
    result = task.evaluate_outputs(logits, frame)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["confusion_matrix"]["matrix"] == [[1, 0], [1, 1]]
    assert result["per_class"]["pos"]["recall"] == pytest.approx(0.5)
    records = task.predictions(logits, frame)
    assert records[0]["label"] == "pos" and records[0]["gold"] == "pos"
    assert records[0]["score"] == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-5)
    assert sum(records[1]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_multi_label_threshold_is_tuned_on_validation():
    task = TextClassification()
    task.fit_labels(_frame([["a"], ["b"], ["a", "b"]]))
    frame = _frame([["a"], ["b"], ["a", "b"], []])
    # Every true label scores 0.3 and every false one 0.1: 0.5 finds nothing, 0.2 all.
    probabilities = np.array([[0.3, 0.1], [0.1, 0.3], [0.3, 0.3], [0.1, 0.1]])
    logits = np.log(probabilities / (1 - probabilities))
    assert task.evaluate_outputs(logits, frame)["f1_micro"] == 0.0
    chosen = task.calibrate(logits, frame)
    assert 0.1 < chosen["threshold"] <= 0.3
    assert task.evaluate_outputs(logits, frame)["f1_micro"] == 1.0
    assert task.predictions(logits, frame)[2]["labels"] == ["a", "b"]


def test_regression_metrics():
    task = TextClassification(problem_type="regression")
    task.fit_labels(_frame(["0.5", "1.5", "2.5"]))
    result = task.evaluate_outputs(np.array([[0.5], [1.5], [3.5]]), _frame(["0.5", "1.5", "2.5"]))
    assert result["mae"] == pytest.approx(1 / 3)
    assert result["spearman"] == pytest.approx(1.0)
