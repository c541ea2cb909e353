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
    nothing = task.evaluate_outputs(logits, frame)
    assert nothing["f1_micro"] == 0.0
    assert "finds no label in any row" in task.learning_warning(nothing, 4)
    chosen = task.calibrate(logits, frame)
    assert 0.1 < chosen["threshold"] <= 0.3
    result = task.evaluate_outputs(logits, frame)
    assert result["f1_micro"] == 1.0
    # each label's own scores over the rows that carry it (what the report's table shows)
    assert result["per_class"]["b"] == {"precision": 1.0, "recall": 1.0, "f1-score": 1.0,
                                        "support": 2.0}  # fmt: skip
    assert task.predictions(logits, frame)[2]["labels"] == ["a", "b"]
    assert task.learning_warning(result, 4) is None
    # 'b' missed in both of its rows: named, with its count
    partial = logits.copy()
    partial[:, 1] = -5.0
    missed = task.learning_warning(task.evaluate_outputs(partial, frame), 4)
    assert missed.startswith("the model never finds 'b' (2 rows)")


def test_regression_metrics():
    task = TextClassification(problem_type="regression")
    task.fit_labels(_frame(["0.5", "1.5", "2.5"]))
    result = task.evaluate_outputs(np.array([[0.5], [1.5], [3.5]]), _frame(["0.5", "1.5", "2.5"]))
    assert result["mae"] == pytest.approx(1 / 3)
    assert result["spearman"] == pytest.approx(1.0)


def test_the_multi_label_baseline_is_decided_at_its_own_best_threshold():
    task = TextClassification()
    task.fit_labels(_frame([["a"], ["b"], ["a", "b"]]))
    validation = _frame([["a"], ["b"], ["a", "b"], []])
    # the model separates at 0.7 (true 0.8, false 0.6); the baseline at 0.2 (0.3 vs 0.1)
    model = np.array([[0.8, 0.6], [0.6, 0.8], [0.8, 0.8], [0.6, 0.6]])
    baseline = np.array([[0.3, 0.1], [0.1, 0.3], [0.3, 0.3], [0.1, 0.1]])
    task.calibrate(np.log(model / (1 - model)), validation)
    assert 0.6 < task.threshold <= 0.8
    shifted = task._at_own_threshold(
        {"validation": np.log(baseline / (1 - baseline))}, {"validation": validation}
    )
    # at the model's threshold the raw baseline predicts nothing; shifted, it is perfect
    assert task.evaluate_outputs(shifted["validation"], validation)["f1_micro"] == 1.0
    # a threshold the user set is kept for both (nothing was tuned)
    fixed = TextClassification(threshold=0.5)
    fixed.fit_labels(_frame([["a"], ["b"], ["a", "b"]]))
    raw = {"validation": np.log(baseline / (1 - baseline))}
    assert fixed._at_own_threshold(raw, {"validation": validation}) is raw


def test_rare_labels_weigh_more_in_the_multi_label_loss():
    import torch

    from tunelab.tasks.text_classification import positive_weighted_loss

    targets = np.zeros((100, 2), dtype=np.float32)
    targets[:50, 0] = 1  # 'common' on half the rows
    targets[:5, 1] = 1  # 'rare' on 5 of 100: 19 rows without it per row with it
    loss, info = positive_weighted_loss(targets, ["common", "rare"], "auto")
    assert info["imbalance_ratio"] == 10.0
    assert info["class_weights"] == {"common": 1.0, "rare": 19.0}
    logits = torch.zeros(1, 2)
    missed = loss({"logits": logits}, torch.tensor([[0.0, 1.0]]))
    # at logit 0 the absent common label costs log 2 and the missed rare one 19 times that;
    # the loss is their mean
    assert float(missed) == pytest.approx((1 + 19) * np.log(2) / 2, rel=1e-5)
    assert positive_weighted_loss(targets, ["common", "rare"], "none")[0] is None
    balanced = targets.copy()
    balanced[:50, 1] = 1
    assert positive_weighted_loss(balanced, ["common", "rare"], "auto")[0] is None


@pytest.mark.parametrize("pairs", [False, True])
def test_rows_measured_once_encode_as_tokenising_them_again_does(tiny_bert, pairs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["好", "很好吃", "服务" * 5, "这家店的菜" * 9, "不错" * 3, "太" * 40, "差"]
    frame = pd.DataFrame({"text": texts, "label": ["a", "b", "a", "b", "a", "b", "a"]})
    if pairs:
        frame["second"] = ["还行" * (i % 4) for i in range(len(texts))]
    task = TextClassification(text_pair_column="second" if pairs else None)
    task.fit_labels(frame)
    cap = 21
    measured = task.measure(frame, tokenizer, cap)
    counted = task.token_lengths(frame, tokenizer)  # untruncated counts
    assert measured.lengths.tolist() == np.minimum(counted, cap).tolist()
    assert max(counted) > 20  # some rows are cut at the limits below, some fit them whole
    for max_length in (8, 16, 20, 30):  # 30: past the cap, so rows cut there count as long
        again = task.encode(frame, tokenizer, max_length)
        reused = task.encode(frame, tokenizer, max_length, measured=measured)
        assert reused.features == again.features
        assert reused.to_dict() == again.to_dict()
