"""Training progress as plain lines when stderr is not a terminal.

A tqdm bar redraws itself with carriage returns: in a terminal that is one live line, but in a
CI log, a ``nohup`` file or a web page's log tail it is thousands of fragments on one line.
There the bars are turned off and :class:`PlainProgress` writes a whole line now and then:
step/total, epoch, the last logged loss, speed and the time left.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from transformers import PrinterCallback, TrainerCallback

log = logging.getLogger("tunelab")

EVERY_SECONDS = 30.0  # a line at least this often in a long run
PARTS = 10  # and one at each tenth of the steps, so a short run shows its course too


def live_bars() -> bool:
    """Whether the Trainer's progress bars are shown: stderr is a terminal, where they redraw
    in place (elsewhere :class:`PlainProgress` writes lines)."""
    return sys.stderr.isatty()


def _clock() -> float:
    return time.monotonic()


class PlainProgress(TrainerCallback):
    """Writes what the run will do as it begins, then ``step 120/400 (30%), epoch 0.90/3, loss
    0.4127 (step 100), 5.20 steps/s, 0:00:54 left`` at each tenth of the steps, at least every
    ``every_seconds``, and at the last step; and a line with the scores after each
    evaluation."""

    def __init__(
        self,
        every_seconds: float = EVERY_SECONDS,
        parts: int = PARTS,
        clock: Callable[[], float] = _clock,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.every_seconds, self.parts, self.clock = every_seconds, parts, clock
        self.write = write or (lambda line: log.info("%s", line))
        self.started = self.last = 0.0
        self.first_step = 0
        self.next_part = 1
        self.loss: tuple[float, int] | None = None  # the last logged loss and its step

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = self.last = self.clock()
        self.first_step = state.global_step  # a resumed run: speed counts this process's steps
        total = max(state.max_steps, 1)
        self.next_part = state.global_step * self.parts // total + 1
        # a step of a large model on long rows can take minutes: say what is under way
        epochs = state.num_train_epochs
        run = f"{total} step{'s' * (total != 1)}" + (
            f" over {epochs:g} epoch{'s' * (epochs != 1)}" if epochs else "")  # fmt: skip
        if state.global_step:
            run = f"from step {state.global_step} of {run}"
        every, first = f"{self.every_seconds:g}", state.global_step + 1
        self.write(f"training: {run}; a line each tenth of them and at least every {every} s, "
                   f"the first after step {first}")  # fmt: skip

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if logs and "loss" in logs:
            self.loss = float(logs["loss"]), state.global_step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step, total, now = state.global_step, max(state.max_steps, 1), self.clock()
        part_reached = step * self.parts >= self.next_part * total
        if not (part_reached or step >= total or now - self.last >= self.every_seconds):
            return
        while self.next_part * total <= step * self.parts:
            self.next_part += 1
        self.last = now
        self.write(self.line(state, now))

    def line(self, state: Any, now: float) -> str:
        """The progress line for the Trainer's ``state`` at time ``now``."""
        step, total = state.global_step, max(state.max_steps, 1)
        parts = [f"step {step}/{total} ({step / total:.0%})"]
        if state.num_train_epochs:
            parts.append(f"epoch {state.epoch or 0:.2f}/{state.num_train_epochs:g}")
        if self.loss is not None:  # logged every logging_steps: say how old it is
            loss, at = self.loss
            parts.append(f"loss {loss:.4f}" + (f" (step {at})" if at != step else ""))
        done, seconds = step - self.first_step, now - self.started
        if done > 0 and seconds > 0:
            rate = done / seconds
            speed = f"{rate:.2f} steps/s" if rate >= 1 else f"{1 / rate:.1f} s/step"
            left = dt.timedelta(seconds=round((total - step) / rate))
            parts += [speed, f"{left} left"]
        return "training: " + ", ".join(parts)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        # the final held-out scores name their split (metric_key_prefix), evaluations during
        # training are "eval_"
        prefix = next((key[: -len("loss")] for key in metrics or {} if key.endswith("_loss")),
                      "eval_")  # fmt: skip
        scores = {
            key.removeprefix(prefix): value
            for key, value in (metrics or {}).items()
            if isinstance(value, (int, float)) and not key.endswith(("_runtime", "_per_second"))
        }
        scores.pop("epoch", None)
        best = str(getattr(args, "metric_for_best_model", None)).removeprefix("eval_")
        if best in scores:
            scores = {key: scores[key] for key in (best, "loss") if key in scores}
        shown = ", ".join(f"{key} {value:.4g}" for key, value in scores.items())
        if prefix != "eval_":
            self.write(f"{prefix.rstrip('_')} after training: {shown}")
            return
        self.write(f"evaluation at step {state.global_step}: {shown}")


def plain_progress(trainer: Any) -> None:
    """Without a terminal (the Trainer then has no bars: ``training_arguments``), swap the
    Trainer's printer of raw log dicts for :class:`PlainProgress` lines."""
    if live_bars():
        return
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(PlainProgress())
