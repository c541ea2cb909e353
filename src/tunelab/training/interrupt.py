"""Stopping a run safely: Ctrl-C saves a checkpoint, and resuming skips half-written ones.

The Trainer writes ``checkpoint-N`` in place and its ``trainer_state.json`` last, so a run
killed while saving leaves a folder without a readable state: :func:`last_complete_checkpoint`
passes over it to the one before.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

log = logging.getLogger("tunelab")


class StopOnInterrupt(TrainerCallback):
    """The first Ctrl-C asks the Trainer to save a checkpoint and stop after the current
    step; a second one aborts at once (the default handler is back by then)."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
        log.warning("Ctrl-C: saving a checkpoint after this step (press again to abort now)")

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (e.g. a search worker): leave Ctrl-C alone
            self._previous = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.interrupted:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._previous is not None and not self.interrupted:
            signal.signal(signal.SIGINT, self._previous)


class KillForTests(TrainerCallback):
    """Test hook: ``TUNELAB_TEST_KILL=step:N`` SIGKILLs the process when step N ends (before
    its checkpoint), ``save:N`` right after checkpoint N is written; ``int:N`` sends Ctrl-C
    (SIGINT) when step N ends."""

    def __init__(self, spec: str) -> None:
        when, _, step = spec.partition(":")
        self.when, self.step = when, int(step)

    def _maybe_kill(self, when: str, state: Any, sig: int = signal.SIGKILL) -> None:
        if when == self.when and state.global_step == self.step:
            os.kill(os.getpid(), sig)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_kill("step", state)
        self._maybe_kill("int", state, signal.SIGINT)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._maybe_kill("save", state)


def safety_callbacks() -> list[Any]:
    """Callbacks every training run gets: Ctrl-C handling, and the kill hook under tests."""
    callbacks: list[Any] = [StopOnInterrupt()]
    if os.environ.get("TUNELAB_TEST_KILL"):
        callbacks.append(KillForTests(os.environ["TUNELAB_TEST_KILL"]))
    return callbacks


def is_complete_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint the Trainer finished writing."""
    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def last_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` folder under ``output_dir``, if any."""
    if not output_dir.is_dir():
        return None
    found = sorted(
        (int(p.name.split("-")[1]), p)
        for p in output_dir.glob("checkpoint-*")
        if p.is_dir() and p.name.split("-")[1].isdigit()
    )
    for _, folder in reversed(found):
        if is_complete_checkpoint(folder):
            return str(folder)
        log.warning("--resume: skipping %s, which was not completely written", folder)
    return None
