"""What image and audio classification share: one label per file, rows of paths.

Data is a folder of class sub-folders, a table with a column of paths relative to the
table's file, or a table (Parquet, a saved ``datasets`` folder) holding the files' bytes
(:mod:`tunelab.data.media`). Tables hold paths or bytes only: files are decoded a batch at
a time in the data loader (``Dataset.set_transform``), augmented for training only. The
subclasses say how a file is decoded and checked, how decoded files become model features and
what the baseline reads; labels, the doctor's skeleton, cleaning, metrics and predictions are
the same for both.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import Self  # typing.Self from Python 3.11

from tunelab.data.load import require_columns
from tunelab.data.media import (
    LABEL_COLUMN,
    MEDIA_FOLDER,
    MediaRef,
    UnreadableFile,
    content_hash,
    media_kind,
    media_name,
    resolve_media_paths,
)
from tunelab.errors import UserError
from tunelab.evaluation import metrics as m
from tunelab.models.adapters import load_adapter_checkpoint
from tunelab.models.load import load_head_model
from tunelab.tasks.base import DataFit, StandardColumn, TrainerSetup, standard_trainer_setup
from tunelab.tasks.text_classification import class_weighted_loss

log = logging.getLogger("tunelab")

PATH, LABEL = "path", "label"  # the standardized columns
BASELINE_ROWS = 20_000  # the baseline's features live in memory
SHOWN_PROBLEMS = 5


def _label_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3 and 3.0 are one class
    return str(value).strip()


def _sorted_names(names: set[str]) -> list[str]:
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)


class FileClassification:
    """Assign one label to a file. Subclasses set the class attributes below and implement
    :meth:`inspect_file`, :meth:`decode`, :meth:`features`, :meth:`baseline_features`,
    :meth:`auto_model_class`, :meth:`processor_class` and :meth:`collator`."""

    name = ""
    input_kind = ""  # "image" or "audio": the path column of a folder, the kind of file read
    noun, nouns = "file", "files"  # one file and several, in messages
    article = "a"  # before the noun: "an image", "an audio file"
    classifier = "a classifier"  # in "... needs at least two classes"
    config_section = ""  # the run config's section: image, audio
    report_key = ""  # the doctor's section in data_report.json: images, audio
    text_pair_column: str | None = None
    problem_type = "single_label"
    main_metric = "f1_macro"
    greater_is_better = True
    evaluated_splits = ("validation", "test")
    embeds = False
    scored_before_training = False  # a new head only guesses before training
    trains_few_shot = False  # contrastive pairs of texts
    takes_virtual_tokens = False  # a file has no token positions for them
    packs_rows = False
    batch_tokens_from_rows = False
    # training's diagnose covers files; images also have a standalone doctor ("images")
    doctor_checks: str | None = None

    def __init__(
        self,
        column: str | None = None,
        gold_column: str = LABEL_COLUMN,
        labels: list[str] | None = None,
        augment: bool = True,
        drop_invalid: bool = True,
    ) -> None:
        self.column = column or self.input_kind
        self.gold_column = gold_column
        self.labels: list[str] = list(labels or [])
        self.augment = augment
        self.drop_invalid = drop_invalid
        self._problems: dict[MediaRef, str] = {}  # path -> why it cannot be read (the doctor's)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> Self:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        labels = [model_config.id2label[i] for i in sorted(model_config.id2label)]
        column = meta.get(f"{cls.input_kind}_column", cls.input_kind)
        gold = meta.get("label_column", LABEL_COLUMN)
        return cls(column, gold, labels, **cls.saved_settings(meta))

    @staticmethod
    def saved_settings(meta: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments of the task that :meth:`metadata` saved beyond columns and labels."""
        return {}

    # Shared code reads the standardized frame; --text-column names the user's column.
    text_column = StandardColumn(PATH, "column")
    label_column = StandardColumn(LABEL, "gold_column")

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        return "f1_macro"

    def metadata(self) -> dict[str, Any]:
        return {
            "task": self.name,
            f"{self.input_kind}_column": self.column,
            "label_column": self.gold_column,
        }

    def file_name(self, file: MediaRef, row: Any) -> str:
        """How messages and predictions name a file: its path, or the row holding its bytes."""
        return media_name(file, row, self.noun)

    # -- decoding: what each kind of file does ----------------------------------------------

    def inspect_file(self, source: str, row: Any, path: MediaRef) -> dict[str, Any]:
        """Decode ``path`` once for the doctor: what it measures of the file.

        Raises:
            UnreadableFile: if the file cannot be decoded.
            UserError: for a file no run may read (an image above the bomb limit).
        """
        raise NotImplementedError

    def file_summary(self, stats: list[dict[str, Any]]) -> dict[str, Any]:
        """The doctor's figures of one split from :meth:`inspect_file`'s results."""
        return {}

    def file_lines(self, split: str, section: dict[str, Any]) -> list[str]:
        """The doctor's lines of one split beyond unreadable files and duplicates."""
        return []

    def decode(self, path: MediaRef, processor: Any) -> Any:
        """The decoded file, as :meth:`features` takes it (``processor``: the model's, for
        what it expects of its input, such as a sampling rate).

        Raises:
            UnreadableFile: if the file cannot be decoded.
        """
        raise NotImplementedError

    def features(self, processor: Any, decoded: list[Any]) -> dict[str, Any]:
        """Model inputs (tensors) of a batch of decoded files."""
        raise NotImplementedError

    def augmented(self, decoded: Any) -> Any:
        """A randomly changed copy of a decoded training file (``random`` is seeded by the
        Trainer)."""
        return decoded

    def baseline_features(self, paths: list[MediaRef]) -> np.ndarray:
        """One row of features per file for the logistic-regression baseline."""
        raise NotImplementedError

    def inference_order(self, paths: list[MediaRef]) -> list[int]:
        """The order in which :meth:`forward` reads the rows (their outputs come back in the
        rows' order)."""
        return list(range(len(paths)))

    # -- rows ------------------------------------------------------------------------------

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        columns = {PATH: f"{self.config_section}.column"}
        return {**columns, LABEL: "data.label_column"} if with_labels else columns

    def _holds_a_file(self, cell: Any) -> bool:
        """A file name of the task's kind, or a file's bytes (Parquet, datasets saved to disk)."""
        if isinstance(cell, str):
            return media_kind(Path(cell)) == self.input_kind
        return isinstance(cell, (bytes, dict))

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """A folder of class sub-folders of the task's files, or a table whose file column
        names such files (or holds their bytes): the task's own shape (strength 2)."""
        if frame.attrs.get("kind") == MEDIA_FOLDER:
            if self.input_kind not in frame.columns:
                return None  # a folder of the other kind of file
            return DataFit(2, f"a folder of {self.nouns} in class sub-folders")
        if self.column not in frame.columns:
            return None
        cells = frame[self.column].dropna().iloc[:100]
        if len(cells) and cells.map(self._holds_a_file).all():
            return DataFit(2, f"{self.nouns} in '{self.column}'")
        return None

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """Rows of absolute file ``path`` (and ``label``), paths checked to stay inside the
        data file's folder; no file is opened here.

        Raises:
            UserError: for a missing column, a folder without class sub-folders, or a path
                outside the data file's folder.
        """
        source = frame.attrs.get("source", "data")
        folder = frame.attrs.get("kind") == MEDIA_FOLDER
        path_column, gold = (self.input_kind, LABEL_COLUMN) if folder else (
            self.column, self.gold_column)  # fmt: skip
        if folder and path_column not in frame.columns:
            found = next((str(c) for c in frame.columns if c != LABEL_COLUMN), "other")
            raise UserError(
                f"{source} holds {found} files, but {self.name} reads {self.nouns}; give "
                f"{self.nouns} or a model of the task for {found} files"
            )
        if folder and with_labels and gold not in frame.columns:
            raise UserError(
                f"{source} holds {self.nouns} but no class sub-folders; put each class's "
                f"{self.nouns} in a sub-folder named after the class"
            )
        options = {path_column: f"{self.config_section}.column", gold: "data.label_column"}
        require_columns(frame, [path_column, gold] if with_labels else [path_column], options)
        paths = resolve_media_paths(frame, path_column, self.input_kind)
        shaped = pd.DataFrame({PATH: paths}, index=frame.index)
        if gold in frame.columns:
            labels = frame[gold].map(lambda v: None if pd.isna(v) else _label_name(v))
            shaped[LABEL] = labels
        shaped.attrs = {**frame.attrs, "columns": {PATH: path_column, LABEL: gold}}
        return shaped

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """Per split: rows without a path, unreadable files (row, path, why), what
        :meth:`file_summary` measures, classes, exact duplicates; and files shared across
        splits (leakage). Decodes each file once. Image classification replaces this with the
        image doctor, which adds near duplicates and size outliers.

        Raises:
            UserError: for a file no run may read (see :meth:`inspect_file`); when not dropping
                invalid rows (``--strict``), for the first empty path or unreadable file.
        """
        report: dict[str, Any] = {self.report_key: {}}
        hashes: dict[str, set[str]] = {}
        for split, frame in frames.items():
            source = frame.attrs.get("source", split)
            shown = frame.attrs.get("columns", {}).get(PATH, PATH)
            unreadable, stats, digests, empty = [], [], [], []
            for row, path in frame[PATH].items():
                if path is None:
                    if not self.drop_invalid:
                        raise UserError(
                            f"{source} row {row}: column '{shown}' is empty; give the "
                            f"{self.noun}'s path or remove the row, or run without --strict "
                            "(data.drop_invalid=true) to drop such rows with a warning"
                        )
                    empty.append(int(row))
                    continue
                try:
                    stats.append(self.inspect_file(source, row, path))
                except UnreadableFile as error:
                    if not self.drop_invalid:
                        raise UserError(
                            f"{source} row {row}: {self.noun} {self.file_name(path, row)} cannot "
                            f"be read ({error}); replace or remove it, or run without --strict "
                            f"(data.drop_invalid=true) to leave unreadable {self.nouns} out with "
                            "a warning"
                        ) from None
                    self._problems[path] = str(error)
                    unreadable.append(
                        {"row": int(row), "path": self.file_name(path, row), "problem": str(error)}
                    )
                    continue
                digests.append(content_hash(path))
            hashes[split] = set(digests)
            section: dict[str, Any] = {
                "rows": len(frame),
                "empty_paths": empty,
                "unreadable": unreadable,
                "duplicates": len(digests) - len(set(digests)),
                **(self.file_summary(stats) if stats else {}),
            }
            if LABEL in frame.columns:
                section["classes"] = frame[LABEL].value_counts().sort_index().to_dict()
            report[self.report_key][split] = section
        if "train" in hashes:
            report["leakage"] = {
                split: len(hashes["train"] & found)
                for split, found in hashes.items()
                if split != "train"
            }
        return report

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        lines = []
        for split, section in report.get(self.report_key, {}).items():
            if section.get("empty_paths"):
                rows = ", ".join(map(str, section["empty_paths"][:SHOWN_PROBLEMS]))
                lines.append(
                    f"data doctor: {split}: {len(section['empty_paths'])} row(s) without "
                    f"{self.article} {self.noun} path (rows {rows})"
                )
            unreadable = section.get("unreadable", [])
            if unreadable:
                first = unreadable[0]
                lines.append(
                    f"data doctor: {split}: {len(unreadable)} unreadable {self.noun}(s), "
                    f"e.g. row {first['row']} {first['path']} ({first['problem']})"
                )
            if section.get("duplicates"):
                lines.append(
                    f"data doctor: {split}: {section['duplicates']} exact duplicate {self.noun}(s)"
                )
            lines += [f"data doctor: {split}: {line}" for line in self.file_lines(split, section)]
        for split, shared in report.get("leakage", {}).items():
            if shared:
                lines.append(
                    f"data doctor: {shared} {self.noun}(s) of {split} are also training "
                    f"{self.nouns} (leakage: held-out scores will be too high)"
                )
        return lines

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Drop rows whose file the doctor could not read, with a warning (with
        ``data.drop_invalid=false``, stop at the first instead).

        Raises:
            UserError: naming the row and path of an unreadable file, when not dropping.
        """
        source = frame.attrs.get("source", "data")
        bad = frame[PATH].map(lambda p: p in self._problems)
        if not bad.any():
            return frame, {}
        rows = list(frame.index[bad])
        first = frame[PATH][rows[0]]
        if not self.drop_invalid:
            raise UserError(
                f"{source} row {rows[0]}: {self.noun} {self.file_name(first, rows[0])} cannot be "
                f"read ({self._problems[first]}); replace or remove it, or run without --strict "
                f"(data.drop_invalid=true) to leave unreadable {self.nouns} out with a warning"
            )
        log.warning(
            "%s: left out %d unreadable %s(s), e.g. row %s %s (%s)",
            source, len(rows), self.noun, rows[0], self.file_name(first, rows[0]),
            self._problems[first],
        )  # fmt: skip
        kept = frame[~bad]
        kept.attrs = dict(frame.attrs)
        shown = [
            {"row": int(r), "path": self.file_name(frame[PATH][r], r)}
            for r in rows[:SHOWN_PROBLEMS]
        ]
        return kept, {f"unreadable_{self.report_key}": {"count": len(rows), "rows": shown}}

    # -- labels ----------------------------------------------------------------------------

    def fit_labels(self, train: pd.DataFrame) -> None:
        names = {str(v) for v in train[LABEL].dropna()}
        if len(names) < 2:
            only = f" '{next(iter(names))}'" if names else ""
            raise UserError(
                f"{train.attrs.get('source', 'training data')} has only one class{only}; "
                f"{self.classifier} needs at least two (one sub-folder of {self.nouns} per class)"
            )
        self.labels = _sorted_names(names)

    def check_labels(self, frame: pd.DataFrame) -> None:
        known = set(self.labels)
        for row, label in frame[LABEL].items():
            if label not in known:
                raise UserError(
                    f"{frame.attrs.get('source', 'data')} row {row} has label '{label}' that "
                    f"the training data never has (known: {', '.join(self.labels)}); fix the "
                    f"label or add training {self.nouns} of it"
                )

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.labels)}
        return np.array([index[label] for label in frame[LABEL]], dtype=np.int64)

    def clean_text(self, text: str) -> str:
        return text  # a path is read as given

    # -- model and features ----------------------------------------------------------------

    def auto_model_class(self) -> Any:
        raise NotImplementedError

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        return load_head_model(
            self.auto_model_class(),
            source,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={name: i for i, name in enumerate(self.labels)},
            # a checkpoint's own head (ImageNet's or AudioSet's classes) is replaced
            ignore_mismatched_sizes=True,
            **load_kwargs,
        )

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Nothing to add to the model before it is saved."""

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        """One input per file: files have no token lengths to truncate."""
        return np.ones(len(frame), dtype=np.int64)

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """A dataset of paths (and class ids) that decodes each batch when it is read."""
        from datasets import Dataset

        columns: dict[str, list[Any]] = {PATH: frame[PATH].tolist()}
        if LABEL in frame.columns:
            columns["labels"] = self.targets(frame).tolist()
        dataset = Dataset.from_dict(columns)
        dataset.set_transform(self.loader_transform(tokenizer, augment=False))
        return dataset

    def loader_transform(self, processor: Any, augment: bool) -> Callable[..., dict[str, Any]]:
        """The loader's transform: paths to model inputs (and ``labels``), augmented for
        training."""
        import torch

        def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
            decoded = [self.decode(path, processor) for path in batch[PATH]]
            if augment:
                decoded = [self.augmented(item) for item in decoded]
            features = self.features(processor, decoded)
            if "labels" in batch:
                features["labels"] = torch.tensor(batch["labels"], dtype=torch.long)
            return features

        return transform

    def loss_function(
        self, train: pd.DataFrame, class_weights: str = "auto", label_smoothing: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        """The class-weighted cross-entropy text classification uses, on imbalanced classes."""
        return class_weighted_loss(self.targets(train), self.labels, class_weights, label_smoothing)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DefaultDataCollator

        return DefaultDataCollator()  # the features of one file come out at one size

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        """The plain Trainer; training files are augmented, and the Trainer must keep the
        ``path`` column that the transform reads (it drops columns the model does not take)."""
        if self.augment:
            train.set_transform(self.loader_transform(tokenizer, augment=True))
        setup = standard_trainer_setup(self, tokenizer, loss, validation is not None)
        setup.trainer_class = checkpoint_loading_trainer()
        # every file is one input: there are no lengths to group batches by
        setup.arguments.update(remove_unused_columns=False, train_sampling_strategy="random")
        return setup

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> np.ndarray:  # fmt: skip
        """Logits ``(rows, labels)``, decoding one batch of files at a time.

        Raises:
            UserError: naming the row and path of a file that cannot be read.
        """
        import torch

        model.eval()
        source = frame.attrs.get("source", "data")
        context: Any = torch.autocast(
            model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
        )
        logits = np.zeros((len(frame), len(self.labels)), dtype=np.float32)
        paths = frame[PATH].tolist()
        order = self.inference_order(paths)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            decoded = [self.open_row(source, frame.index[i], paths[i], tokenizer) for i in batch]
            inputs = self.features(tokenizer, decoded)
            with torch.inference_mode(), context:
                out = model(**{k: v.to(model.device) for k, v in inputs.items()}).logits
            logits[batch] = out.float().cpu().numpy()
        return logits

    def open_row(self, source: str, row: Any, path: MediaRef, processor: Any) -> Any:
        """The file of one row decoded for the model (:meth:`decode`).

        Raises:
            UserError: naming the data's ``source``, the row and the file, for a file that
                cannot be read.
        """
        try:
            return self.decode(path, processor)
        except UnreadableFile as error:
            raise UserError(
                f"{source} row {row}: {self.noun} {self.file_name(path, row)} cannot be read "
                f"({error})"
            ) from None

    # -- metrics and predictions -----------------------------------------------------------

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        return logits[0] if isinstance(logits, tuple) else logits

    def _scores(self, outputs: np.ndarray, y_true: np.ndarray) -> dict[str, float]:
        decided = outputs.argmax(axis=-1)
        spread = {"predicted_classes": float(len(np.unique(decided)))}
        return {**m.single_label_metrics(y_true, decided, len(self.labels)), **spread}

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        outputs = eval_pred[0][0] if isinstance(eval_pred[0], tuple) else eval_pred[0]
        return self._scores(np.asarray(outputs, dtype=np.float32), np.asarray(eval_pred[1]))

    def calibrate(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        return {}

    def evaluate_outputs(self, outputs: np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
        y_true = self.targets(frame)
        decided = outputs.argmax(axis=-1)
        return {
            "examples": len(frame),
            **self._scores(outputs, y_true),
            "per_class": m.per_class_report(y_true, decided, self.labels),
            "confusion_matrix": m.confusion(y_true, decided, self.labels),
        }

    def predictions(self, outputs: np.ndarray, frame: pd.DataFrame) -> list[dict[str, Any]]:
        probabilities = m.softmax(outputs)
        gold = frame[LABEL].tolist() if LABEL in frame.columns else None
        records = []
        for i, (row, path) in enumerate(frame[PATH].items()):
            probs = {
                name: round(float(p), 6)
                for name, p in zip(self.labels, probabilities[i], strict=True)
            }
            label = self.labels[int(outputs[i].argmax())]
            record: dict[str, Any] = {
                "path": self.file_name(path, row), "label": label, "score": probs[label],
                "probabilities": probs,
            }  # fmt: skip
            if gold is not None and gold[i] is not None:
                record["gold"] = gold[i]
            records.append(record)
        return records

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence when the model predicts one class for every file or scores within
        noise of chance; ``None`` if it learned."""
        f1, chance = float(scores.get("f1_macro", 0.0)), 1.0 / max(len(self.labels), 1)
        remedy = (
            "try a pretrained model (--model), more epochs, a higher training.learning_rate, "
            f"or check that each class folder holds its own {self.nouns}"
        )
        if scores.get("predicted_classes") == 1:
            return (
                f"the model predicts one class for every {self.noun} (macro-F1 {f1:.3f}); {remedy}"
            )
        margin = max(0.02, 1.0 / math.sqrt(max(examples, 1)))
        if len(self.labels) >= 2 and f1 < chance + margin:
            return (
                f"macro-F1 {f1:.3f} is within noise of chance ({chance:.3f} for "
                f"{len(self.labels)} classes on {examples} {self.nouns}); {remedy}"
            )
        return None

    def baseline_outputs(
        self, splits: dict[str, pd.DataFrame], seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Logistic regression on :meth:`baseline_features`, fit on the training files; its
        log-probabilities on the validation and test files."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        train = splits["train"]
        if len(train) > BASELINE_ROWS:
            train = train.sample(n=BASELINE_ROWS, random_state=seed)
        targets = self.targets(train)
        if len(set(targets)) < 2:
            return {}
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.1))
        model.fit(self.baseline_features(train[PATH].tolist()), targets)
        classes = list(model.classes_)
        outputs: dict[str, np.ndarray] = {}
        for split in ("validation", "test"):
            if split in splits and len(splits[split]):
                scored = model.predict_log_proba(
                    self.baseline_features(splits[split][PATH].tolist())
                )
                full = np.full((len(scored), len(self.labels)), -1e9, dtype=np.float32)
                full[:, classes] = scored
                outputs[split] = full
        return outputs


def checkpoint_loading_trainer() -> Any:
    """A ``transformers.Trainer`` that reloads checkpoints (the best one at the end, the last
    one on --resume) with ``from_pretrained``.

    transformers 5 saves ViT (and other renamed architectures) under their old weight names,
    and the Trainer reloads with a plain ``load_state_dict`` that does not map them back: the
    best checkpoint's weights were silently left out (every ViT weight "missing").
    ``from_pretrained`` maps the names.
    """
    from transformers import Trainer

    class CheckpointLoadingTrainer(Trainer):  # type: ignore[misc]
        def _load_best_model(self) -> None:
            self._load_weights(self.model, str(self.state.best_model_checkpoint))

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            self._load_weights(model or self.model, resume_from_checkpoint)

        @staticmethod
        def _load_weights(model: Any, checkpoint: str) -> None:
            if hasattr(model, "peft_config"):  # the checkpoint holds the adapter alone
                load_adapter_checkpoint(model, checkpoint)
                return
            saved = type(model).from_pretrained(checkpoint, use_safetensors=True)
            model.load_state_dict(saved.state_dict())

    return CheckpointLoadingTrainer
