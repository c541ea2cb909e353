"""The Task protocol: what the trainer, evaluator and predictor need from every task.

Shared code never branches on the task name; whatever differs between tasks lives in the
task's own module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from typing_extensions import Self  # typing.Self from Python 3.11


class StandardColumn:
    """A column as shared code reads it after ``standardize`` (the standardized frame's own
    name), while setting it (``--text-column``) names the column of the user's file, kept in
    the task's attribute ``user_attribute``."""

    def __init__(self, standard: str, user_attribute: str) -> None:
        self.standard, self.user_attribute = standard, user_attribute

    def __get__(self, task: object, owner: type | None = None) -> str:
        return self.standard

    def __set__(self, task: object, value: str) -> None:
        setattr(task, self.user_attribute, value)


@dataclass
class TrainerSetup:
    """How a task trains: the Trainer class, its arguments class, extra TrainingArguments,
    and the task's keyword arguments for the Trainer (collator, metrics, loss, ...)."""

    trainer_class: Any
    arguments_class: Any
    arguments: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnGuess:
    """A column the data chose for a config key the user left unset: which, from what
    evidence, and the command-line flag that sets it instead."""

    key: str  # the config key, e.g. "data.text_column"
    column: str
    evidence: str  # e.g. "the longest texts, 41 characters on average"
    flag: str  # e.g. "--text-column"


@dataclass(frozen=True)
class DataFit:
    """How a training table fits a task, as ``Task.recognise`` reads it.

    ``strength`` 2: the table has the task's own shape (token lists and tags, chat messages,
    image paths, query/document pairs); 1: it can be read this way (any text column and label
    column). ``columns``: the task's column keys the user left unset, as the data fills them.
    ``ambiguity``: the one sentence to stop with, naming both columns and the flag, when two
    columns are equally plausible for one key (raised only if this task is the one trained).
    """

    strength: int
    reason: str
    columns: tuple[ColumnGuess, ...] = ()
    ambiguity: str | None = None


def text_example(processor: Any, frame: pd.DataFrame, column: str, max_length: int) -> Any:
    """Two padded rows of different lengths, so neither the batch nor the sequence dimension
    is traced as a constant; with the dynamic dimensions of each input."""
    text = str(frame[column].iloc[0]) if len(frame) else "样例"
    pair = [str(frame["text_pair"].iloc[0])] * 2 if "text_pair" in frame.columns else None
    batch = processor(
        [text, text + text], pair, padding=True, truncation=True, max_length=max_length,
        return_tensors="pt",
    )  # fmt: skip
    names = [name for name in TEXT_INPUTS if name in batch]
    return {name: batch[name] for name in names}, {name: ("batch", "sequence") for name in names}


TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class OnnxGraph:
    """How ``tunelab export`` makes a task's model one ONNX graph, and runs that graph again.

    ``module(model)`` is a torch module whose forward takes the processor's tensors by name
    (``input_ids, attention_mask[, token_type_ids]`` for text, ``pixel_values`` for images)
    and returns the one tensor the graph outputs under the name ``output``.
    ``example(processor, frame, column, max_length)`` gives the inputs to trace with, by
    name, and the names of each input's dynamic dimensions (batch, sequence, ...; None for
    an axis of fixed size before a dynamic one).
    ``runner(onnx_model, processor)`` turns the ONNX session (``onnx_model(**batch)``
    answers with a namespace holding ``output``) into the model the task's ``forward`` runs;
    ``values(outputs)`` picks from ``forward``'s outputs what the parity check compares with
    PyTorch, which names it ``max_abs_<compared>_diff``.
    """

    module: Callable[[Any], Any]
    output: str = "logits"
    runner: Callable[[Any, Any], Any] = lambda onnx_model, tokenizer: onnx_model
    values: Callable[[Any], Any] = lambda outputs: outputs
    compared: str = "logit"
    example: Callable[[Any, pd.DataFrame, str, int], Any] = text_example


def logits_module(model: Any) -> Any:
    """A module whose forward takes the tokenizer's tensors by name and returns the logits."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits

    return LogitsOnly()


# classifiers and taggers: the graph outputs the logits, and the tasks' own forward runs the
# session as it runs the transformers model
LOGITS_GRAPH = OnnxGraph(logits_module)


def standard_trainer_setup(task: Any, tokenizer: Any, loss: Any, evaluate: bool) -> TrainerSetup:
    """The plain ``transformers.Trainer`` with the task's collator, metrics and loss; tasks
    chosen by loss (generation) need no predictions during evaluation, only the loss."""
    from transformers import Trainer, TrainingArguments

    loss_only = task.main_metric == "loss"
    return TrainerSetup(
        Trainer,
        TrainingArguments,
        {"prediction_loss_only": loss_only},
        {
            "processing_class": tokenizer,
            "data_collator": task.collator(tokenizer),
            "compute_metrics": task.compute_metrics if evaluate and not loss_only else None,
            "compute_loss_func": loss,
            "preprocess_logits_for_metrics": None if loss_only else task.preprocess_logits,
        },
    )


class Task(Protocol):
    """One kind of problem (text classification, token classification, ...)."""

    # settable: evaluate/predict point a loaded task at the columns of another file
    text_column: str
    text_pair_column: str | None
    label_column: str

    # read-only here, so a task may state them as class attributes or compute them
    @property
    def name(self) -> str:
        """The registry name (``text-classification``, ...)."""
        ...

    @property
    def main_metric(self) -> str:
        """The metric that picks the best checkpoint and leads every summary."""
        ...

    @property
    def greater_is_better(self) -> bool:
        """Whether a higher ``main_metric`` is better."""
        ...

    @property
    def problem_type(self) -> str:
        """single_label, multi_label, regression (text), sequence (tags), generation; only
        single_label data is stratified when split and may train few-shot."""
        ...

    @property
    def labels(self) -> list[str]:
        """The names the model predicts, in id order; empty without labels."""
        ...

    @property
    def evaluated_splits(self) -> tuple[str, ...]:
        """Held-out splits the model predicts after training."""
        ...

    # capabilities that shared code reads instead of testing the task's name
    @property
    def explains(self) -> str | None:
        """What `tunelab explain` attributes: "text", "tokens", "occlusion" (the parts of an
        image or clip, :mod:`tunelab.explain.occlusion`), or None."""
        ...

    @property
    def exportable(self) -> tuple[str, ...]:
        """Formats `tunelab export` writes: ("onnx",), ("gguf",) (causal models) or ()."""
        ...

    @property
    def onnx_graph(self) -> OnnxGraph | None:
        """How ONNX export traces the model and runs the graph (None: not exportable)."""
        ...

    @property
    def embeds(self) -> bool:
        """Whether the model maps each text to a vector (its records carry ``embedding``);
        the server then answers the OpenAI-style ``POST /v1/embeddings``."""
        ...

    @property
    def search_batch_sizes(self) -> tuple[int, ...]:
        """The default search space's batch sizes."""
        ...

    @property
    def scored_before_training(self) -> bool | None:
        """Whether the test split is scored with the untouched model too (a pretrained
        encoder already embeds; a new classification head would only guess). ``None``: when
        the model can already answer, i.e. it has a chat template that tunelab did not give it
        (:func:`tunelab.training.finetune.answers_before_training`)."""
        ...

    @property
    def baseline_method(self) -> str:
        """What :meth:`baseline_outputs` fits, in words ("" when the task has none)."""
        ...

    @property
    def report_sections(self) -> Callable[[Any, Any], Any]:
        """The task's sections of report.html: (run folder, plots) -> TaskReport."""
        ...

    @property
    def model_kind(self) -> str:
        """The kind of pretrained model it fine-tunes, as the model catalog, the model packages
        and the ``model.name: auto`` choice tag them: "encoder" (a body under a small head),
        "seq2seq" (source text to target text), "causal" (continues a prompt or chat), "image"
        or "audio" (an image or audio encoder under a classification head), "image-text" (an
        image encoder under a text decoder), "vision-chat" (a chat model that reads images)."""
        ...

    @property
    def input_kind(self) -> str:
        """What one input is: "text" (a string the model reads), "image" or "audio" (the path
        of such a file); a data folder is read for files of this kind, and the server takes
        texts only, so it refuses models whose inputs are files."""
        ...

    @property
    def trains_few_shot(self) -> bool:
        """Whether ``training.method: few-shot`` can train it (contrastive pairs of labelled
        examples); `tunelab recommend` advises it when there are few examples per class."""
        ...

    @property
    def takes_virtual_tokens(self) -> bool:
        """Whether prompt- and prefix-tuning may put learned tokens before its inputs (a tagger
        has no tag for them)."""
        ...

    @property
    def packs_rows(self) -> bool:
        """Whether training packs several rows into one sequence (then rows cannot each get
        their own virtual tokens)."""
        ...

    @property
    def batch_tokens_from_rows(self) -> bool:
        """Whether a training batch holds only the encoded training rows' token ids and
        padding (its collator adds none), so the word-embedding rows no training row uses can
        stay out of training (:mod:`tunelab.models.used_rows`)."""
        ...

    @property
    def doctor_checks(self) -> str | None:
        """What `tunelab doctor --task` checks in this task's files: "texts" (texts and their
        labels: duplicates, conflicts, leakage, label errors), "tags" (token sequences and their
        tags), "images" (image files: unreadable, duplicates, leakage, sizes, classes; the
        task's own :meth:`diagnose`), or None (no doctor of its own: ``tunelab doctor`` runs
        :meth:`diagnose` as training does)."""
        ...

    @classmethod
    def from_run_config(cls, config: Any) -> Self:
        """The task a :class:`tunelab.config.RunConfig` describes."""
        ...

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> Self:
        """The task of a saved model, from its ``config.tunelab`` metadata and config."""
        ...

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        """``main_metric`` of a saved model, from its ``config.tunelab`` metadata alone."""
        ...

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        """Columns the data must have, each mapped to the config option that names it."""
        ...

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """Check a file's rows for the task's columns and bring them into the task's shape."""
        ...

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """How the training table fits this task (None: it cannot be read as this task), and
        the columns it would read for its column keys not in ``given`` (the dotted config keys
        the user set); never raises for the data, which other tasks may fit."""
        ...

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """The data doctor's report on the splits, for ``data_report.json``."""
        ...

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        """The few lines of the doctor's findings that ``tunelab train`` prints."""
        ...

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Cleaned rows of one split and what cleaning changed."""
        ...

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Last changes to the trained model before it is saved (e.g. generation settings)."""
        ...

    def auto_model_class(self) -> Any:
        """The ``AutoModelFor...`` class of this task."""
        ...

    def processor_class(self) -> Any:
        """The ``Auto...`` class that loads what turns inputs into model features:
        ``AutoTokenizer`` for text, ``AutoImageProcessor`` for images, ``AutoFeatureExtractor``
        for audio."""
        ...

    def clean_text(self, text: str) -> str:
        """One input text as the model saw its training texts (normalisation, if any)."""
        ...

    def targets(self, frame: pd.DataFrame) -> Any:
        """The training targets of labelled rows: class ids (single-label), label vectors or
        values; tasks without labels (generation) have none."""
        ...

    def fit_labels(self, train: pd.DataFrame) -> None:
        """Learn the label space from the training rows (fails on unusable labels)."""
        ...

    def check_labels(self, frame: pd.DataFrame) -> None:
        """Fail if held-out rows carry labels that training never saw."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What a saved model must remember to predict like this task (JSON-able)."""
        ...

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        """The model for this task, from a resolved model source."""
        ...

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        """Untruncated token count of each row."""
        ...

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """Model features (a ``datasets.Dataset``) with labels and a ``length`` column."""
        ...

    def loss_function(
        self, train: pd.DataFrame, class_weights: str, label_smoothing: float
    ) -> tuple[Any, dict[str, Any]]:
        """A replacement loss for imbalanced data (or ``None``), and what was decided."""
        ...

    def collator(self, tokenizer: Any) -> Any:
        """Batches features with dynamic padding."""
        ...

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        """The Trainer this task trains with, given the model, the loss from
        :meth:`loss_function` and the encoded splits (``validation`` None when absent);
        most tasks return :func:`standard_trainer_setup`."""
        ...

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> Any:  # fmt: skip
        """Model outputs for the rows of ``frame`` (what evaluate/predictions read)."""
        ...

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Shrink logits during evaluation in training (``preprocess_logits_for_metrics``)."""
        ...

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Flat metrics from the Trainer's ``(predictions, label_ids)``."""
        ...

    def calibrate(self, outputs: Any, frame: pd.DataFrame) -> dict[str, Any]:
        """Tune decision settings on validation outputs; returns what was chosen."""
        ...

    def evaluate_outputs(self, outputs: Any, frame: pd.DataFrame) -> dict[str, Any]:
        """All metrics for model outputs on labelled rows: flat scores plus details."""
        ...

    def predictions(self, outputs: Any, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One JSON-able record per row (with the gold target where the row has one)."""
        ...

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence saying the model learned nothing (one class, only ``O``, empty or
        repeated text), judged from flat ``scores`` on ``examples`` rows; ``None`` if it
        learned. ``before``: the untuned model's scores on the same rows, where measured."""
        ...

    def baseline_outputs(self, splits: dict[str, pd.DataFrame], seed: int = 0) -> dict[str, Any]:
        """A cheap classical model fit on ``splits['train']``: its outputs on the validation
        and test rows, scored like the model's by :meth:`evaluate_outputs`; ``{}`` if the task
        has none."""
        ...
