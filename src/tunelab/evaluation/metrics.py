"""Metrics as pure functions of targets and predictions (scikit-learn and scipy underneath)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function."""
    return 1.0 / (1.0 + np.exp(-logits))


def _averaged_scores(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for average in ("macro", "micro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        scores[f"precision_{average}"] = float(precision)
        scores[f"recall_{average}"] = float(recall)
        scores[f"f1_{average}"] = float(f1)
    return scores


def single_label_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> dict[str, float]:
    """Accuracy and macro/micro/weighted precision, recall and F1 over class ids."""
    labels = list(range(n_labels))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        **_averaged_scores(y_true, y_pred, labels),
    }


def multi_label_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Subset accuracy and macro/micro/weighted precision, recall and F1 on 0/1 indicator rows."""
    labels = list(range(y_true.shape[1]))
    return {
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        **_averaged_scores(y_true, y_pred, labels),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, MAE, Pearson and Spearman correlation (NaN-free: 0 when a side is constant)."""
    y_true, y_pred = (
        np.asarray(y_true, dtype=float).ravel(),
        np.asarray(y_pred, dtype=float).ravel(),
    )
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    return {
        "mse": float(mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "pearson": 0.0 if constant else float(pearsonr(y_true, y_pred)[0]),
        "spearman": 0.0 if constant else float(spearmanr(y_true, y_pred)[0]),
    }


def per_class_report(
    y_true: np.ndarray, y_pred: np.ndarray, names: list[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support for each class, keyed by class name."""
    report: dict[str, Any] = classification_report(
        y_true,
        y_pred,
        labels=list(range(len(names))),
        target_names=names,
        output_dict=True,
        zero_division=0,
    )
    return {name: {key: float(value) for key, value in report[name].items()} for name in names}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Confusion matrix with rows as true classes and columns as predicted classes."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(names))))
    return {"labels": names, "matrix": matrix.tolist()}


def best_threshold(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """The decision threshold in 0.05..0.95 that maximises micro-F1 on multi-label data."""
    candidates = np.round(np.arange(0.05, 0.96, 0.05), 2)
    scores = [
        f1_score(y_true, probabilities >= t, average="micro", zero_division=0) for t in candidates
    ]
    return float(candidates[int(np.argmax(scores))])
