"""The fine-tuning recipe: ``prepare_run -> fit -> score -> save_run``.

Each stage takes and returns plain values (the dataclasses below), so a test, a study or the
workbench can run one stage alone; :func:`tunelab.api.train` runs them in order.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab import collector
from tunelab.config import RunConfig, commented_yaml
from tunelab.data.audio import audio_seconds
from tunelab.data.columns import spread_rows
from tunelab.data.language import SAMPLE_TEXTS
from tunelab.data.split_folder import expand_split_folder
from tunelab.errors import RunInterrupted, UserError
from tunelab.evaluation.model_card import write_model_card
from tunelab.evaluation.report import build_report
from tunelab.inference import naming_rows, resolve_precision, resolve_prediction_precision
from tunelab.models.adapters import (
    PROMPT_METHODS,
    TASK_TYPES,
    add_adapters,
    base_model,
    check_adapter_settings,
    parameter_counts,
    quantization_kwargs,
)
from tunelab.models.choice import (
    AUTO,
    SCRATCH,
    SCRATCH_AUDIO,
    SCRATCH_MODELS,
    SCRATCH_OCR,
    SCRATCH_VIT,
    SCRATCH_VLM,
    ModelChoice,
    choose_model,
    scratch_model,
)
from tunelab.models.flops import flops_text, other_cpu_load, utilisation
from tunelab.models.load import from_pretrained, model_length_limit, resolve_model_source
from tunelab.models.master_weights import fp32_master_weights
from tunelab.models.processor_settings import check_processor_settings
from tunelab.models.scratch import (
    save_scratch_audio,
    save_scratch_bert,
    save_scratch_ocr,
    save_scratch_vit,
)
from tunelab.models.sentence_encoder import has_sentence_modules, load_sentence_transformer
from tunelab.models.trained import save_base_settings
from tunelab.outputs import atomic_folder, claim_output, write_json, write_jsonl, write_text
from tunelab.process_defaults import IN_SUMMARY
from tunelab.tasks import Task, task_from_run_config
from tunelab.tasks.arrow_rows import MeasuredRows, chunked_lengths
from tunelab.tasks.generation_inputs import TARGET
from tunelab.tokenizer_threads import tokenizer_threads
from tunelab.training.epochs import raise_epochs
from tunelab.training.few_shot import train_few_shot
from tunelab.training.generated_rows import cap_generated_test
from tunelab.training.guesses import guess_from_data
from tunelab.training.learning_rate import default_learning_rate
from tunelab.training.prepare import load_splits
from tunelab.training.stage_clock import StageClock
from tunelab.training.step_memory import fit_steps_to_memory
from tunelab.training.tracking import check_trackers, log_final_metrics
from tunelab.training.trainer import (
    DEFAULT_TOKEN_LIMIT,
    build_trainer,
    choose_max_length,
    distributed_arguments,
    last_checkpoint,
)

log = logging.getLogger("tunelab")

# what a new run replaces in its folder under --overwrite (config.yaml is rewritten anyway)
RUN_OUTPUTS = (
    "model",
    "checkpoints",
    "metrics.json",
    "predictions.jsonl",
    "tensorboard",
    "report.html",
)
# other processes' load average, as a share of the cores, from which the utilisation line
# says the CPU was shared (its share of the peak then reads low)
BUSY_LOAD = 0.5


@dataclass
class RunParts:
    """Everything a run has before training: checked data, the model and its features."""

    config: RunConfig
    task: Task
    splits: dict[str, pd.DataFrame]
    data_report: dict[str, Any]
    source: str  # the folder or hub id the model was loaded from
    tokenizer: Any
    model: Any
    encoded: dict[str, Any]
    max_length: int
    precision: str
    loss: Any  # the task's loss function for the Trainer, or None for its default
    started: float  # time.time() when model loading began
    main_process: bool
    clock: StageClock = field(default_factory=StageClock)  # seconds per stage, for metrics

    @property
    def output(self) -> Path:
        return self.config.output

    @property
    def checkpoints(self) -> Path:
        return self.config.output / "checkpoints"


@dataclass
class FitResult:
    """The trained model and what training measured."""

    model: Any
    stats: dict[str, Any]  # steps, loss, speed (the few-shot trainer reports its own)
    seconds: float  # from model loading to the end of training
    trainer: Any = None  # the HF Trainer; None for few-shot training
    warnings: list[str] = field(default_factory=list)  # the learning watch's, per evaluation
    before: dict[str, Any] = field(default_factory=dict)  # test scores of the untrained model

    @property
    def history(self) -> list[dict[str, Any]]:
        """The Trainer's log: loss and metrics per logging step and evaluation."""
        return self.trainer.state.log_history if self.trainer is not None else []


@dataclass
class Scores:
    """The run's metrics and the model outputs on each evaluated split."""

    metrics: dict[str, Any]
    outputs: dict[str, Any]


def is_main_process() -> bool:
    """False in every process but the first of a torchrun/accelerate launch (``RANK``)."""
    return int(os.environ.get("RANK", "0")) == 0


# -- prepare ----------------------------------------------------------------------------


def _take_split_folder(config: RunConfig) -> None:
    """A ``data.train`` folder holding train/validation/test files: those files, logged."""
    data = config.data
    if data.train is None:
        return
    train, validation, test, line = expand_split_folder(data.train, data.validation, data.test)
    if line is not None:
        log.info("%s", line)
        data.train, data.validation, data.test = train, validation, test


def prepare_run(config: RunConfig, resume: bool = False, overwrite: bool = False) -> RunParts:
    """Check the config, load and split the data, claim the run folder, load the model and
    tokenizer, and encode every split.

    ``auto`` values in ``config`` (model name, learning rate) are resolved in place, and so
    are the epochs of a small training set (:func:`tunelab.training.epochs.raise_epochs`).

    Raises:
        UserError: for any problem with the config, the data, the folder or the model name.
    """
    clock = StageClock()
    with clock.stage("data"):
        check_trackers(config.tracking)
        distributed_arguments(config.training)
        _take_split_folder(config)
        guesses = guess_from_data(config)  # the task and columns the config leaves to the data
        task = task_from_run_config(config)
        check_run_settings(config, task)
        choice = None
        if config.model.name == AUTO and guesses.train is not None:
            choice = _choose_model(config, task, guesses.train)
        name = config.model.name
        if (
            task.model_kind == "seq2seq"
            and guesses.train is not None
            and (name not in SCRATCH_MODELS and not _encoder_decoder(name))
        ):
            task = _as_causal(config, guesses)
        splits, data_report = load_splits(config, task, guesses.train)
    if guesses.decided:
        data_report["guessed"] = guesses.as_report()
    if choice is not None:
        data_report["model_choice"] = choice.as_dict()
    if config.training.method == "few-shot" and task.problem_type != "single_label":
        raise UserError(
            "training.method=few-shot needs single-label text classification; this run is "
            f"{config.task} ({task.problem_type}); use training.method=full"
        )
    main_process = is_main_process()
    if main_process:  # under torchrun/accelerate the first process alone touches the folder
        prepare_output(config.output, resume, overwrite)
        # written again at the end; until metrics.json exists, `tunelab runs` lists it incomplete
        write_text(config.output / "config.yaml", commented_yaml(config) + "\n")
    started = time.time()
    with clock.stage("model"):
        source, tokenizer, model = load_model(config, task, splits["train"], data_report)
    with clock.stage("tokenise"), tokenizer_threads():
        max_length, measured = _max_length(config, task, splits["train"], tokenizer, model,
                                           data_report)  # fmt: skip
        _cap_generated_test(config, task, splits, model, data_report)
        encoded = {
            split: task.encode(frame, tokenizer, max_length, measured=measured)
            if split == "train" and measured is not None
            else task.encode(frame, tokenizer, max_length)
            for split, frame in splits.items()
        }
    del measured  # the training rows' first encoding: encoded["train"] reused what fit
    raised = raise_epochs(config, task.name, len(encoded["train"]))
    if raised:
        data_report["epochs"] = raised
    precision = resolve_precision(config.training.precision)
    cast = fp32_master_weights(model, precision, adapters=config.peft.method != "none")
    if cast:
        data_report["fp32_master_weights"] = cast
    step_memory = fit_steps_to_memory(config, task, model, encoded["train"], max_length, precision)
    if step_memory:
        data_report["step_memory"] = step_memory
    tokens = "" if "tokens" not in data_report else f", max_length {max_length}"
    log.info(
        "training on %s rows (validation %s, test %s)%s, precision %s",
        f"{len(splits['train']):,}",
        f"{len(splits.get('validation', [])):,}",
        f"{len(splits.get('test', [])):,}",
        tokens,  # a file that is one input has no token limit to name
        precision,
    )
    loss, data_report["loss"] = task.loss_function(
        splits["train"], config.training.class_weights, config.training.label_smoothing
    )
    if data_report["loss"].get("class_weights"):
        log.info(
            "classes are imbalanced (%.1f:1): training with %s %s",
            data_report["loss"]["imbalance_ratio"],
            data_report["loss"].get("weighted_loss", "class-weighted cross-entropy"),
            data_report["loss"]["class_weights"],
        )  # fmt: skip
    return RunParts(
        config, task, splits, data_report, source, tokenizer, model, encoded, max_length,
        precision, loss, started, main_process, clock,
    )  # fmt: skip


def check_run_settings(config: RunConfig, task: Task) -> None:
    """Refuse adapter and few-shot settings that cannot work, before a model is loaded."""
    if config.training.method == "few-shot" and config.peft.method != "none":
        raise UserError(
            "training.method=few-shot tunes the whole encoder on pairs; set peft.method=none"
        )
    if config.peft.method != "none" and config.model.name in SCRATCH_MODELS:
        raise UserError(
            f"peft.method={config.peft.method} trains small adapters on a pretrained model, but "
            f"model.name is {config.model.name} (random weights); choose a pretrained model or "
            "peft.method=none"
        )
    fitting = scratch_model(task.model_kind)
    if config.model.name in SCRATCH_MODELS and config.model.name != fitting:
        raise UserError(
            f"model.name {config.model.name} does not fit task {task.name}; use {fitting} "
            "or a pretrained model"
        )
    check_adapter_settings(config.peft, task)


def prepare_output(output: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a folder that holds a run unless resuming or overwriting; clear it to overwrite.

    Raises:
        UserError: if ``output`` holds a run and neither ``resume`` nor ``overwrite`` is set.
    """
    claim_output(
        output, ("model", "checkpoints"), [output / name for name in RUN_OUTPUTS],
        resume, overwrite,
        refusal=f"run folder {output} already holds a run; pass --resume to continue it, "
        "--overwrite to replace it, or choose another --output",
    )  # fmt: skip


def _choose_model(config: RunConfig, task: Task, train: pd.DataFrame) -> ModelChoice:
    """Replace ``model.name: auto`` by the model that suits the training texts (``train``:
    the training file as read; only the rows the language check reads, spread over the file,
    are put in the task's shape, and only if the choice reads texts: the data stage shapes
    them all next)."""

    @functools.cache
    def shaped() -> pd.DataFrame:  # once for the texts and the answers both
        level = log.level  # what shaping a sample finds, the data stage says of every row
        log.setLevel(logging.ERROR)
        try:
            return task.standardize(spread_rows(train, SAMPLE_TEXTS))
        finally:
            log.setLevel(level)

    def column(name: str) -> Iterator[str]:
        if name in shaped().columns:
            yield from shaped()[name].dropna().astype(str)

    # generation: the answers' language too (Chinese into English wants an English model)
    answers = column(TARGET) if task.problem_type == "generation" else None
    choice = choose_model(task, column(task.text_column), answers)
    config.model.name = choice.name
    log.info("model.name auto: %s, because %s", choice.name, choice.reason)
    check_run_settings(config, task)  # the chosen model may rule out the adapter settings
    return choice


def _encoder_decoder(name: str) -> bool:
    """Whether model ``name`` (a starter, package, folder or hub id) is an encoder-decoder
    (T5, BART, Marian), the only shape a seq2seq task loads."""
    from transformers import AutoConfig

    return bool(getattr(from_pretrained(AutoConfig, name), "is_encoder_decoder", False))


def _as_causal(config: RunConfig, guesses: Any) -> Task:
    """A seq2seq run given a model without an encoder, as causal-lm: where the task was guessed
    from source/target columns (which causal-lm reads as prompt and answer), it becomes
    causal-lm; where the user named seq2seq, one sentence says what to change.

    Raises:
        UserError: when ``--task seq2seq`` was given.
    """
    if not any(item["key"] == "task" for item in guesses.decided):
        raise UserError(
            f"model {config.model.name} is not an encoder-decoder model (T5, BART, Marian), "
            "which --task seq2seq trains; for a decoder-only model use --task causal-lm, which "
            "reads the same source/target columns as prompt and answer"
        )
    log.info(
        "task causal-lm instead of the guessed seq2seq: model %s is not an encoder-decoder, and "
        "causal-lm reads the same columns as prompt and answer (--task overrides)",
        config.model.name,
    )  # fmt: skip
    config.task = "causal-lm"
    for item in guesses.decided:
        if item["key"] == "task":
            item["value"] = config.task
    task = task_from_run_config(config)
    check_run_settings(config, task)
    return task


def load_model(
    config: RunConfig, task: Task, train: pd.DataFrame, data_report: dict[str, Any]
) -> tuple[str, Any, Any]:
    """The model source, its tokenizer, and the task's model with adapters added.

    Resolves ``training.learning_rate: auto`` from the model's size (recorded in
    ``data_report``).
    """
    import torch
    from transformers import set_seed

    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    source = _model_source(config, train, task, config.output / "checkpoints")
    load_kwargs = {
        "revision": config.model.revision,
        "trust_remote_code": config.model.trust_remote_code,
        "allow_pickle": config.model.allow_pickle,
    }
    # the task's processor: a tokenizer for text, an image processor for images
    settings = config.image.processor if task.input_kind == "image" else {}
    tokenizer = from_pretrained(task.processor_class(), source, **load_kwargs, **settings)
    check_processor_settings(tokenizer, settings)
    set_seed(config.seed)
    model = task.build_model(source, **load_kwargs, **quantization_kwargs(config.peft))
    if config.training.learning_rate == AUTO:
        data_report["learning_rate"] = _resolve_learning_rate(config, model, task.input_kind)
    model = add_adapters(model, config.peft, TASK_TYPES[task.auto_model_class().__name__])
    if config.training.freeze_embeddings:
        _freeze_embeddings(model, data_report)
    if config.training.fast_dropout and not config.training.torch_compile:
        from tunelab.models.fast_dropout import fast_cpu_dropout

        fast_cpu_dropout(model)  # a no-op on a GPU, where torch's dropout is fused and fast
    collector.loaded()  # the heavy imports and the model: later collections skip them
    return source, tokenizer, model


def _freeze_embeddings(model: Any, data_report: dict[str, Any]) -> None:
    """``training.freeze_embeddings``: the input word embeddings get no gradient."""
    embeddings = model.get_input_embeddings()
    embeddings.weight.requires_grad_(False)
    frozen = embeddings.weight.numel()
    data_report["frozen_embeddings"] = frozen
    log.info("training.freeze_embeddings: the %s input embeddings (%.1fM weights) stay as "
             "they are", type(embeddings).__name__, frozen / 1e6)  # fmt: skip


def _model_source(config: RunConfig, train: pd.DataFrame, task: Task, checkpoints: Path) -> str:
    scratch = config.model.scratch
    if config.model.name == SCRATCH_VIT:
        image = config.image
        log.warning(
            "model.name is scratch-vit: training a randomly initialised %d-layer ViT (hidden %d, "
            "%dx%d pixels); a pretrained image model does better",
            scratch.layers, scratch.hidden, image.scratch_size, image.scratch_size,
        )  # fmt: skip
        folder = save_scratch_vit(
            checkpoints / "scratch-init", image.scratch_size, image.scratch_patch,
            scratch.layers, scratch.hidden, scratch.heads, seed=config.seed,
        )  # fmt: skip
        return str(folder)
    if config.model.name == SCRATCH_AUDIO:
        return _scratch_audio(config, train[task.text_column].tolist(), checkpoints)
    if config.model.name == SCRATCH_OCR:
        return _scratch_ocr(config, train[task.label_column].dropna().astype(str), checkpoints)
    if config.model.name == SCRATCH_VLM:
        return _scratch_vlm(config, train, checkpoints)
    if config.model.name != SCRATCH:
        return resolve_model_source(config.model.name)
    texts = train[task.text_column].astype(str).tolist()
    if task.text_pair_column:
        texts += train[task.text_pair_column].astype(str).tolist()
    log.warning(
        "model.name is scratch-bert: training a randomly initialised %d-layer BERT (hidden %d) "
        "with a character vocabulary built from the training data; a pretrained model does better",
        scratch.layers,
        scratch.hidden,
    )
    return str(
        save_scratch_bert(
            texts,
            checkpoints / "scratch-init",
            scratch.layers,
            scratch.hidden,
            scratch.heads,
            scratch.min_char_count,
            seed=config.seed,
        )
    )


def scratch_audio_window(
    durations: list[float], max_seconds: float, requested: int | None = None
) -> tuple[int, int]:
    """scratch-audio's window in whole seconds and how many training clips it cuts: the
    ``requested`` one, else the clips' 99th percentile, at most ``max_seconds``, as
    ``max_length`` is for texts.

    Its spectrogram is padded to the window and the classifier averages every frame, padding
    included, so a window set by one long outlier drowns short clips in padding (on the Free
    Spoken Digit Dataset, median 0.42 s, one 2.3 s clip: a 3 s window, test macro-F1 0.388
    against 0.465 with 1 s over three seeds, the run 1.6x slower).
    """
    known = [seconds for seconds in durations if seconds > 0]
    if requested is not None:
        seconds = min(max_seconds, requested)
    elif known:
        seconds = min(max_seconds, float(np.percentile(known, 99)))
    else:
        seconds = max_seconds
    whole = max(1, math.ceil(seconds - 1e-9))
    return whole, sum(1 for d in known if d > whole)


def _scratch_audio(config: RunConfig, paths: list[str], checkpoints: Path) -> str:
    """scratch-audio's folder, its window from the training clips' lengths (read from the
    files' headers; :func:`scratch_audio_window`)."""
    scratch, audio = config.model.scratch, config.audio
    durations = [audio_seconds(path) for path in paths if path]
    window, cut = scratch_audio_window(durations, audio.max_seconds, audio.scratch_seconds)
    log.warning(
        "model.name is scratch-audio: training a randomly initialised %d-layer Whisper-style "
        "encoder (hidden %d, %d mel bands, %d s window); a pretrained audio model does better",
        scratch.layers, scratch.hidden, audio.scratch_mel_bins, window,
    )  # fmt: skip
    if cut and audio.scratch_seconds is None:
        log.info(
            "scratch-audio's window is %d s, the training clips' 99th percentile: %d of %d "
            "clips are longer and cut to their first %d s (--set audio.scratch_seconds=%d "
            "keeps more, padding every shorter clip to it)",
            window, cut, len(durations), window, window + 1,
        )  # fmt: skip
    folder = save_scratch_audio(
        checkpoints / "scratch-init", window, audio.scratch_mel_bins, scratch.layers,
        scratch.hidden, scratch.heads, seed=config.seed,
    )  # fmt: skip
    return str(folder)


def _scratch_ocr(config: RunConfig, texts: pd.Series, checkpoints: Path) -> str:
    """scratch-ocr's folder: its decoder's vocabulary is the training texts' characters."""
    scratch, image = config.model.scratch, config.image
    height = image.scratch_size
    width = image.scratch_width or 8 * height
    log.warning(
        "model.name is scratch-ocr: training a randomly initialised %d-layer ViT (hidden %d, "
        "%dx%d pixels) under a %d-layer BERT decoder; a pretrained reader does better",
        scratch.layers, scratch.hidden, height, width, max(1, scratch.layers // 2),
    )  # fmt: skip
    folder = save_scratch_ocr(
        texts.tolist(), checkpoints / "scratch-init", height, width, image.scratch_patch,
        scratch.layers, scratch.hidden, scratch.heads, max(1, scratch.layers // 2),
        config.generation.max_target_length, seed=config.seed,
    )  # fmt: skip
    return str(folder)


def _scratch_vlm(config: RunConfig, train: pd.DataFrame, checkpoints: Path) -> str:
    """scratch-vlm's folder: its tokenizer is trained on the training chats' texts."""
    from tunelab.models.scratch_vlm import save_scratch_vlm
    from tunelab.tasks.image_chat import chat_texts

    scratch, image = config.model.scratch, config.image
    texts = chat_texts(train)
    log.warning(
        "model.name is scratch-vlm: training a randomly initialised SmolVLM-style model (%d "
        "layers, hidden %d, %dx%d images in %d-pixel patches); a pretrained one does better",
        scratch.layers, scratch.hidden, image.scratch_size, image.scratch_size,
        image.scratch_patch,
    )  # fmt: skip
    folder = save_scratch_vlm(
        texts, checkpoints / "scratch-init", image.scratch_size, image.scratch_patch,
        layers=scratch.layers, hidden=scratch.hidden, heads=scratch.heads,
        vision_layers=scratch.layers, vision_hidden=scratch.hidden, seed=config.seed,
    )  # fmt: skip
    return str(folder)


def _patience_from_step(config: RunConfig, data_report: dict[str, Any]) -> int:
    """The step before which early stopping does not count: a model from random weights whose
    epochs ``training.min_steps`` raised trains those steps (its validation climbs in noisy
    steps); a pretrained one may stop as soon as it overfits (the README's first-contact run
    peaked at epoch 3 and its validation loss doubled by epoch 5)."""
    raised = "epochs" in data_report and config.model.name in SCRATCH_MODELS
    return (config.training.min_steps or 0) if raised else 0


def _resolve_learning_rate(config: RunConfig, model: Any, inputs: str) -> dict[str, Any]:
    """Replace ``training.learning_rate: auto`` by the rate for this model, which reads
    ``inputs`` (the task's ``input_kind``); what and why."""
    parameters = parameter_counts(model)["total_parameters"]  # before adapters: the base
    rate, reason = default_learning_rate(
        parameters,
        config.model.name in SCRATCH_MODELS,
        config.peft.method,
        config.training.method,
        inputs,
        preference=config.task == "preference",
    )
    config.training.learning_rate = rate
    log.info("training.learning_rate auto: %g for %s (--set training.learning_rate=... "
             "overrides it)", rate, reason)  # fmt: skip
    return {"value": rate, "reason": reason}


def _max_length(
    config: RunConfig,
    task: Task,
    train: pd.DataFrame,
    tokenizer: Any,
    model: Any,
    data_report: dict[str, Any],
) -> tuple[int, MeasuredRows | None]:
    """The sequence length for this run, from the training texts' token lengths and the
    model's limit; what it truncates goes into ``data_report``. A task that can keep what it
    tokenised to count (``measure``) returns it too, for encoding the training split."""
    length_limit = model_length_limit(model.config, tokenizer)
    own_limit = getattr(model, "max_seq_length", None)  # a sentence-transformers checkpoint's
    if own_limit:
        length_limit = min(length_limit or own_limit, own_limit)
    if length_limit and config.peft.method in PROMPT_METHODS:  # virtual tokens take positions
        length_limit -= config.peft.num_virtual_tokens
    lengths, measured = count_tokens(task, train, tokenizer, length_limit)
    room = getattr(task, "answer_room", None)  # generation: do the answers fit their budget
    answers = room(train, tokenizer) if room is not None else None
    if answers:
        data_report["answer_tokens"] = answers
    max_length = choose_max_length(lengths, length_limit, config.model.max_length)
    if task.input_kind != "text":
        count = getattr(task, "image_tokens", None)  # a model that reads images as tokens
        image_tokens = count(train, tokenizer) if count else None
        if image_tokens is not None:
            data_report["image_tokens_per_image"] = image_tokens
            log.info("%d image tokens per image (the first training image; image.processor "
                     "sets the budget)", image_tokens)  # fmt: skip
        if not getattr(task, "has_token_lengths", False):  # a file is one input: no limit
            return max_length, measured
    kept = np.minimum(lengths, max_length)  # what each training row feeds the model
    p50 = float(pd.Series(lengths).median())
    # counted up to the cap: a median there is longer than any limit the model takes
    median_cut = measured is not None and p50 >= measured.cap
    data_report["tokens"] = {
        "max_length": max_length,
        "truncated_share": float((lengths > max_length).mean()),
        "p50": None if median_cut else p50,
        "total": int(kept.sum()),
        "mean": float(kept.mean()) if len(kept) else 0.0,
    }
    return max_length, measured


def _cap_generated_test(
    config: RunConfig, task: Task, splits: dict[str, pd.DataFrame], model: Any,
    data_report: dict[str, Any],
) -> None:  # fmt: skip
    """A task scored by generating answers (``new_tokens``) keeps the test rows
    ``generation.max_eval_rows`` allows (:mod:`tunelab.training.generated_rows`), in place."""
    import torch

    new_tokens = getattr(task, "new_tokens", None)
    if new_tokens is None or "test" not in splits:
        return
    splits["test"], cut = cap_generated_test(
        config.generation.max_eval_rows, splits["test"],
        parameter_counts(model)["total_parameters"], new_tokens,
        torch.cuda.is_available(), config.seed,
    )  # fmt: skip
    if cut:
        data_report["generated_test_rows"] = cut


def count_tokens(
    task: Task, train: pd.DataFrame, tokenizer: Any, length_limit: int | None
) -> tuple[np.ndarray, MeasuredRows | None]:
    """Each training row's token count, and what was tokenised to count it where the task
    keeps that (``measure``: then the counts stop just past ``length_limit``, the most
    :func:`choose_max_length` can return, so a long document is not held whole)."""
    measure = getattr(task, "measure", None)
    if measure is None:
        return chunked_lengths(train, lambda rows: task.token_lengths(rows, tokenizer)), None
    measured = measure(train, tokenizer, (length_limit or DEFAULT_TOKEN_LIMIT) + 1)
    return measured.lengths, measured


# -- fit --------------------------------------------------------------------------------


def fit(parts: RunParts, resume: bool = False, callbacks: list[Any] | None = None) -> FitResult:
    """Train the model: few-shot pairs, or the HF Trainer with tunelab's defaults.

    Args:
        parts: what :func:`prepare_run` returned.
        resume: continue from the newest checkpoint in the run folder.
        callbacks: extra ``transformers.TrainerCallback`` objects for the Trainer.

    Raises:
        RunInterrupted: after Ctrl-C, once the Trainer saved a checkpoint.
    """
    from tunelab.models.used_rows import restore_word_embeddings
    from tunelab.training.embedding_rows import train_used_embedding_rows
    from tunelab.training.health import LearningWatch  # imports transformers
    from tunelab.training.step_timer import StepTimer

    config = parts.config
    with parts.clock.stage("before training"):
        before = _scores_before_training(parts)
    if config.training.method == "few-shot":
        with parts.clock.stage("training"):
            stats = _train_few_shot(parts)
        return FitResult(parts.model, stats, round(time.time() - parts.started, 2), before=before)
    watch = LearningWatch(parts.task, len(parts.splits.get("validation", [])))
    timer = StepTimer()
    resume_from = None
    if resume:
        resume_from = last_checkpoint(parts.checkpoints)
        if resume_from is None:
            log.warning(
                "--resume: no checkpoint in %s yet, starting from the beginning",
                parts.checkpoints,
            )
    used_rows = train_used_embedding_rows(parts, resume_from)
    trainer = build_trainer(
        parts.model, parts.tokenizer, parts.task, parts.encoded["train"],
        parts.encoded.get("validation"), config.training, parts.checkpoints, config.seed,
        parts.precision, compute_loss_func=parts.loss,
        callbacks=[*(callbacks or []), watch, timer, *([used_rows[1]] if used_rows else [])],
        tracking=config.tracking,
        patience_from_step=_patience_from_step(config, parts.data_report),
    )  # fmt: skip
    try:
        with parts.clock.stage("training"):
            train_output = trainer.train(resume_from_checkpoint=resume_from)
    finally:
        if used_rows:  # the plain embedding, whole matrix, from here on
            restore_word_embeddings(parts.model)
    _stop_if_interrupted(trainer, parts.checkpoints)
    stats = {
        "steps": int(train_output.global_step),
        "loss": float(train_output.training_loss),
        "samples_per_second": train_output.metrics.get("train_samples_per_second"),
        "optimizer_seconds": train_output.metrics.get("train_runtime"),
    }
    if used_rows:
        stats["embedding_rows"] = used_rows[0]
    # a resumed run's earlier steps ran in another process, untimed
    throughput = _throughput(parts, trainer, timer.seconds) if resume_from is None else {}
    if throughput:
        stats["throughput"] = throughput
    seconds = round(time.time() - parts.started, 2)
    return FitResult(trainer.model, stats, seconds, trainer, watch.warnings, before)


def _throughput(parts: RunParts, trainer: Any, step_seconds: float) -> dict[str, Any]:
    """Tokens/s of the training steps, FLOPs per token and the share of the machine's peak
    (MFU), logged and returned; empty for inputs without tokens (images)."""
    tokens = dict(parts.data_report.get("tokens") or {})
    counted = getattr(parts.task, "trained_tokens", None)  # rows that train several sequences
    if counted is not None and tokens:
        tokens["total"], tokens["mean"] = counted(parts.encoded["train"])
    epochs = float(getattr(trainer.state, "epoch", 0) or 0)
    if not tokens.get("total") or step_seconds <= 0 or not epochs:
        return {}
    share = 1.0
    if getattr(trainer, "answers_only", False):
        from tunelab.tasks.answer_logits import answer_share

        share = answer_share(parts.encoded["train"])
    found = utilisation(trainer.model, tokens["total"] * epochs, step_seconds, tokens["mean"],
                        parts.precision, output_share=share,
                        forward_passes=getattr(parts.task, "forward_passes", 0.0))  # fmt: skip
    shared = ""
    if trainer.model.device.type == "cpu":
        import torch

        others = other_cpu_load(torch.get_num_threads())
        cores = os.cpu_count() or 1
        if others is not None and others >= BUSY_LOAD * cores:
            found["other_cpu_load"] = round(others, 2)
            # a share of the peak read while other jobs took cores is not the run's own
            shared = (f"; other processes kept about {others:.1f} of the {cores} cores busy "
                      "meanwhile, so this share reads low")  # fmt: skip
    log.info(
        "throughput: %s tokens/s, %s a token: %.1f%% of this machine's %s peak "
        "(%.2f TFLOP/s)%s",
        f"{found['tokens_per_second']:,.0f}", flops_text(found["flops_per_token"]),
        100 * (found["mfu"] or 0), found["peak_source"].split(", ")[-1],
        found["peak_flops"] / 1e12, shared,
    )  # fmt: skip
    return found


TOOL_SCORES = ("tool_call_exact", "tool_name_accuracy")


def _scores_before_training(parts: RunParts) -> dict[str, Any]:
    """The untouched model's flat test scores, for tasks where that is a real starting point
    (a pretrained encoder already embeds); empty otherwise or without a test split."""
    task, test = parts.task, parts.splits.get("test")
    if test is None or not len(test) or not parts.main_process:
        return {}
    wanted = task.scored_before_training
    if wanted is None:
        wanted = answers_before_training(parts.tokenizer, parts.source)
    if not wanted:
        return {}
    outputs = task.forward(
        parts.model, parts.tokenizer, test, parts.max_length, parts.config.training.eval_batch_size
    )
    scores = task.evaluate_outputs(outputs, test)
    flat = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
    # generation's main metric is the loss, which no generated text has: name its text
    # scores, or the scores the task is judged by (preference tuning's)
    judged = [key for key in getattr(task, "judged_by", ()) if key in flat]
    shown = judged or (
        [task.main_metric]
        if task.main_metric in flat
        else [key for key in flat if key != "examples" and not key.endswith("_share")][:4]
    )
    shown += [key for key in TOOL_SCORES if key in flat]  # tool data: do calls come right?
    log.info("before training, test %s", ", ".join(f"{key} {flat[key]:.4g}" for key in shown))
    return flat


def answers_before_training(tokenizer: Any, source: str) -> bool:
    """Whether a model can already answer, so its untuned scores are a real starting point:
    it has a chat template, and tunelab did not pretrain it (a starter's template only
    shapes the rows it will learn from)."""
    pretrained_here = (Path(source) / "pretrain_metrics.json").is_file()
    return bool(getattr(tokenizer, "chat_template", None)) and not pretrained_here


def _train_few_shot(parts: RunParts) -> dict[str, Any]:
    import numpy as np

    from tunelab.models.pooled_classifier import PooledClassifier  # imports torch

    config, training = parts.config, parts.config.training
    if has_sentence_modules(parts.source):
        # the checkpoint's own pooling and normalisation, which [CLS] and a fresh pooler lack
        # (see tunelab.models.pooled_classifier); replaces the classification model
        encoder = load_sentence_transformer(
            parts.source, trust_remote_code=config.model.trust_remote_code,
            revision=config.model.revision,
        )  # fmt: skip
        parts.model = PooledClassifier(encoder, parts.model.config)
    targets = np.asarray(parts.task.targets(parts.splits["train"]))
    return train_few_shot(
        parts.model, parts.tokenizer, parts.encoded["train"], targets, config.few_shot,
        training.learning_rate, config.few_shot.batch_size, parts.precision, config.seed,
    )  # fmt: skip


def _stop_if_interrupted(trainer: Any, checkpoints: Path) -> None:
    """After Ctrl-C the Trainer stopped early with a checkpoint: no final outputs then."""
    from tunelab.training.interrupt import StopOnInterrupt  # imports transformers

    handlers = trainer.callback_handler.callbacks
    if any(isinstance(h, StopOnInterrupt) and h.interrupted for h in handlers):
        raise RunInterrupted(last_checkpoint(checkpoints))


# -- score ------------------------------------------------------------------------------


def score(parts: RunParts, fitted: FitResult) -> Scores:
    """Measure the trained model: training figures, held-out loss, validation and test
    metrics, calibration, the linear baseline, and warnings when it learned nothing.

    Under torchrun/accelerate every process takes part in the held-out loss; only the main
    process goes on to the rest (the others get the training figures and losses alone).
    """
    from tunelab.training.health import final_warnings, still_rising_note  # imports transformers

    task, splits, model = parts.task, parts.splits, fitted.model
    metrics: dict[str, Any] = {
        "train": {
            "seconds": fitted.seconds,
            **fitted.stats,
            "precision": parts.precision,
            "peak_memory_mb": _peak_memory_mb(),
            **parameter_counts(model),
        }
    }
    with parts.clock.stage("predictions"):
        held_out_loss = _held_out_loss(parts, fitted)
    if not parts.main_process:
        return Scores({**metrics, **held_out_loss}, {})
    # after the losses: it may switch the model to inference settings (a KV cache would
    # let packed rows see each other)
    task.finish(base_model(model), parts.tokenizer)
    batch_size = parts.config.training.eval_batch_size
    outputs: dict[str, Any] = {}
    with parts.clock.stage("predictions"), tokenizer_threads():
        for split in (name for name in task.evaluated_splits if name in splits):
            with naming_rows(split):
                outputs[split] = task.forward(
                    model, parts.tokenizer, splits[split], parts.max_length, batch_size,
                    _scoring_precision(parts.precision, len(splits[split])),
                )  # fmt: skip
    if "validation" in outputs:
        metrics["calibration"] = task.calibrate(outputs["validation"], splits["validation"])
    for split in ("validation", "test"):  # a split may have a loss, outputs, or both
        scores = dict(held_out_loss.get(split, {}))
        if split in outputs:
            scores = {**task.evaluate_outputs(outputs[split], splits[split]), **scores}
        if scores:
            metrics[split] = scores
    if fitted.before:
        metrics["before"] = {"test": fitted.before}
    with parts.clock.stage("baseline"):
        baseline = linear_baseline(task, splits, parts.config.seed)
    if baseline:
        metrics["baseline"] = baseline
    metrics["warnings"] = final_warnings(
        task, metrics, fitted.history, fitted.warnings,
        (parts.data_report.get("doctor") or {}).get("leakage"),
    )  # fmt: skip
    rising = still_rising_note(task, fitted.history, parts.config.training.epochs)
    if rising:
        metrics["train"]["still_rising"] = rising
        log.info("%s", rising)
    for warning in metrics["warnings"]:
        log.warning("%s", warning, extra=IN_SUMMARY)  # the CLI's summary shows it again
    return Scores(metrics, outputs)


def _scoring_precision(training_precision: str, rows: int) -> str:
    """How the held-out rows are predicted: as ``tunelab predict`` does by default (checked:
    bf16 with fp32's labels, the close calls run again in fp32) when the run trained in a
    half precision, since that found bf16 the faster choice here; else exact fp32."""
    if training_precision == "fp32":
        return "fp32"
    return resolve_prediction_precision("auto", rows=rows)


def _held_out_loss(parts: RunParts, fitted: FitResult) -> dict[str, dict[str, float]]:
    """Loss and perplexity on validation and test, for tasks whose main metric is the loss."""
    from transformers import EarlyStoppingCallback

    held_out: dict[str, dict[str, float]] = {}
    if fitted.trainer is None or parts.task.main_metric != "loss":
        return held_out
    # training is over: these scores are not a step for early stopping to count (it would
    # only warn that it finds no eval_loss among them)
    fitted.trainer.remove_callback(EarlyStoppingCallback)
    for split in ("validation", "test"):
        if split in parts.splits and len(parts.encoded[split]):
            scores = fitted.trainer.evaluate(parts.encoded[split], metric_key_prefix=split)
            loss = float(scores[f"{split}_loss"])
            held_out[split] = {"loss": loss, "perplexity": math.exp(loss)}
    return held_out


def linear_baseline(
    task: Task, splits: dict[str, pd.DataFrame], seed: int
) -> dict[str, Any] | None:
    """The task's classical baseline fit on the training rows, scored on the held-out ones."""
    started = time.time()
    outputs = task.baseline_outputs(splits, seed)
    if not outputs:
        return None
    scores = {
        split: {
            key: value
            for key, value in task.evaluate_outputs(out, splits[split]).items()
            # the decision threshold is the model's (baseline outputs come shifted to it)
            if isinstance(value, (int, float)) and key != "threshold"
        }
        for split, out in outputs.items()
    }
    return {"method": task.baseline_method, "seconds": round(time.time() - started, 2), **scores}


def _peak_memory_mb() -> float:
    """Peak memory of this process so far: GPU allocations on CUDA, resident set on CPU."""
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


# -- save -------------------------------------------------------------------------------


def save_run(
    parts: RunParts, fitted: FitResult, scores: Scores, command: str | None = None
) -> dict[str, Any]:
    """Write the run folder: model/ (atomically), predictions, data report, history, metrics,
    the resolved config, the model card (model/README.md, naming ``command``) and report.html.

    Returns:
        ``{"output", "model_dir", "metrics", "report"}`` (``report`` None if it failed).
    """
    config, output, model, tokenizer = parts.config, parts.output, fitted.model, parts.tokenizer
    with parts.clock.stage("saving"):
        _save_model(parts, model)
        if "test" in scores.outputs:
            predictions = parts.task.predictions(scores.outputs["test"], parts.splits["test"])
            write_jsonl(output / "predictions.jsonl", predictions)
        write_json(output / "data_report.json", parts.data_report)
        if fitted.trainer is not None:  # loss and metric per logging step and evaluation
            write_json(output / "history.json", fitted.history)
    if fitted.trainer is not None and config.tracking:
        step = fitted.trainer.state.global_step
        log_final_metrics(config.tracking, output, scores.metrics, step)
    write_json(output / "metrics.json", scores.metrics)
    write_text(output / "config.yaml", commented_yaml(config) + "\n")
    try:
        write_model_card(output, command)
    except Exception as error:  # as the report: the run is complete, and push makes a card
        log.warning("model/README.md was not written (%s); tunelab push makes one from the "
                    "run", error)  # fmt: skip
    report: Path | None = None
    try:
        with parts.clock.stage("report"):
            report = build_report(output, loaded=(model, tokenizer, parts.task, parts.max_length))
        log.info("report: %s", report)
    except Exception as error:  # the run itself is complete; a report can be rebuilt later
        log.warning("report.html was not written (%s); rebuild it with: tunelab report %s",
                    error, output)  # fmt: skip
    # written again, now with every stage's time (the report read the first metrics.json)
    scores.metrics["stage_seconds"] = parts.clock.seconds()
    write_json(output / "metrics.json", scores.metrics)
    log.info("time: %s", parts.clock.line())
    return {
        "output": str(output),
        "model_dir": str(output / "model"),
        "metrics": scores.metrics,
        "report": str(report) if report else None,
    }


def _save_model(parts: RunParts, model: Any) -> None:
    """model/ in HF format with tunelab's metadata; a PEFT model saves its adapter alone
    (unless the task folded the adapter into the weights: a sentence encoder)."""
    config = parts.config
    metadata = {**parts.task.metadata(), "max_length": parts.max_length}
    adapter_only = config.peft.method != "none" and hasattr(model, "peft_config")
    if adapter_only:
        metadata["adapter"] = {"method": config.peft.method, "base_model": config.model.name}
        # the folder the base came from, for plain PEFT loading; tunelab also finds a bundled
        # base again by its name when the repository moved
        model.peft_config["default"].base_model_name_or_path = parts.source
    base_model(model).config.tunelab = metadata
    with atomic_folder(parts.output / "model") as model_dir:
        model.save_pretrained(model_dir)
        if adapter_only:
            save_base_settings(base_model(model), model_dir)
        parts.tokenizer.save_pretrained(model_dir)
        write_text(model_dir / "tunelab.yaml", commented_yaml(config) + "\n")
