"""Text classification: single-label, multi-label, sentence pairs and regression."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data import normalize
from tunelab.data.clean import clean_rows
from tunelab.data.columns import (
    Choice,
    ColumnProfile,
    guess_label_column,
    guess_label_separator,
    guess_text_column,
    guess_text_pair,
)
from tunelab.data.doctor import diagnose, doctor_summary
from tunelab.data.load import require_columns
from tunelab.errors import UserError
from tunelab.evaluation import metrics as m
from tunelab.evaluation import report_classification
from tunelab.inference import forward_in_batches, top_two_gap
from tunelab.models.first_token import first_token_last_layer
from tunelab.models.linear_baseline import METHOD as BASELINE_METHOD
from tunelab.models.linear_baseline import linear_baseline_outputs
from tunelab.models.load import load_head_model
from tunelab.models.unpadded import UnpaddedCollator, use_unpadded_batches
from tunelab.tasks.arrow_rows import (
    MeasuredRows,
    encoded_table,
    labelled_dataset,
    measure_rows,
)
from tunelab.tasks.base import (
    LOGITS_GRAPH,
    ColumnGuess,
    DataFit,
    TrainerSetup,
    standard_trainer_setup,
)

BASELINE_ROWS = 50_000
HF_PROBLEM_TYPES = {
    "single_label": "single_label_classification",
    "multi_label": "multi_label_classification",
    "regression": "regression",
}


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _label_name(value: Any) -> str:
    number = _as_number(value)
    if number is not None and math.isfinite(number) and number.is_integer():
        return str(int(number))  # 1, 1.0 and "1" are one class
    return str(value).strip()


def _sorted_names(names: set[str]) -> list[str]:
    if all(_as_number(n) is not None for n in names):
        return sorted(names, key=lambda n: float(n))
    return sorted(names)


def _tie_sentence(
    source: str, role: str, tie: tuple[ColumnProfile, ColumnProfile], flag: str
) -> str:
    """One sentence: which two columns could both be the text (or the label) column, and the
    flag that decides."""

    def shown(profile: ColumnProfile) -> str:
        if role == "text":
            return f"'{profile.name}' ({profile.mean_chars:.0f} characters on average)"
        values = "lists" if profile.kind == "list" else f"{profile.distinct} values"
        return f"'{profile.name}' ({values})"

    return (
        f"{source} has two columns that could equally be the {role} column, {shown(tie[0])} "
        f"and {shown(tie[1])}; name it with {flag}"
    )


class TextClassification:
    """Assign one label, several labels, or a number to a text or a pair of texts."""

    name = "text-classification"
    evaluated_splits = ("validation", "test")
    explains = "text"
    exportable = ("onnx",)
    onnx_graph = LOGITS_GRAPH
    embeds = False
    search_batch_sizes = (16, 32, 64)
    report_sections = staticmethod(report_classification.sections)
    scored_before_training = False  # a new head only guesses before training
    baseline_method = BASELINE_METHOD
    model_kind = "encoder"
    trains_few_shot = True  # single-label data; prepare_run refuses the others
    takes_virtual_tokens = True
    packs_rows = False
    batch_tokens_from_rows = True
    doctor_checks = "texts"
    input_kind = "text"

    def __init__(
        self,
        text_column: str = "text",
        label_column: str = "label",
        text_pair_column: str | None = None,
        label_separator: str | None = None,
        problem_type: str = "auto",
        threshold: float | str = "auto",
        labels: list[str] | None = None,
        text_cleaning: dict[str, bool] | None = None,
        padding_free: bool = True,
    ) -> None:
        self.text_column = text_column
        self.label_column = label_column
        self.text_pair_column = text_pair_column
        self.label_separator = label_separator
        self.problem_type = problem_type
        self.threshold: float | str = threshold
        self.threshold_tuned = False  # set on validation rows (threshold "auto")
        self.labels: list[str] = list(labels or [])
        # the same normalisation at training and prediction time (see data.clean)
        self.text_cleaning: dict[str, bool] = dict(text_cleaning or {})
        self.padding_free = padding_free  # training batches without padding where it applies

    @classmethod
    def from_run_config(cls, config: Any) -> TextClassification:
        """Build from a :class:`tunelab.config.RunConfig`."""
        return cls(
            text_column=config.data.text_column,
            label_column=config.data.label_column,
            text_pair_column=config.data.text_pair_column,
            label_separator=config.data.label_separator,
            problem_type=config.classification.problem_type,
            threshold=config.classification.threshold,
            padding_free=config.classification.padding_free,
            text_cleaning={
                key: getattr(config.data.clean, key)
                for key in ("nfkc", "whitespace", "strip_html", "lowercase")
            },
        )

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> TextClassification:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        labels = [model_config.id2label[i] for i in sorted(model_config.id2label)]
        problem_type = meta["problem_type"]
        return cls(
            text_column=meta.get("text_column", "text"),
            label_column=meta.get("label_column", "label"),
            text_pair_column=meta.get("text_pair_column"),
            label_separator=meta.get("label_separator"),
            problem_type=problem_type,
            threshold=meta.get("threshold", 0.5),
            labels=[] if problem_type == "regression" else labels,
            text_cleaning=meta.get("text_cleaning"),
        )

    # -- what the task needs -------------------------------------------------------------

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        """The main metric of a saved model with this ``config.tunelab`` metadata."""
        return {"multi_label": "f1_micro", "regression": "mse"}.get(
            metadata.get("problem_type", ""), "f1_macro"
        )

    @property
    def main_metric(self) -> str:
        return TextClassification.main_metric_of({"problem_type": self.problem_type})

    @property
    def greater_is_better(self) -> bool:
        return self.problem_type != "regression"

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        columns = {self.text_column: "data.text_column"}
        if self.text_pair_column:
            columns[self.text_pair_column] = "data.text_pair_column"
        if with_labels:
            columns[self.label_column] = "data.label_column"
        return columns

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Nothing to add to the model before it is saved."""

    def processor_class(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """The rows unchanged, once the columns the task reads are known to exist."""

        columns = self.required_columns(with_labels)
        require_columns(frame, list(columns), columns)
        return frame

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """Any table with a text column and a label column fits (strength 1). Unset columns are
        guessed: the default name, then a name that says text or label, then the contents
        (longest free text; the only column of a few repeated values)."""
        taken = [c for c in (self.text_pair_column,) if c]
        if "data.label_column" in given:
            taken.append(self.label_column)
        pair = None
        if not {"data.text_column", "data.text_pair_column"} & given and not self.text_pair_column:
            pair = guess_text_pair(frame, taken)
        if pair is not None:
            text = Choice(pair[0], f"a text pair's first column, beside '{pair[1]}'")
            taken.append(pair[1])
        elif "data.text_column" in given:
            text = Choice(self.text_column)
        else:
            text = guess_text_column(frame, self.text_column, taken)
        taken += [text.column] if text.column else [p.name for p in text.tie or ()]
        label = (
            Choice(self.label_column)
            if "data.label_column" in given
            else guess_label_column(frame, self.label_column, taken)
        )
        if not (text.column or text.tie) or not (label.column or label.tie):
            return None
        roles = (
            ("data.text_column", "--text-column", "text", text),
            ("data.label_column", "--label-column", "label", label),
        )
        guesses = tuple(
            ColumnGuess(key, choice.column, choice.evidence, flag)
            for key, flag, _, choice in roles
            if key not in given and choice.column
        )
        separator = None
        if label.column and self.problem_type == "auto" and not self.label_separator:
            separator = guess_label_separator(frame[label.column])
        if separator is not None and "data.label_separator" not in given:
            guesses += (ColumnGuess("data.label_separator", separator[0],
                                    f"multi-label: {separator[1]}",
                                    "--label-separator"),)  # fmt: skip
        if pair is not None:
            evidence = "a text pair's second column, named as pair data sets name it"
            guesses += (ColumnGuess("data.text_pair_column", pair[1], evidence,
                                    "--text-pair-column"),)  # fmt: skip
        source = frame.attrs.get("source", "the data")
        ambiguity = next(
            (_tie_sentence(source, role, choice.tie, flag) for _, flag, role, choice in roles
             if choice.tie),
            None,
        )  # fmt: skip
        shape = "a text pair and a label column" if pair else "a text column and a label column"
        return DataFit(1, shape, guesses, ambiguity)

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """The data doctor's report (duplicates, conflicts, leakage, balance, label errors)."""

        return diagnose(
            frames, self.text_column, self.label_column, find_label_errors=find_label_errors,
            seed=seed, text_pair_column=self.text_pair_column,
            label_separator=self.label_separator,
        )  # fmt: skip

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        return doctor_summary(report)

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Normalise texts; in training rows also drop duplicates, conflicts, extreme lengths."""

        columns = [c for c in (self.text_column, self.text_pair_column) if c]
        return clean_rows(frame, columns, self.label_column, clean, is_training=is_training,
                          label_separator=self.label_separator)  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "text_column": self.text_column,
            "text_pair_column": self.text_pair_column,
            "label_column": self.label_column,
            "label_separator": self.label_separator,
            "problem_type": self.problem_type,
            "threshold": self.threshold if self.problem_type == "multi_label" else None,
            "text_cleaning": self.text_cleaning,
        }

    # -- labels --------------------------------------------------------------------------

    def _label_sets(self, frame: pd.DataFrame) -> list[list[str]]:
        sets = []
        for value in frame[self.label_column]:
            if isinstance(value, (list, tuple, np.ndarray)):
                items = [_label_name(v) for v in value]
            elif self.label_separator:
                items = [_label_name(v) for v in str(value).split(self.label_separator)]
            else:
                items = [_label_name(value)]
            sets.append(sorted({item for item in items if item}))
        return sets

    def _detect_problem_type(self, frame: pd.DataFrame) -> str:
        values = frame[self.label_column]
        if self.label_separator or values.map(lambda v: isinstance(v, (list, tuple))).any():
            return "multi_label"
        numbers = values.map(_as_number)
        if numbers.notna().all() and not all(float(n).is_integer() for n in numbers):
            return "regression"
        return "single_label"

    def fit_labels(self, train: pd.DataFrame) -> None:
        source = train.attrs.get("source", "training data")
        if self.problem_type == "auto":
            self.problem_type = self._detect_problem_type(train)
        if self.problem_type == "regression":
            numbers = train[self.label_column].map(_as_number)
            if numbers.isna().any():
                row = numbers.index[numbers.isna()][0]
                raise UserError(
                    f"{source} row {row}: label {train[self.label_column][row]!r} in column "
                    f"'{self.label_column}' is not a number, but the task is regression"
                )
            self.labels = []
            return
        names = {name for labels in self._label_sets(train) for name in labels}
        if len(names) < 2:
            only = f" '{next(iter(names))}'" if names else ""
            raise UserError(
                f"{source} has only one class{only} in column '{self.label_column}'; a classifier "
                "needs at least two (check the label column, or use a float target for regression)"
            )
        self.labels = _sorted_names(names)

    def check_labels(self, frame: pd.DataFrame) -> None:
        if self.problem_type == "regression":
            return
        known = set(self.labels)
        for row, labels in zip(frame.index, self._label_sets(frame), strict=True):
            unknown = [name for name in labels if name not in known]
            if unknown:
                raise UserError(
                    f"{frame.attrs.get('source', 'data')} row {row} has label '{unknown[0]}' that "
                    f"the training data never has (known: {', '.join(self.labels)}); fix the "
                    "label or add training examples of it"
                )

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        """Targets as the model sees them: class ids, 0/1 rows, or floats."""
        if self.problem_type == "regression":
            return frame[self.label_column].map(_as_number).to_numpy(dtype=np.float32)
        index = {name: i for i, name in enumerate(self.labels)}
        sets = self._label_sets(frame)
        if self.problem_type == "single_label":
            return np.array([index[labels[0]] for labels in sets], dtype=np.int64)
        rows = np.zeros((len(sets), len(self.labels)), dtype=np.float32)
        for i, labels in enumerate(sets):
            rows[i, [index[name] for name in labels]] = 1.0
        return rows

    # -- model and features --------------------------------------------------------------

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        from transformers import AutoModelForSequenceClassification

        regression = self.problem_type == "regression"
        id2label = {0: "value"} if regression else dict(enumerate(self.labels))
        model = load_head_model(
            AutoModelForSequenceClassification,
            source,
            num_labels=len(id2label),
            id2label=id2label,
            label2id={name: i for i, name in id2label.items()},
            problem_type=HF_PROBLEM_TYPES[self.problem_type],
            **load_kwargs,
        )
        first_token_last_layer(model)  # same logits and gradients, less work
        return model

    def clean_text(self, text: str) -> str:
        """``text`` normalised as the training texts were (``classification.text_cleaning``)."""
        return normalize.clean_text(text, **self.text_cleaning)

    def _texts(self, frame: pd.DataFrame) -> tuple[list[str], list[str] | None]:
        def column(name: str) -> list[str]:
            return [self.clean_text(t) for t in frame[name].astype(str)]

        texts = column(self.text_column)
        pairs = column(self.text_pair_column) if self.text_pair_column else None
        return texts, pairs

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        texts, pairs = self._texts(frame)
        encoded = tokenizer(texts, pairs, truncation=False, verbose=False)
        return np.array([len(ids) for ids in encoded["input_ids"]])

    def measure(self, frame: pd.DataFrame, tokenizer: Any, cap: int) -> MeasuredRows:
        """Each row's token count (at most ``cap``) and its encoding, kept for :meth:`encode`
        to reuse (rows tokenised once, not once to count and once to train)."""
        return measure_rows(frame, lambda rows: self.tokenize(rows, tokenizer, cap), cap)

    def tokenize(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> dict[str, list]:
        """Token ids of each row, truncated to ``max_length`` (no padding)."""
        texts, pairs = self._texts(frame)
        return dict(tokenizer(texts, pairs, truncation=True, max_length=max_length))

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> np.ndarray:  # fmt: skip
        """Logits ``(rows, labels)`` for the rows of ``frame``, in length-sorted batches.

        A BERT-family ``model`` is set to run its last layer for the first token only
        (:func:`~tunelab.models.first_token.first_token_last_layer`): the same logits, faster.
        """
        first_token_last_layer(model)
        features = self.tokenize(frame, tokenizer, max_length)
        return forward_in_batches(
            model, tokenizer, features, batch_size, precision, margin=self._decision_margin()
        )

    def decision_threshold(self) -> float:
        """The probability at which a multi-label model gives a label (0.5 until tuned)."""
        return 0.5 if self.threshold == "auto" else float(self.threshold)

    def decision_logit(self) -> float:
        """The logit at which a multi-label model gives a label: ``sigmoid(x) >= threshold``
        exactly where ``x >=`` this."""
        threshold = self.decision_threshold()
        return float(np.log(threshold / (1 - threshold)))

    def _decision_margin(self) -> Callable[[np.ndarray], float] | None:
        """How far a row's logits are from another decision (``None``: a regression's value
        has no decision to keep, so it is not predicted in checked precision)."""
        if self.problem_type == "single_label":
            return top_two_gap
        if self.problem_type != "multi_label":
            return None
        if not 0 < self.decision_threshold() < 1:
            return lambda logits: float("inf")
        boundary = self.decision_logit()
        return lambda logits: float(np.abs(logits - boundary).min(initial=np.inf))

    def encode(
        self, frame: pd.DataFrame, tokenizer: Any, max_length: int,
        measured: MeasuredRows | None = None,
    ) -> Any:  # fmt: skip
        """Model features with labels and a ``length`` column; ``measured`` (what
        :meth:`measure` returned for ``frame``) saves tokenising again the rows that fit."""

        def tokenize(rows: pd.DataFrame) -> dict[str, list]:
            return self.tokenize(rows, tokenizer, max_length)

        if measured is not None:
            table = measured.at_length(max_length, frame, tokenize)
        else:
            table = encoded_table(frame, tokenize)
        return labelled_dataset(table, {"labels": self.targets(frame).tolist()})

    def loss_function(
        self, train: pd.DataFrame, class_weights: str = "auto", label_smoothing: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        """A class-weighted, optionally smoothed cross-entropy for imbalanced single-label data.

        Returns:
            The loss for ``Trainer(compute_loss_func=...)`` (``None``: the model's own loss)
            and what was decided, for the data report.
        """
        if self.problem_type == "multi_label":
            return positive_weighted_loss(self.targets(train), self.labels, class_weights)
        if self.problem_type != "single_label":
            return None, {}
        return class_weighted_loss(self.targets(train), self.labels, class_weights, label_smoothing)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    # -- metrics and predictions ---------------------------------------------------------

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        """The standard setup; with ``padding_free`` and a model that can take them, batches
        are packed (:mod:`tunelab.models.unpadded`) for training and validation alike."""
        setup = standard_trainer_setup(self, tokenizer, loss, validation is not None)
        first_position = use_unpadded_batches(model) if self.padding_free else None
        if first_position is not None:
            setup.inputs["data_collator"] = UnpaddedCollator(
                setup.inputs["data_collator"], first_position
            )
        return setup

    def _decide(self, outputs: np.ndarray) -> np.ndarray:
        if self.problem_type == "single_label":
            return outputs.argmax(axis=-1)
        if self.problem_type == "multi_label":
            return (m.sigmoid(outputs) >= self.decision_threshold()).astype(int)
        return outputs.reshape(-1)

    def _scores(self, outputs: np.ndarray, y_true: np.ndarray) -> dict[str, float]:
        decided = self._decide(outputs)
        if self.problem_type == "single_label":
            # how many classes the model uses at all: 1 is the collapse check's clearest sign
            spread = {"predicted_classes": float(len(np.unique(decided)))}
            return {**m.single_label_metrics(y_true, decided, len(self.labels)), **spread}
        if self.problem_type == "multi_label":
            return m.multi_label_metrics(y_true.astype(int), decided)
        return m.regression_metrics(y_true, decided)

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        return logits[0] if isinstance(logits, tuple) else logits

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        outputs, label_ids = eval_pred[0], eval_pred[1]
        if isinstance(outputs, tuple):
            outputs = outputs[0]
        return self._scores(np.asarray(outputs, dtype=np.float32), np.asarray(label_ids))

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence when ``scores`` show a model that learned nothing, else ``None``.

        Single-label: one class predicted for every row, or macro-F1 within noise of chance
        (1 / classes, which is also the most a majority-class guess reaches); regression:
        no correlation with the targets; multi-label (where the per-label scores are there,
        at the end): labels that the rows carry and the model never finds.
        """
        if self.problem_type == "multi_label":
            return _missed_labels(scores.get("per_class") or {}, scores.get("f1_micro", 0.0))
        if self.problem_type == "regression":
            if scores.get("pearson", 1.0) < 0.1:
                return (
                    f"the predictions do not follow the targets (Pearson "
                    f"{scores.get('pearson', 0):.3f}); try a higher training.learning_rate, "
                    "more epochs or a pretrained model (--model)"
                )
            return None
        if self.problem_type != "single_label" or len(self.labels) < 2:
            return None
        f1, chance = float(scores.get("f1_macro", 0.0)), 1.0 / len(self.labels)
        remedy = (
            "try a pretrained model (--model), a higher training.learning_rate, more epochs, "
            "training.class_weights=balanced, or check that the labels belong to the texts"
        )
        if scores.get("predicted_classes") == 1:
            return (
                f"the model predicts one class for every text (macro-F1 {f1:.3f}, no better "
                f"than always answering the majority class); {remedy}"
            )
        margin = max(0.02, 1.0 / math.sqrt(max(examples, 1)))  # sampling noise of the score
        if f1 < chance + margin:
            return (
                f"macro-F1 {f1:.3f} is within noise of chance ({chance:.3f} for "
                f"{len(self.labels)} classes on {examples} rows): the model learned nothing "
                f"usable; {remedy}"
            )
        return None

    def baseline_outputs(
        self, splits: dict[str, pd.DataFrame], seed: int = 0
    ) -> dict[str, np.ndarray]:
        """The linear baseline's outputs on the validation and test rows, fit on train.

        Pairs are joined with a separator; the outputs score with :meth:`evaluate_outputs`.
        """

        def texts(frame: pd.DataFrame) -> list[str]:
            first, second = self._texts(frame)
            return (
                first
                if second is None
                else [f"{a} ||| {b}" for a, b in zip(first, second, strict=True)]
            )

        train = splits["train"]
        if len(train) > BASELINE_ROWS:  # the fit grows faster than the data; a sample suffices
            train = train.sample(n=BASELINE_ROWS, random_state=seed)
        if self.problem_type != "regression" and len(set(self.targets(train).flatten())) < 2:
            return {}
        scored: dict[str, list[str]] = {
            name: texts(splits[name]) for name in ("validation", "test") if name in splits
        }
        outputs = linear_baseline_outputs(
            texts(train), self.targets(train), self.problem_type, scored, seed
        )
        return self._at_own_threshold(outputs, splits)

    def _at_own_threshold(
        self, outputs: dict[str, np.ndarray], splits: dict[str, pd.DataFrame]
    ) -> dict[str, np.ndarray]:
        """Multi-label baseline outputs shifted so that the model's tuned threshold decides them
        as the baseline's own best threshold on the validation rows would: each model is
        scored at the threshold that suits it (the baseline's probabilities are not the
        model's), with the one decision rule :meth:`evaluate_outputs` applies."""
        if self.problem_type != "multi_label" or not self.threshold_tuned:
            return outputs
        if "validation" not in outputs:
            return outputs
        validation = splits["validation"]
        own = m.best_threshold(
            m.sigmoid(outputs["validation"]), self.targets(validation).astype(int)
        )
        model = float(self.threshold)
        shift = float(np.log(model / (1 - model)) - np.log(own / (1 - own)))
        return {split: values + shift for split, values in outputs.items()}

    def calibrate(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        if self.problem_type != "multi_label" or self.threshold != "auto":
            return {}
        self.threshold = m.best_threshold(m.sigmoid(outputs), self.targets(frame).astype(int))
        self.threshold_tuned = True
        return {"threshold": self.threshold}

    def evaluate_outputs(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        y_true = self.targets(frame)
        result: dict[str, Any] = {"examples": len(frame), **self._scores(outputs, y_true)}
        if self.problem_type == "single_label":
            decided = self._decide(outputs)
            result["per_class"] = m.per_class_report(y_true, decided, self.labels)
            result["confusion_matrix"] = m.confusion(y_true, decided, self.labels)
        elif self.problem_type == "multi_label":
            result["threshold"] = self.threshold
            # each label's own precision, recall and F1 (of its rows), as a class's are
            result["per_class"] = m.per_class_report(
                y_true.astype(int), self._decide(outputs), self.labels
            )
        return result

    def predictions(self, outputs: np.ndarray, frame: pd.DataFrame) -> list[dict[str, Any]]:
        # the user's own text, not the normalised form the model read
        texts = frame[self.text_column].astype(str).tolist()
        pairs = frame[self.text_pair_column].astype(str).tolist() if self.text_pair_column else None
        has_gold = self.label_column in frame.columns
        gold = self._label_sets(frame) if has_gold and self.problem_type != "regression" else None
        records: list[dict[str, Any]] = []
        if self.problem_type == "single_label":
            probabilities = m.softmax(outputs)
        elif self.problem_type == "multi_label":
            probabilities = m.sigmoid(outputs)
        decided = self._decide(outputs)
        for i, text in enumerate(texts):
            record: dict[str, Any] = {"text": text}
            if pairs is not None:
                record["text_pair"] = pairs[i]
            if self.problem_type == "regression":
                record["value"] = float(decided[i])
                if has_gold:
                    record["gold"] = _as_number(frame[self.label_column].iloc[i])
            else:
                probs = {
                    name: round(float(p), 6)
                    for name, p in zip(self.labels, probabilities[i], strict=True)
                }
                if self.problem_type == "single_label":
                    record["label"] = self.labels[int(decided[i])]
                    record["score"] = probs[record["label"]]
                else:
                    record["labels"] = [
                        n for n, on in zip(self.labels, decided[i], strict=True) if on
                    ]
                record["probabilities"] = probs
                if gold is not None:
                    record["gold"] = gold[i][0] if self.problem_type == "single_label" else gold[i]
            records.append(record)
        return records


def _imbalance(counts: np.ndarray, class_weights: str) -> tuple[float, bool]:
    """The largest count over the smallest, and whether ``class_weights`` weights the loss:
    ``balanced`` always, ``auto`` from 3:1 on, ``none`` never."""
    ratio = float(counts.max() / max(counts.min(), 1))
    return ratio, class_weights == "balanced" or (class_weights == "auto" and ratio >= 3.0)


def class_weighted_loss(
    targets: np.ndarray, class_names: list[str], class_weights: str, label_smoothing: float
) -> tuple[Any, dict[str, Any]]:
    """A class-weighted, optionally smoothed cross-entropy for imbalanced single-label data
    (text or images).

    Args:
        targets: the training rows' class ids.
        class_names: the class names, in id order.
        class_weights: ``auto`` (weighted when the largest class is 3x the smallest or more),
            ``balanced`` or ``none``.
        label_smoothing: as ``torch.nn.functional.cross_entropy`` takes it.

    Returns:
        The loss for ``Trainer(compute_loss_func=...)`` (``None``: the model's own loss)
        and what was decided, for the data report.
    """
    counts = np.bincount(targets, minlength=len(class_names))
    ratio, weighted = _imbalance(counts, class_weights)
    info: dict[str, Any] = {"imbalance_ratio": round(ratio, 2), "class_weights": None,
                            "label_smoothing": label_smoothing,
                            "weighted_loss": "class-weighted cross-entropy"}  # fmt: skip
    if not weighted and label_smoothing == 0:
        return None, info
    import torch
    import torch.nn.functional as F

    # "balanced" weights: n / (classes * count), so every class adds up to the same weight
    weights = counts.sum() / (len(counts) * np.maximum(counts, 1)) if weighted else None
    if weights is not None:
        info["class_weights"] = dict(zip(class_names, weights.round(4).tolist(), strict=True))
    weight_tensor = None if weights is None else torch.tensor(weights, dtype=torch.float32)

    def loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        logits = outputs["logits"].float()
        weight = None if weight_tensor is None else weight_tensor.to(logits.device)
        return F.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing)

    return loss, info


def _missed_labels(per_label: dict[str, dict[str, float]], f1_micro: float) -> str | None:
    """A sentence naming the labels held-out rows carry that the model never found in any
    of them (all of them: it learned nothing), or ``None``."""
    present = {name: s for name, s in per_label.items() if s.get("support", 0) > 0}
    missed = [name for name, s in present.items() if s.get("recall", 0.0) == 0.0]
    if not missed:
        return None
    if len(missed) == len(present):
        return (
            f"the model finds no label in any row (micro-F1 {f1_micro:.3f}): it learned nothing "
            "usable; try a pretrained model (--model), a higher training.learning_rate or more "
            "epochs, or check that the labels belong to the texts"
        )
    rows = ", ".join(f"'{name}' ({int(present[name]['support'])} rows)" for name in missed)
    return (
        f"the model never finds {rows}: those labels go unpredicted; more training rows that "
        "carry them, more epochs or a lower classification.threshold would help"
    )


def positive_weighted_loss(
    targets: np.ndarray, label_names: list[str], class_weights: str
) -> tuple[Any, dict[str, Any]]:
    """Binary cross-entropy with each label's positive rows weighted up by how rare they are,
    for multi-label data whose labels are imbalanced.

    Args:
        targets: the training rows' 0/1 label rows.
        label_names: the label names, in column order.
        class_weights: ``auto`` (weighted when the most frequent label is on 3x the rows of
            the rarest or more), ``balanced`` or ``none``.

    Returns:
        The loss for ``Trainer(compute_loss_func=...)`` (``None``: the model's own loss) and
        what was decided, for the data report.
    """
    positives = targets.sum(axis=0).astype(np.float64)
    ratio, weighted = _imbalance(positives, class_weights)
    info: dict[str, Any] = {"imbalance_ratio": round(ratio, 2), "class_weights": None,
                            "label_smoothing": 0.0,
                            "weighted_loss": "binary cross-entropy with rare labels' positive rows "
                            "weighted up"}  # fmt: skip
    if not weighted:
        return None, info
    import torch
    import torch.nn.functional as F

    # "balanced" per label, as for two classes: its positive rows weigh as much as its
    # negative ones, the rows without it per row with it (never below 1: a label on most
    # rows is not weighted down)
    weights = np.maximum((len(targets) - positives) / np.maximum(positives, 1), 1.0)
    info["class_weights"] = dict(zip(label_names, weights.round(4).tolist(), strict=True))
    weight_tensor = torch.tensor(weights, dtype=torch.float32)

    def loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        logits = outputs["logits"].float()
        return F.binary_cross_entropy_with_logits(
            logits, labels.float(), pos_weight=weight_tensor.to(logits.device)
        )

    return loss, info
