"""Deprecated: moved to :mod:`tunelab.studies.search` (it calls the API, so it sits above it)."""

from __future__ import annotations

from typing import Any

from tunelab.training.moved import forward


def __getattr__(name: str) -> Any:
    return forward("tunelab.training.search", ("tunelab.studies.search",), name)
