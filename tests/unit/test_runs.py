"""Run tracking: listing and comparing run folders, and the optional MLflow/TensorBoard loggers."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

import tunelab
from tests.conftest import make_reviews, tiny_run_config
from tunelab.cli import app
from tunelab.config import build_config
from tunelab.errors import UserError
from tunelab.runs import compare_runs, list_runs, main_metric
from tunelab.tasks.text_classification import TextClassification
from tunelab.tasks.token_classification import TokenClassification
from tunelab.training.tracking import check_trackers

HAS_MLFLOW = all(importlib.util.find_spec(m) for m in ("mlflow", "sqlalchemy", "alembic"))


def write_run(
    folder: Path,
    learning_rate: float = 3e-5,
    f1: float | None = 0.8,
    task: str = "text-classification",
    splits: tuple[str, ...] = ("validation", "test"),
    finished_at: float | None = None,
) -> Path:
    """A run folder as tunelab train leaves it (config.yaml; metrics.json unless f1 is None)."""
    folder.mkdir(parents=True)
    config = {
        "task": task,
        "output": str(folder),
        "seed": 42,
        "data": {"train": "data/reviews.csv", "validation": None},
        "model": {"name": "zh-bert-mini"},
        "training": {"epochs": 3.0, "learning_rate": learning_rate},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    if f1 is not None:
        scores = {
            split: {
                "examples": 100,
                "accuracy": f1 + 0.01,
                "f1_macro": f1 if split == "test" else f1 - 0.05,
                "per_class": {"positive": {"f1-score": f1}},
                "confusion_matrix": {"labels": ["a", "b"], "matrix": [[1, 0], [0, 1]]},
            }
            for split in splits
        }
        metrics = {"train": {"seconds": 12.5, "loss": 1.0 - f1, "precision": "bf16"}, **scores}
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        if finished_at is not None:
            os.utime(folder / "metrics.json", (finished_at, finished_at))
    return folder


# -- listing ------------------------------------------------------------------------------


def test_list_runs_finds_runs_two_levels_down_newest_first(tmp_path):
    write_run(tmp_path / "old", f1=0.7, finished_at=1_700_000_000)
    write_run(tmp_path / "search" / "trial-001", f1=0.9, finished_at=1_700_000_500)
    write_run(
        tmp_path / "only-validation", f1=0.6, splits=("validation",), finished_at=1_600_000_000
    )
    write_run(tmp_path / ".model.tmp123", f1=0.5)  # an atomic write in progress
    write_run(tmp_path / "a" / "b" / "too-deep", f1=0.5)
    runs = list_runs(tmp_path)
    assert [r["name"] for r in runs] == ["search/trial-001", "old", "only-validation"]
    newest = runs[0]
    assert newest["status"] == "finished"
    assert (newest["task"], newest["model"], newest["data"]) == (
        "text-classification", "zh-bert-mini", "data/reviews.csv"
    )  # fmt: skip
    assert (newest["split"], newest["metric"], newest["value"]) == ("test", "f1_macro", 0.9)
    assert newest["seconds"] == 12.5
    assert newest["finished"].startswith("2023-11-14T")  # 1_700_000_500 s, ISO with offset
    # without a test split, the validation score ranks the run
    assert (runs[2]["split"], runs[2]["value"]) == ("validation", pytest.approx(0.55))


def test_an_incomplete_run_is_listed_as_incomplete(tmp_path):
    write_run(tmp_path / "done", f1=0.8)
    write_run(tmp_path / "crashed", f1=None)
    runs = {r["name"]: r for r in list_runs(tmp_path)}
    assert runs["crashed"]["status"] == "incomplete"
    assert runs["crashed"]["value"] is None and runs["crashed"]["task"] == "text-classification"
    assert runs["done"]["status"] == "finished"


def test_listing_a_missing_folder_names_it(tmp_path):
    with pytest.raises(UserError, match="nowhere does not exist"):
        list_runs(tmp_path / "nowhere")


def test_main_metric_is_the_tasks_own():
    for problem_type in ("single_label", "multi_label", "regression"):
        task = SimpleNamespace(problem_type=problem_type)
        expected = TextClassification.main_metric.fget(task)
        assert main_metric("text-classification", {"problem_type": problem_type}, {}) == expected
    for scheme in ("bio", "bmes", "plain"):
        expected = TokenClassification.main_metric.fget(SimpleNamespace(scheme=scheme))
        assert main_metric("token-classification", {"scheme": scheme}, {}) == expected
    assert main_metric("seq2seq", {}, {"chrf": 30.0, "loss": 2.0}) == "chrf"
    assert main_metric("causal-lm", {}, {"loss": 2.0}) == "loss"


# -- comparing ----------------------------------------------------------------------------


def test_compare_shows_differing_config_and_metrics_side_by_side(tmp_path):
    a = write_run(tmp_path / "a", learning_rate=3e-5, f1=0.8)
    b = write_run(tmp_path / "b", learning_rate=1e-4, f1=0.7)
    result = compare_runs([a, b])
    assert result["runs"] == ["a", "b"]
    assert result["config"] == {"training.learning_rate": [3e-5, 1e-4]}  # equal keys left out
    assert result["metrics"]["test.f1_macro"] == [0.8, 0.7]
    assert result["metrics"]["validation.f1_macro"] == pytest.approx([0.75, 0.65])
    assert result["metrics"]["train.precision"] == ["bf16", "bf16"]
    assert result["best"]["test.f1_macro"] == [0]
    assert result["best"]["train.loss"] == [0]  # lower is better
    assert "validation.examples" not in result["best"]  # neither better nor worse
    assert not any("per_class" in key or "confusion" in key for key in result["metrics"])
    detailed = compare_runs([a, b], all_metrics=True)["metrics"]
    assert detailed["test.per_class.positive.f1-score"] == [0.8, 0.7]


def test_compare_names_a_folder_that_is_not_a_run(tmp_path):
    a = write_run(tmp_path / "a")
    with pytest.raises(UserError, match=r"notes is not a run folder.*config.yaml and metrics.json"):
        compare_runs([a, tmp_path / "notes"])
    with pytest.raises(UserError, match="at least two run folders, got 1"):
        compare_runs([a])


# -- real runs: compare on the command line, TensorBoard and MLflow logs -----------------------


@pytest.fixture(scope="module")
def two_runs(tiny_bert, tmp_path_factory):
    """Two tiny runs that differ only in learning rate, logged to TensorBoard (and MLflow)."""
    root = tmp_path_factory.mktemp("runs")
    data = root / "reviews.csv"
    make_reviews(120).to_csv(data, index=False)
    tracking = ["tensorboard", *(["mlflow"] if HAS_MLFLOW else [])]
    runs = []
    for name, rate in (("lr-3e-3", 3e-3), ("lr-1e-4", 1e-4)):
        config = tiny_run_config(tiny_bert, data, root / "lab" / name, training={"epochs": 1})
        config["training"]["learning_rate"] = rate
        config["training"]["logging_steps"] = 2
        config["tracking"] = tracking
        runs.append(tunelab.train(config))
    return root / "lab", runs


def test_cli_compare_shows_the_learning_rates_and_both_runs_main_metric(two_runs):
    lab, runs = two_runs
    done = CliRunner().invoke(app, ["runs", "compare", str(lab / "lr-3e-3"), str(lab / "lr-1e-4")])
    assert done.exit_code == 0, done.output
    config_part, metrics_part = done.output.split("metrics (* best)")
    rate_line = next(line for line in config_part.splitlines() if "training.learning_rate" in line)
    assert rate_line.split()[1:] == ["0.003", "0.0001"]
    assert "training.epochs" not in config_part  # the same in both
    f1_line = next(line for line in metrics_part.splitlines() if line.startswith("test.f1_macro"))
    for run in runs:
        assert f"{run['metrics']['test']['f1_macro']:.4f}" in f1_line
    listed = CliRunner().invoke(app, ["runs", str(lab), "--json"])
    assert listed.exit_code == 0, listed.output
    by_name = {r["name"]: r for r in json.loads(listed.output)}
    assert by_name["lr-1e-4"]["value"] == runs[1]["metrics"]["test"]["f1_macro"]
    table = CliRunner().invoke(app, ["runs", str(lab)])
    assert "lr-3e-3" in table.output and "test f1_macro" in table.output


def test_tensorboard_events_go_to_the_run_folder(two_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    lab, _ = two_runs
    events = list((lab / "lr-3e-3" / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file in <run>/tensorboard"
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    scalars = accumulator.Tags()["scalars"]
    assert "train/loss" in scalars and "eval/f1_macro" in scalars  # the Trainer's own logs
    assert "test/f1_macro" in scalars  # the final test score, added after training


@pytest.mark.skipif(not HAS_MLFLOW, reason="mlflow (tunelab[mlflow]) is not installed")
def test_mlflow_records_each_run_in_a_sqlite_store_beside_the_runs(two_runs):
    import mlflow

    lab, runs = two_runs
    client = mlflow.MlflowClient(f"sqlite:///{lab / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lab")  # named after the folder of runs
    assert experiment is not None
    recorded = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(recorded) == {"lr-3e-3", "lr-1e-4"}
    assert float(recorded["lr-1e-4"].data.params["learning_rate"]) == 1e-4
    assert "eval_f1_macro" in recorded["lr-3e-3"].data.metrics  # the Trainer's evaluations
    test_f1 = runs[0]["metrics"]["test"]["f1_macro"]
    assert recorded["lr-3e-3"].data.metrics["test_f1_macro"] == pytest.approx(test_f1)
    # artifacts beside the store, not in ./mlruns of whatever folder training ran in
    assert experiment.artifact_location == (lab / "mlartifacts").resolve().as_uri()


def test_tracking_accepts_only_known_trackers():
    with pytest.raises(UserError, match=r"tracking.*'wandb'.*allowed: 'mlflow' or 'tensorboard'"):
        build_config({"tracking": ["wandb"]})
    assert build_config({"tracking": "tensorboard"}).tracking == ["tensorboard"]


def test_a_missing_tracker_package_is_named_before_any_data_is_read(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(UserError, match=r"pip install 'tunelab\[mlflow\]'"):
        check_trackers(["mlflow"])
    # the data file does not exist: the tracker check comes first
    config = {"data": {"train": str(tmp_path / "missing.csv")}, "tracking": ["mlflow"]}
    with pytest.raises(UserError, match="mlflow"):
        tunelab.train(config)
