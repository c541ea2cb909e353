"""The Task protocol: what the trainer, evaluator and predictor need from every task.

Shared code never branches on the task name; whatever differs between tasks lives in the
task's own module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd


class Task(Protocol):
    """One kind of problem (text classification, token classification, ...)."""

    name: str
    text_column: str
    text_pair_column: str | None
    label_column: str
    main_metric: str  # picks the best checkpoint and leads every summary
    # single_label, multi_label, regression (text), sequence (tags), generation; only
    # single_label data is stratified when split and may train few-shot
    problem_type: str
    labels: list[str]  # the names the model predicts, in id order; empty without labels

    # capabilities that shared code reads instead of testing the task's name
    explains: ClassVar[str | None]  # what `tunelab explain` attributes: "text", "tokens", None
    exportable: ClassVar[tuple[str, ...]]  # formats `tunelab export` writes: ("onnx",) or ()
    search_batch_sizes: ClassVar[tuple[int, ...]]  # the default search space's batch sizes
    # the task's sections of report.html: (run folder, plots) -> TaskReport
    report_sections: ClassVar[Callable[[Any, Any], Any]]

    @classmethod
    def from_run_config(cls, config: Any) -> Task:
        """The task a :class:`tunelab.config.RunConfig` describes."""
        ...

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> Task:
        """The task of a saved model, from its ``config.tunelab`` metadata and config."""
        ...

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        """``main_metric`` of a saved model, from its ``config.tunelab`` metadata alone."""
        ...

    greater_is_better: bool
    evaluated_splits: tuple[str, ...]  # held-out splits the model predicts after training

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        """Columns the data must have, each mapped to the config option that names it."""
        ...

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """Check a file's rows for the task's columns and bring them into the task's shape."""
        ...

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """The data doctor's report on the splits, for ``data_report.json``."""
        ...

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        """The few lines of the doctor's findings that ``tunelab train`` prints."""
        ...

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Cleaned rows of one split and what cleaning changed."""
        ...

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Last changes to the trained model before it is saved (e.g. generation settings)."""
        ...

    def auto_model_class(self) -> Any:
        """The ``AutoModelFor...`` class of this task."""
        ...

    def clean_text(self, text: str) -> str:
        """One input text as the model saw its training texts (normalisation, if any)."""
        ...

    def targets(self, frame: pd.DataFrame) -> Any:
        """The training targets of labelled rows: class ids (single-label), label vectors or
        values; tasks without labels (generation) have none."""
        ...

    def fit_labels(self, train: pd.DataFrame) -> None:
        """Learn the label space from the training rows (fails on unusable labels)."""
        ...

    def check_labels(self, frame: pd.DataFrame) -> None:
        """Fail if held-out rows carry labels that training never saw."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What a saved model must remember to predict like this task (JSON-able)."""
        ...

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        """The model for this task, from a resolved model source."""
        ...

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        """Untruncated token count of each row."""
        ...

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """Model features (a ``datasets.Dataset``) with labels and a ``length`` column."""
        ...

    def loss_function(
        self, train: pd.DataFrame, class_weights: str, label_smoothing: float
    ) -> tuple[Any, dict[str, Any]]:
        """A replacement loss for imbalanced data (or ``None``), and what was decided."""
        ...

    def collator(self, tokenizer: Any) -> Any:
        """Batches features with dynamic padding."""
        ...

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> Any:  # fmt: skip
        """Model outputs for the rows of ``frame`` (what evaluate/predictions read)."""
        ...

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Shrink logits during evaluation in training (``preprocess_logits_for_metrics``)."""
        ...

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Flat metrics from the Trainer's ``(predictions, label_ids)``."""
        ...

    def calibrate(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        """Tune decision settings on validation outputs; returns what was chosen."""
        ...

    def evaluate_outputs(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        """All metrics for model outputs on labelled rows: flat scores plus details."""
        ...

    def predictions(self, outputs: np.ndarray, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One JSON-able record per row (with the gold target where the row has one)."""
        ...

    def learning_warning(self, scores: dict[str, Any], examples: int) -> str | None:
        """A sentence saying the model learned nothing (one class, only ``O``, empty or
        repeated text), judged from flat ``scores`` on ``examples`` rows; ``None`` if it
        learned."""
        ...

    def baseline_outputs(self, splits: dict[str, pd.DataFrame], seed: int = 0) -> dict[str, Any]:
        """A cheap classical model fit on ``splits['train']``: its outputs on the validation
        and test rows, scored like the model's by :meth:`evaluate_outputs`; ``{}`` if the task
        has none."""
        ...
