"""A new task is a class and one registry entry: this one is defined only in this file, and
trains, evaluates, predicts and reports through the public API without any other change."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

import tunelab
from tests.conftest import make_reviews, tiny_run_config
from tunelab.errors import UserError
from tunelab.evaluation.report_page import TaskReport, note, section
from tunelab.models.load import from_pretrained
from tunelab.tasks import TASKS
from tunelab.tasks.base import DataFit, TrainerSetup, standard_trainer_setup


class ReviewPolarity:
    """Positive or negative reviews, written from plain Hugging Face pieces."""

    name = "toy-polarity"
    text_pair_column = None
    problem_type = "single_label"
    main_metric = "accuracy"
    greater_is_better = True
    evaluated_splits = ("validation", "test")
    explains = None
    exportable = ()
    embeds = False
    search_batch_sizes = (16,)
    scored_before_training = False
    baseline_method = ""
    model_kind = "encoder"
    trains_few_shot = False
    takes_virtual_tokens = True
    packs_rows = False
    batch_tokens_from_rows = True  # its collator only pads the encoded rows
    doctor_checks = None
    input_kind = "text"

    def __init__(self, text_column: str = "text", label_column: str = "label") -> None:
        self.text_column, self.label_column = text_column, label_column
        self.labels = ["negative", "positive"]

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        return "accuracy"

    @classmethod
    def from_run_config(cls, config: Any) -> ReviewPolarity:
        return cls(config.data.text_column, config.data.label_column)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> ReviewPolarity:
        return cls(meta["text_column"])

    @staticmethod
    def report_sections(run: Any, plots: Any) -> TaskReport:
        split, scores = run.scores()
        line = f"{split} accuracy of the toy task: {scores.get('accuracy', 0):.3f}"
        return TaskReport([section("toy", "Polarity", [note(line)])])

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        columns = {self.text_column: "data.text_column"}
        return {**columns, self.label_column: "data.label_column"} if with_labels else columns

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        return DataFit(1, "text and label columns") if "text" in frame.columns else None

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        missing = [c for c in self.required_columns(with_labels) if c not in frame.columns]
        if missing:
            raise UserError(f"the data has no column '{missing[0]}'")
        shaped = frame[list(self.required_columns(with_labels))].astype(str)
        shaped.attrs = dict(frame.attrs)
        return shaped

    def diagnose(self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int):
        return {}

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        return []

    def clean(self, frame: pd.DataFrame, clean: Any, is_training: bool):
        return frame, {}

    def finish(self, model: Any, tokenizer: Any) -> None:
        return None

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def processor_class(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer

    def clean_text(self, text: str) -> str:
        return text

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        return np.array([self.labels.index(label) for label in frame[self.label_column]])

    def fit_labels(self, train: pd.DataFrame) -> None:
        self.check_labels(train)

    def check_labels(self, frame: pd.DataFrame) -> None:
        unknown = set(frame[self.label_column]) - set(self.labels)
        if unknown:
            raise UserError(f"labels must be positive or negative, not {sorted(unknown)}")

    def metadata(self) -> dict[str, Any]:
        return {"task": self.name, "text_column": self.text_column}

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        return from_pretrained(
            self.auto_model_class(), source, num_labels=2, id2label=dict(enumerate(self.labels)),
            label2id={label: i for i, label in enumerate(self.labels)}, **load_kwargs,
        )  # fmt: skip

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        return np.array([len(ids) for ids in tokenizer(list(frame[self.text_column]))["input_ids"]])

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        from datasets import Dataset

        encoded = tokenizer(list(frame[self.text_column]), truncation=True, max_length=max_length)
        features = {**encoded, "length": [len(ids) for ids in encoded["input_ids"]]}
        if self.label_column in frame:
            features["labels"] = self.targets(frame).tolist()
        return Dataset.from_dict(features)

    def loss_function(self, train: pd.DataFrame, class_weights: str, label_smoothing: float):
        return None, {}

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def trainer_setup(self, model, tokenizer, loss, train, validation) -> TrainerSetup:
        return standard_trainer_setup(self, tokenizer, loss, validation is not None)

    def forward(self, model, tokenizer, frame, max_length, batch_size, precision="fp32"):
        import torch

        model.eval()
        texts, logits = list(frame[self.text_column]), [np.zeros((0, 2), dtype=np.float32)]
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(
                    texts[start : start + batch_size], truncation=True, max_length=max_length,
                    padding=True, return_tensors="pt",
                )  # fmt: skip
                batch = {key: value.to(model.device) for key, value in batch.items()}
                logits.append(model(**batch).logits.float().cpu().numpy())
        return np.concatenate(logits)

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        return logits.argmax(-1)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        predicted, gold = eval_pred
        return {"accuracy": float((np.asarray(predicted) == np.asarray(gold)).mean())}

    def calibrate(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        return {}

    def evaluate_outputs(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        correct = outputs.argmax(-1) == self.targets(frame)
        return {"accuracy": float(correct.mean()), "examples": len(frame)}

    def predictions(self, outputs: np.ndarray, frame: pd.DataFrame) -> list[dict[str, Any]]:
        records = []
        for (_, row), ids in zip(frame.iterrows(), outputs.argmax(-1), strict=True):
            record = {"text": row[self.text_column], "label": self.labels[int(ids)]}
            if self.label_column in frame:
                record["gold"] = row[self.label_column]
            records.append(record)
        return records

    def learning_warning(self, scores: dict[str, Any], examples: int) -> str | None:
        return None

    def baseline_outputs(self, splits: dict[str, pd.DataFrame], seed: int = 0) -> dict:
        return {}


def test_a_task_defined_in_a_test_trains_evaluates_predicts_and_reports(
    tiny_bert, tmp_path, monkeypatch
):
    monkeypatch.setitem(TASKS, ReviewPolarity.name, ReviewPolarity)  # the one registry line
    data = tmp_path / "reviews.csv"
    make_reviews(300).to_csv(data, index=False)
    config = {**tiny_run_config(tiny_bert, data, tmp_path / "run"), "task": ReviewPolarity.name}

    result = tunelab.train(config)

    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["accuracy"] >= 0.8 and metrics["test"]["examples"] == 30
    assert result["metrics"]["test"] == metrics["test"]
    assert "accuracy of the toy task" in (run / "report.html").read_text(encoding="utf-8")

    held_out = tmp_path / "more.csv"
    make_reviews(60, seed=9).to_csv(held_out, index=False)
    scores = tunelab.evaluate(run, held_out)
    assert scores["examples"] == 60 and scores["accuracy"] >= 0.7

    records = tunelab.predict(result["model_dir"], texts=["很好很好喜欢", "太糟糕了失望"])
    assert [r["text"] for r in records] == ["很好很好喜欢", "太糟糕了失望"]
    assert {r["label"] for r in records} <= {"positive", "negative"}


def test_an_unregistered_task_name_is_one_clear_error(tmp_path):
    config = {"task": "toy-polarity", "data": {"train": str(tmp_path / "a.csv")}}
    with pytest.raises(UserError, match="task 'toy-polarity' is not a task tunelab knows"):
        tunelab.train(config)
