"""Assemble the Hugging Face Trainer with tunelab's fast defaults."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.config import TrainingConfig
from tunelab.errors import UserError
from tunelab.training.tracking import point_trackers, report_to

log = logging.getLogger("tunelab")


DEFAULT_TOKEN_LIMIT = 512  # the token limit of a model that states none


def choose_max_length(lengths: np.ndarray, model_limit: int | None, requested: int | None) -> int:
    """The token limit: the requested one, else the data's 99th percentile; never above the
    model's (:data:`DEFAULT_TOKEN_LIMIT` for a model that states none).

    Long tails are rare in real text; padding every batch to the longest outlier would
    waste compute while truncating 1% of rows costs little.
    """
    limit = model_limit or DEFAULT_TOKEN_LIMIT
    if requested is not None:
        return min(requested, limit)
    p99 = int(np.ceil(np.percentile(lengths, 99))) if len(lengths) else limit
    return max(8, min(p99, limit))


def distributed_arguments(training: TrainingConfig) -> dict[str, Any]:
    """The Trainer's FSDP/DeepSpeed arguments from the config, checked before any data loads.

    Raises:
        UserError: for both at once, a DeepSpeed file that is missing or not JSON, or
            DeepSpeed not installed.
    """
    import importlib.util
    import json

    extra: dict[str, Any] = {}
    if training.fsdp:
        extra["fsdp"] = training.fsdp
        if training.fsdp_config:
            extra["fsdp_config"] = dict(training.fsdp_config)
    if training.deepspeed is not None:
        path = training.deepspeed
        if training.fsdp:
            raise UserError("training.fsdp and training.deepspeed exclude each other; keep one")
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except OSError:
            raise UserError(f"training.deepspeed: {path} does not exist; check the path") from None
        except ValueError as exc:
            raise UserError(
                f"training.deepspeed: {path} is not valid JSON (line {exc.lineno}); fix it"
            ) from None
        if importlib.util.find_spec("deepspeed") is None:
            raise UserError("training.deepspeed needs the deepspeed package: pip install deepspeed")
        extra["deepspeed"] = str(path)
    return extra


def _group_by_length(training: TrainingConfig) -> bool:
    """Length-grouped batches, except under a multi-process launch: there the Trainer's
    length-grouped sampler measurably slowed learning (validation loss 0.69 vs 0.03 after
    two epochs of a tiny run on 2 processes), so batches are drawn at random."""
    import os

    if training.group_by_length and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        log.info("training.group_by_length is off under %s processes", os.environ["WORLD_SIZE"])
        return False
    return training.group_by_length


def training_arguments(
    training: TrainingConfig,
    output_dir: Path,
    seed: int,
    precision: str,
    best_metric: str | None,
    greater_is_better: bool,
    report_to: list[str] | str = "none",
    arguments_class: Any = None,
    **extra: Any,
) -> Any:
    """TrainingArguments from our config: checkpoints under ``output_dir``, no hub.

    ``report_to`` names the Trainer's tracker integrations (``tracking``; none by default);
    ``arguments_class`` is ``TrainingArguments`` or a subclass (a task's own trainer's);
    ``extra`` passes further arguments through, overriding tunelab's.
    """
    import torch
    from transformers import TrainingArguments

    from tunelab.training.progress import live_bars  # imports transformers

    evaluate = best_metric is not None
    eval_strategy = training.eval_strategy if evaluate else "no"
    eval_steps = training.eval_steps if training.eval_strategy == "steps" else None
    if eval_strategy == "steps" and eval_steps is None:
        eval_steps = 200
    settings: dict[str, Any] = dict(
        output_dir=str(output_dir),
        num_train_epochs=training.epochs,
        max_steps=training.max_steps or -1,
        learning_rate=training.learning_rate,
        per_device_train_batch_size=training.batch_size,
        per_device_eval_batch_size=training.eval_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        weight_decay=training.weight_decay,
        warmup_steps=training.warmup_ratio,
        lr_scheduler_type=training.lr_scheduler,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        # length grouping is tunelab's own sampler (use_bucketed_sampler), not the Trainer's
        train_sampling_strategy="random",
        torch_compile=training.torch_compile,
        eval_strategy=eval_strategy,
        eval_steps=eval_steps,
        save_strategy=eval_strategy if evaluate else "epoch",
        save_steps=eval_steps or 500,
        save_total_limit=training.save_total_limit,
        load_best_model_at_end=evaluate,
        metric_for_best_model=best_metric,
        greater_is_better=greater_is_better,
        logging_steps=training.logging_steps,
        seed=seed,
        data_seed=seed,
        # True would multiply every process's loss by their number, assuming the loss divides
        # by the item count of all processes; classification heads (ours and most in
        # transformers) return a plain mean, so DDP would train at N times the rate
        average_tokens_across_devices=False,
        **distributed_arguments(training),
        report_to=report_to,
        dataloader_num_workers=0,
        disable_tqdm=not live_bars(),  # bars redraw with carriage returns: terminals only
        log_level="warning",
    )
    return (arguments_class or TrainingArguments)(**{**settings, **extra})


def build_trainer(
    model: Any,
    tokenizer: Any,
    task: Any,
    train_dataset: Any,
    eval_dataset: Any | None,
    training: TrainingConfig,
    output_dir: Path,
    seed: int,
    precision: str,
    compute_loss_func: Any = None,
    callbacks: list[Any] | None = None,
    tracking: list[str] | tuple[str, ...] = (),
    patience_from_step: int = 0,
) -> Any:
    """A Trainer with dynamic padding, length-bucketed batches, early stopping, best reload.

    ``compute_loss_func`` replaces the model's own loss (class weights, label smoothing);
    ``callbacks`` are further ``TrainerCallback`` objects (a search's pruning reporter);
    ``tracking`` turns on MLflow/TensorBoard logging for the run folder above ``output_dir``;
    early stopping counts no evaluation before ``patience_from_step`` (a raised run's
    ``training.min_steps``).
    """
    from tunelab.training.checkpoint_spacing import SpacedCheckpoints
    from tunelab.training.early_stopping import EarlyStoppingAfter
    from tunelab.training.interrupt import safety_callbacks
    from tunelab.training.progress import plain_progress
    from tunelab.training.sampling import use_bucketed_sampler

    best_metric = None
    if eval_dataset is not None:
        best_metric = training.metric_for_best_model or task.main_metric
    setup = task.trainer_setup(model, tokenizer, compute_loss_func, train_dataset, eval_dataset)
    if training.pad_to_multiple_of:
        pad_to_multiple(setup.inputs.get("data_collator"), training.pad_to_multiple_of)
    args = training_arguments(
        training, output_dir, seed, precision, best_metric, task.greater_is_better,
        report_to=report_to(tracking), run_name=output_dir.parent.name,
        arguments_class=setup.arguments_class, **setup.arguments,
    )  # fmt: skip
    callbacks = [*safety_callbacks(), *(callbacks or [])]
    if eval_dataset is None:  # epoch-end checkpoints are then for crashes alone
        callbacks.append(SpacedCheckpoints(training.checkpoint_minutes))
    if eval_dataset is not None and training.early_stopping_patience:
        patience = training.early_stopping_patience
        callbacks.append(EarlyStoppingAfter(patience, not_before_step=patience_from_step))
    inputs = {"train_dataset": train_dataset, "eval_dataset": eval_dataset, **setup.inputs}
    trainer = setup.trainer_class(model=model, args=args, callbacks=callbacks, **inputs)
    if _group_by_length(training):
        use_bucketed_sampler(trainer)
    plain_progress(trainer)
    point_trackers(trainer, tracking, output_dir.parent)
    _quiet_about_tied_weights(trainer)
    return trainer


def pad_to_multiple(collator: Any, multiple: int) -> None:
    """Make ``collator`` pad each batch's length up to a multiple of ``multiple`` tokens.

    Raises:
        UserError: if the task's batches are not padded that way (packed rows, pairs of
            answers), naming the option.
    """
    if not hasattr(collator, "pad_to_multiple_of"):
        raise UserError(
            "training.pad_to_multiple_of applies to batches of token rows padded to their "
            "longest row; this task builds its batches another way (images, audio, packed "
            "rows or preference pairs), so leave it unset"
        )
    collator.pad_to_multiple_of = multiple


def _quiet_about_tied_weights(trainer: Any) -> None:
    """A model whose output layer is its input embedding (``tie_word_embeddings``) saves the
    matrix once, so reloading the best checkpoint finds ``lm_head.weight`` "missing" and the
    Trainer warns, though tying fills it. Tie, and warn only of keys that are really missing."""
    issue = trainer._issue_warnings_after_load
    every = {name for name, _ in trainer.model.named_parameters(remove_duplicate=False)}
    tied = every - {name for name, _ in trainer.model.named_parameters()}

    def issue_untied(load_result: Any) -> None:
        missing = [key for key in load_result.missing_keys if key not in tied]
        if len(missing) < len(load_result.missing_keys) and hasattr(load_result, "_replace"):
            trainer.model.tie_weights()
            load_result = load_result._replace(missing_keys=missing)
        issue(load_result)

    trainer._issue_warnings_after_load = issue_untied


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest completely written ``checkpoint-N`` folder under ``output_dir``, if any."""
    from tunelab.training.interrupt import last_complete_checkpoint

    return last_complete_checkpoint(output_dir)
