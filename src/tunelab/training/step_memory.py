"""Training steps that fit in memory: fewer rows a step, more steps accumulated.

``training.batch_size`` 32 suits short texts; 32 chats of 1,700 tokens through a 135M
decoder keep about 60 GB of activations and a 24 GB machine kills the run mid-epoch. Before
training, the longest step the batches can make (the longest rows together, as length-grouped
batching draws them, packed as the collator packs them) is costed with
:func:`tunelab.models.memory.estimate_memory`. Where it does not fit in the memory free now,
each step takes fewer rows and gradients accumulate over more of them, so an optimizer update
still sees the same rows (the same effective batch, learning rate and number of updates);
where one row alone is too big, activation checkpointing keeps each layer's input only.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tunelab.models.memory import architecture_from_config, estimate_memory
from tunelab.tasks.packing import pack_rows
from tunelab.tasks.token_windows import IGNORE

log = logging.getLogger("tunelab")

# Share of the free memory a step may plan to fill: the estimate of a process's peak is
# within 25% of the measured one (benchmarks/memory_estimate.py), and the operating system,
# tokenizer and data need some too.
HEADROOM = 0.8


@dataclass(frozen=True)
class StepPlan:
    """Rows per step, steps per optimizer update, and what the longest step will hold.

    Attributes:
        batch_size: rows per forward and backward pass.
        accumulation: passes per optimizer update (gradient accumulation).
        checkpointing: whether layers recompute their activations in the backward pass.
        peak: the estimated peak memory of the longest step, in bytes.
        tokens: the tokens of the longest step.
    """

    batch_size: int
    accumulation: int
    checkpointing: bool
    peak: int
    tokens: int


@dataclass(frozen=True)
class LongestStep:
    """The step of ``rows`` sequences of ``width`` tokens that costs most memory, with the
    positions the LM head predicts in it."""

    rows: int
    width: int
    predicted: int | None


# the answer tokens of the rows at these indices
AnswerTokens = Callable[[Sequence[int]], int]


def longest_step(
    lengths: Sequence[int],
    answers: AnswerTokens | None,
    batch_size: int,
    packed_to: int | None,
) -> LongestStep:
    """The longest rows of the data, ``batch_size`` of them, batched as the collator does:
    padded to the longest, or first-fit into rows of ``packed_to`` tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])[:batch_size]
    top = [lengths[i] for i in order]
    predicted = answers(order) if answers is not None else None
    if packed_to is None:
        return LongestStep(len(top), max(top), predicted)
    bins = pack_rows(top, packed_to)
    return LongestStep(len(bins), max(sum(top[i] for i in b) for b in bins), predicted)


def plan_steps(
    model_config: Any,
    lengths: Sequence[int],
    answers: AnswerTokens | None,
    batch_size: int,
    accumulation: int,
    free: int,
    packed_to: int | None = None,
    method: str = "full",
    precision: str = "bf16",
    lm_head: bool = False,
    device: str = "cpu",
) -> StepPlan | None:
    """The largest step (halving the rows, then with activation checkpointing) whose
    estimated peak fits in ``HEADROOM`` of ``free`` bytes, accumulating so an update sees
    ``batch_size * accumulation`` rows as asked; None when not even one row fits.

    Args:
        model_config: the model's transformers config.
        lengths: tokens of each training row.
        answers: the tokens the LM head predicts in the rows at some indices (None: all).
        batch_size, accumulation: the rows per step and steps per update asked for.
        free: memory free for training, in bytes (with the model's weights already in it).
        packed_to: the row length rows are packed into (causal LM packing); None: padded.
        method, precision, lm_head, device: as :func:`tunelab.models.memory.estimate_memory`.
    """
    arch = architecture_from_config(model_config)
    wanted = batch_size * accumulation
    # the longest rows any step can take, ranked once: each try below takes a prefix
    ranked = sorted(range(len(lengths)), key=lambda i: -lengths[i])[:batch_size]
    top = [lengths[i] for i in ranked]
    top_answers = (lambda picked: answers([ranked[i] for i in picked])) if answers else None
    for checkpointing in (False, True):
        rows = batch_size
        while True:
            step = longest_step(top, top_answers, rows, packed_to)
            peak = estimate_memory(
                arch, step.rows, step.width, method, precision, lm_head, device,
                predicted=step.predicted, checkpointing=checkpointing,
            ).peak  # fmt: skip
            if peak <= HEADROOM * free:
                tokens = step.rows * step.width
                return StepPlan(rows, math.ceil(wanted / rows), checkpointing, peak, tokens)
            if rows == 1:
                break
            rows = (rows + 1) // 2
    return None


def free_memory(model: Any) -> tuple[str, int]:
    """The training device and the bytes training may use there: the memory free now plus
    what the loaded weights hold (the estimate counts them); on a CPU shared by several
    training processes, a share of it. The device and the RAM figure are
    :func:`tunelab.models.catalog.device_memory`'s (``tunelab recommend``'s budget)."""
    from tunelab.models.catalog import device_memory

    held = sum(p.numel() * p.element_size() for p in model.parameters())
    device, available = device_memory()
    if device == "cuda":  # the GPU's total there; free now is what counts here
        import torch

        return device, int(torch.cuda.mem_get_info()[0]) + held
    processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return device, available // processes + held


def row_lengths(encoded: Any) -> list[int] | None:
    """Tokens of each encoded training row; None for rows that are not token sequences
    (images, audio, pairs)."""
    columns = getattr(encoded, "column_names", None) or []
    if "input_ids" not in columns:
        return None
    if "length" in columns:
        return list(encoded["length"])
    return [len(row) for row in encoded["input_ids"]]


def answer_counter(encoded: Any) -> AnswerTokens:
    """Counts the labelled (answer) tokens of some rows of ``encoded``."""

    def count(indices: Sequence[int]) -> int:
        rows = encoded.select(indices)["labels"]
        return sum(label != IGNORE for row in rows for label in row)

    return count


def fit_steps_to_memory(
    config: Any, task: Any, model: Any, encoded: Any, max_length: int, precision: str
) -> dict[str, Any]:
    """Set ``config.training``'s batch size and accumulation (and activation checkpointing on
    ``model``) so the longest step fits in memory, saying so; what was found, for the run's
    data report (empty where nothing is known to cost).
    """
    lengths = row_lengths(encoded)
    if not lengths:
        return {}
    training = config.training
    device, free = free_memory(model)
    causal, seq2seq = task.model_kind == "causal", task.model_kind == "seq2seq"
    method = {"none": "full", "qlora": "qlora"}.get(config.peft.method, "lora")
    try:
        plan = plan_steps(
            model.config, lengths, answer_counter(encoded) if causal else None,
            training.batch_size,
            training.gradient_accumulation_steps, free,
            packed_to=max_length if getattr(task, "packs_rows", False) else None,
            method=method, precision=precision, lm_head=causal or seq2seq, device=device,
        )  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError) as error:  # an unknown layout
        log.debug("no memory plan for this model: %s", error)
        return {}
    if plan is None:
        log.warning(
            "one training row of %d tokens may not fit in this machine's free memory; if the "
            "run is killed, lower model.max_length or train adapters (--peft lora)",
            max(lengths),
        )
        return {"fits": False}
    found = {"peak_mb": round(plan.peak / 2**20), "tokens": plan.tokens}
    if plan.batch_size == training.batch_size and not plan.checkpointing:
        return found
    asked = f"{training.batch_size} rows a step"
    if training.gradient_accumulation_steps > 1:
        asked += f" x {training.gradient_accumulation_steps} accumulated"
    rows = "1 row" if plan.batch_size == 1 else f"{plan.batch_size} rows"
    how = f"{rows} a step x {plan.accumulation} accumulated"
    if plan.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        how += " with activation checkpointing"
    log.info(
        "training %s instead of %s, so the longest step (%d tokens, about %.1f GiB) fits in "
        "this machine's memory; every update still sees %d rows (a lower model.max_length "
        "fits more rows a step)",
        how, asked, plan.tokens, plan.peak / 2**30, plan.batch_size * plan.accumulation,
    )  # fmt: skip
    training.batch_size, training.gradient_accumulation_steps = plan.batch_size, plan.accumulation
    return {**found, "batch_size": plan.batch_size, "accumulation": plan.accumulation,
            "checkpointing": plan.checkpointing}  # fmt: skip
