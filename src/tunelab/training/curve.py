"""Deprecated: moved to :mod:`tunelab.studies.curve` (it calls the API, so it sits above it)
and :mod:`tunelab.evaluation.learning_curve` (the fit and the statistics, below it)."""

from __future__ import annotations

from typing import Any

from tunelab.training.moved import forward


def __getattr__(name: str) -> Any:
    homes = ("tunelab.studies.curve", "tunelab.evaluation.learning_curve")
    return forward("tunelab.training.curve", homes, name)
