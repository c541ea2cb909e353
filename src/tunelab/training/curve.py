"""Deprecated: moved to :mod:`tunelab.studies.curve` (it calls the API, so it sits above it)
and :mod:`tunelab.evaluation.learning_curve` (the fit and the statistics, below it)."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    # imported on access only: the study module sits above this layer
    from tunelab.evaluation import learning_curve
    from tunelab.studies import curve

    module = curve if hasattr(curve, name) else learning_curve
    if not hasattr(module, name):
        raise AttributeError(f"module 'tunelab.training.curve' has no attribute {name!r}")
    warnings.warn(
        f"tunelab.training.curve is deprecated; import {name} from {module.__name__}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(module, name)
