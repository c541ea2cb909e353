"""Where a run's wall time goes: seconds per stage (reading and checking the data, loading
the model, tokenising, training, predicting the held-out rows, the baseline, saving, the
report), kept in ``metrics.json`` and logged at the end, so a slow run shows what to change.

Imports happen lazily inside the stages (torch and transformers load with the model), so
their time counts where they are first needed. Whatever no stage claims is ``other``:
choosing the precision, the learning checks, the model card.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class StageClock:
    """Sums wall time per named stage from the moment it is made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stages: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as ``name``; a stage entered twice adds up. Stages do not nest (the
        remainder, ``other``, would count a nested block twice)."""
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - begun

    def seconds(self) -> dict[str, float]:
        """Each stage's seconds in the order first entered, then ``other`` and ``total``
        (since the clock was made), rounded to 0.01 s."""
        total = time.perf_counter() - self.started
        other = max(0.0, total - sum(self.stages.values()))
        return {**{k: round(v, 2) for k, v in self.stages.items()},
                "other": round(other, 2), "total": round(total, 2)}  # fmt: skip

    def line(self) -> str:
        """``37.4 s: data 0.4 s, model 3.9 s, ...``, for the end of a run's log; stages that
        took under 0.05 s (a check with nothing to do) are left out of the line."""
        seconds = self.seconds()
        total = seconds.pop("total")
        shown = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items() if v >= 0.05)
        return f"{total:.1f} s: {shown}"
