"""Deprecated: moved to :mod:`tunelab.studies.search` (it calls the API, so it sits above it)."""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    from tunelab.studies import search  # imported on access only: it sits above this layer

    if not hasattr(search, name):
        raise AttributeError(f"module 'tunelab.training.search' has no attribute {name!r}")
    warnings.warn(
        f"tunelab.training.search is deprecated; import {name} from tunelab.studies.search",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(search, name)
