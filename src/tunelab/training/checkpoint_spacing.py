"""Checkpoints spaced by training time rather than written after every epoch.

Without a validation split a run checkpoints at epoch ends, only so that a crash loses little
work (Ctrl-C saves one of its own, and the last epoch always saves one, from which ``--resume``
continues with more epochs). When epochs take seconds, writing the weights and the optimizer's
state after each costs more than a crash could lose: an epoch's checkpoint is skipped until
``training.checkpoint_minutes`` of training have passed since the last one.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


class SpacedCheckpoints(TrainerCallback):  # type: ignore[misc]
    """Cancels an epoch-end save that comes sooner than ``minutes`` after the last save (or the
    start), unless it is the run's last step or the run is stopping (Ctrl-C, early stop)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self._since = time.monotonic()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._since = time.monotonic()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        last_step = state.max_steps > 0 and state.global_step >= state.max_steps
        if last_step or control.should_training_stop:
            return
        if time.monotonic() - self._since < self.seconds:
            control.should_save = False

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._since = time.monotonic()
