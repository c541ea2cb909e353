"""Time the training steps alone (forward, backward, optimizer), without the evaluations and
checkpoint saves the Trainer's own runtime includes: the denominator of tokens/s and MFU."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


class StepTimer(TrainerCallback):  # type: ignore[misc]
    """Sums the wall time from each step's start to its end."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None
