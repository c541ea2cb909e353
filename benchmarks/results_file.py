"""What the benchmark scripts share about their results file: read it, write it, hold a lock
while several runs add to it, and print mean ± sd over seeds."""

from __future__ import annotations

import contextlib
import fcntl
import json
import statistics
from collections.abc import Iterator
from pathlib import Path


def read_results(path: Path) -> dict:
    """The results so far (empty before the first run)."""
    return json.loads(path.read_text()) if path.exists() else {}


def write_results(path: Path, results: dict) -> None:
    """Write ``results`` as indented JSON, keeping non-ASCII text readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder/results.lock``: runs started side by side add their rows one at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def mean_sd(values: list[float], digits: int = 3) -> str:
    """``mean ± sd`` of the values (just the value for one, ``-`` for none)."""
    if not values:
        return "-"
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"
