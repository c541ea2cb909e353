"""Old import paths of modules that moved: each name is forwarded with a DeprecationWarning."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def forward(old: str, new_homes: tuple[str, ...], name: str) -> Any:
    """``name`` from the first of ``new_homes`` (module paths) that has it, with a warning
    naming where to import it from now.

    Raises:
        AttributeError: if none of them has ``name``, as for any missing module attribute.
    """
    for path in new_homes:  # imported on access only: a new home may sit above the old layer
        module = importlib.import_module(path)
        if hasattr(module, name):
            warnings.warn(
                f"{old} is deprecated; import {name} from {path}", DeprecationWarning, stacklevel=3
            )
            return getattr(module, name)
    raise AttributeError(f"module {old!r} has no attribute {name!r}")
