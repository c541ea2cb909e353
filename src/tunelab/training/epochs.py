"""How long a run trains: epochs raised on small data sets until the optimizer makes enough
steps.

At tunelab's batch of 32 a small training set gives few updates. 3 epochs of WNUT-17's 3,303
tweets (3,336 windows) are 315 steps: the plain command ended with its validation F1 still
climbing, below the Hugging Face recipe's batch of 8 (four times the updates), and 6 epochs
gained 5 points of validation F1. 3 epochs of the Broad Twitter Corpus's 6,338 are 597 steps
and matched the recipe; 6 epochs gained nothing there. So where the config leaves
``training.epochs`` at its default, classification and tagging runs train at least
``training.min_steps`` (500) steps (README, "Defaults that follow the data").

Image and audio classifiers that start from random weights (``scratch-vit``,
``scratch-audio``: what ``model.name: auto`` falls back to offline) are raised the same way:
3 epochs of a small set left them near chance (macro-F1 0.27 on scikit-learn's digits, 0.02
on lookalike CJK glyphs, 0.07 on spoken commands, seeds 0-2), 10 epochs reached 0.76, 0.12 and
0.27 (``benchmarks/min_steps_scratch.py``). Pretrained image and audio models are left at their
epochs: nothing was measured on them here.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from tunelab.models.choice import SCRATCH_AUDIO, SCRATCH_VIT

log = logging.getLogger("tunelab")

MAX_RAISED_EPOCHS = 10  # a few hundred rows would otherwise pass over their data for hours
RAISED_TASKS = ("text-classification", "token-classification")  # measured; see the module doc
RAISED_FROM_SCRATCH = {"image-classification": SCRATCH_VIT, "audio-classification": SCRATCH_AUDIO}


def steps_per_epoch(examples: int, training: Any) -> int:
    """Optimizer steps one pass over ``examples`` training examples makes (each of
    ``WORLD_SIZE`` processes takes its own batch)."""
    processes = max(1, int(os.environ.get("WORLD_SIZE", "1")))
    batches = math.ceil(examples / (training.batch_size * processes))
    return math.ceil(batches / training.gradient_accumulation_steps)


def epochs_for_min_steps(
    examples: int, training: Any, min_steps: int, max_epochs: int | None = None
) -> tuple[float, int] | None:
    """Whole epochs that give at least ``min_steps`` optimizer steps on ``examples`` training
    examples (at most ``max_epochs``).

    Returns:
        ``(epochs, total_steps)`` when the configured epochs give fewer steps and more epochs
        would give more, else ``None`` (also when ``training.max_steps`` fixes the length).
    """
    if training.max_steps or min_steps <= 0 or examples <= 0:
        return None
    per_epoch = steps_per_epoch(examples, training)
    if math.ceil(per_epoch * training.epochs) >= min_steps:
        return None
    epochs = math.ceil(min_steps / per_epoch)
    if max_epochs is not None:
        epochs = min(epochs, max_epochs)
    if epochs <= training.epochs:
        return None
    return float(epochs), per_epoch * epochs


def raise_epochs(config: Any, task_name: str, examples: int) -> dict[str, Any] | None:
    """Raise ``config.training.epochs`` in place for a small training set, when the config
    left it at its default; what changed and why, for the data report.

    Args:
        config: the run's config.
        task_name: the run's task (only text classification and tagging are raised, and
            image and audio classification from random weights).
        examples: training examples after encoding (a tagging row cut into windows counts
            each window).
    """
    training = config.training
    from_scratch = RAISED_FROM_SCRATCH.get(task_name) == config.model.name
    if (
        (task_name not in RAISED_TASKS and not from_scratch)
        or "epochs" in training.model_fields_set
        or training.method != "full"
        or training.min_steps is None
    ):
        return None
    raised = epochs_for_min_steps(examples, training, training.min_steps, MAX_RAISED_EPOCHS)
    if raised is None:
        return None
    epochs, total = raised
    before = training.epochs
    per_epoch = total // int(epochs)
    reason = (
        f"{before:g} epochs of {examples:,} training examples at batch {training.batch_size} "
        f"make {math.ceil(per_epoch * before)} optimizer steps, fewer than training.min_steps "
        f"{training.min_steps}"
    )
    training.epochs = epochs
    log.info("training.epochs raised to %g (%d steps): %s (--set training.epochs=%g keeps "
             "%g)", epochs, total, reason, before, before)  # fmt: skip
    return {"value": epochs, "before": before, "steps": total, "reason": reason}
