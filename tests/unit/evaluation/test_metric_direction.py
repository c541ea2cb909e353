"""One rule says which way a metric improves, for run comparison, curves and searches."""

from __future__ import annotations

import pytest

from tunelab.evaluation.metric_direction import greater_is_better, task_metric_grows


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("f1_macro", True), ("test.accuracy", True), ("rouge1", True), ("chrf", True),
        ("train.samples_per_second", True), ("validation.loss", False), ("perplexity", False),
        ("train.throughput.mfu", True), ("train.throughput.tokens_per_second", True),
        ("rmse", False), ("calibration.ece", False), ("train.optimizer_seconds", False),
        ("train.peak_memory_mb", False), ("test.examples", None), ("train.steps", None),
    ],
)  # fmt: skip
def test_a_metric_name_says_which_way_it_improves(metric, expected):
    assert greater_is_better(metric) is expected


def test_a_tasks_main_metric_follows_the_task_and_unknown_names_grow():
    assert task_metric_grows("mse", "mse", False) is False
    assert task_metric_grows("loss", "f1_macro", True) is False  # a search on loss minimises
    assert task_metric_grows("f1_micro", "f1_macro", True) is True
    assert task_metric_grows("my_score", "loss", False) is True
