"""Image classification: one label per image, from any ``AutoModelForImageClassification``.

Data is a folder of class sub-folders (the ``imagefolder`` convention) or a table with a
column of image paths relative to the table's file. The tables hold paths only: images are
decoded a batch at a time in the data loader (``Dataset.set_transform``), with random resized
crops and flips for training and none for evaluation.
"""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.image_doctor import diagnose_images, image_doctor_lines
from tunelab.data.images import (
    IMAGE_COLUMN,
    IMAGE_FOLDER,
    LABEL_COLUMN,
    ImageBombError,
    bomb_error,
    open_rgb,
    pixel_features,
    resolve_image_paths,
)
from tunelab.data.load import require_columns
from tunelab.errors import UserError
from tunelab.evaluation import metrics as m
from tunelab.evaluation import report_images
from tunelab.models.catalog import IMAGE
from tunelab.models.load import load_head_model
from tunelab.tasks.base import StandardColumn, TrainerSetup, standard_trainer_setup
from tunelab.tasks.text_classification import class_weighted_loss

log = logging.getLogger("tunelab")

PATH, LABEL = "path", "label"  # the standardized columns
BASELINE_SIDE = 16  # the baseline reads each image as 16x16 RGB pixels
BASELINE_METHOD = (
    f"logistic regression on {BASELINE_SIDE}x{BASELINE_SIDE} RGB pixels (scikit-learn)"
)
BASELINE_ROWS = 20_000  # its features live in memory: 3 KiB a row
CROP_SCALE = (0.6, 1.0)  # share of the image a training crop keeps: light, a digit stays whole
SHOWN_PROBLEMS = 5
DOCTOR_INPUT_SIDE = 32  # scratch-vit's default image side (image.scratch_size)


def _label_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3 and 3.0 are one class
    return str(value).strip()


def _sorted_names(names: set[str]) -> list[str]:
    if all(name.lstrip("-").isdigit() for name in names):
        return sorted(names, key=int)
    return sorted(names)


def model_input_side(config: Any) -> int:
    """The side in pixels the model reads images at: a local model folder's image processor
    size (``preprocessor_config.json``), else ``image.scratch_size`` (scratch-vit's, and the
    best guess before ``auto`` or a hub id is resolved)."""
    processor = Path(str(config.model.name)) / "preprocessor_config.json"
    if processor.is_file():
        size = json.loads(processor.read_text(encoding="utf-8")).get("size")
        if isinstance(size, int):
            return size
        if isinstance(size, dict):
            sides = [v for k, v in size.items() if k in ("height", "width", "shortest_edge")]
            if sides and all(isinstance(v, int) for v in sides):
                return min(sides)
    return int(config.image.scratch_size)


class ImageClassification:
    """Assign one label to an image."""

    name = "image-classification"
    text_pair_column: str | None = None
    problem_type = "single_label"
    main_metric = "f1_macro"
    greater_is_better = True
    evaluated_splits = ("validation", "test")
    explains = None  # attributions of pixels are not offered yet
    exportable = ()  # ONNX export of image models comes later
    onnx_graph = None
    embeds = False
    search_batch_sizes = (16, 32, 64)
    report_sections = staticmethod(report_images.sections)
    scored_before_training = False  # a new head only guesses before training
    baseline_method = BASELINE_METHOD
    model_kind = IMAGE
    trains_few_shot = False  # contrastive pairs of texts
    takes_virtual_tokens = False  # an image has no token positions for them
    packs_rows = False
    doctor_checks = "images"
    input_kind = "image"

    def __init__(
        self,
        image_column: str = IMAGE_COLUMN,
        gold_column: str = LABEL_COLUMN,
        labels: list[str] | None = None,
        augment: bool = True,
        flip: bool = True,
        drop_invalid: bool = True,
        input_side: int = DOCTOR_INPUT_SIDE,
    ) -> None:
        self.image_column = image_column
        self.gold_column = gold_column
        self.labels: list[str] = list(labels or [])
        self.augment = augment
        self.flip = flip
        self.drop_invalid = drop_invalid
        self.input_side = input_side  # the doctor flags images smaller than this
        self._problems: dict[str, str] = {}  # path -> why it cannot be read (the doctor's)

    @classmethod
    def from_run_config(cls, config: Any) -> ImageClassification:
        """Build from a :class:`tunelab.config.RunConfig`."""
        if config.peft.method != "none":
            raise UserError(
                f"peft.method={config.peft.method} is not offered for image-classification yet; "
                "use peft.method=none"
            )
        image = config.image
        return cls(
            image.column, config.data.label_column, augment=image.augment, flip=image.flip,
            drop_invalid=config.data.drop_invalid, input_side=model_input_side(config),
        )  # fmt: skip

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> ImageClassification:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        labels = [model_config.id2label[i] for i in sorted(model_config.id2label)]
        return cls(
            meta.get("image_column", IMAGE_COLUMN), meta.get("label_column", LABEL_COLUMN),
            labels,
        )  # fmt: skip

    # Shared code reads the standardized frame; --text-column names the user's column.
    text_column = StandardColumn(PATH, "image_column")
    label_column = StandardColumn(LABEL, "gold_column")

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        return "f1_macro"

    def metadata(self) -> dict[str, Any]:
        return {
            "task": self.name,
            "image_column": self.image_column,
            "label_column": self.gold_column,
        }

    # -- rows ----------------------------------------------------------------------------

    def required_columns(self, with_labels: bool = True) -> dict[str, str]:
        columns = {PATH: "image.column"}
        return {**columns, LABEL: "data.label_column"} if with_labels else columns

    def standardize(self, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
        """Rows of absolute image ``path`` (and ``label``), paths checked to stay inside the
        data file's folder; no image is opened here.

        Raises:
            UserError: for a missing column, a folder without class sub-folders, or a path
                outside the data file's folder.
        """
        source = frame.attrs.get("source", "data")
        folder = frame.attrs.get("kind") == IMAGE_FOLDER
        image, gold = (IMAGE_COLUMN, LABEL_COLUMN) if folder else (
            self.image_column, self.gold_column)  # fmt: skip
        if folder and with_labels and gold not in frame.columns:
            raise UserError(
                f"{source} holds images but no class sub-folders; put each class's images in "
                "a sub-folder named after the class"
            )
        options = {image: "image.column", gold: "data.label_column"}
        require_columns(frame, [image, gold] if with_labels else [image], options)
        shaped = pd.DataFrame({PATH: resolve_image_paths(frame, image)}, index=frame.index)
        if gold in frame.columns:
            labels = frame[gold].map(lambda v: None if pd.isna(v) else _label_name(v))
            shaped[LABEL] = labels
        shaped.attrs = {**frame.attrs, "columns": {PATH: image, LABEL: gold}}
        return shaped

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """The image doctor (:func:`tunelab.data.image_doctor.diagnose_images`): unreadable
        images, exact and near duplicates, leakage between splits, sizes and outliers, class
        balance. Decodes each image once.

        Raises:
            UserError: for an image above the decompression-bomb limit; when not dropping
                invalid rows (``--strict``), for the first unreadable image or empty path.
        """
        report = diagnose_images(frames, PATH, LABEL, self.input_side, strict=not self.drop_invalid)
        for section in report["images"].values():
            self._problems.update({u["path"]: u["problem"] for u in section["unreadable"]})
        return report

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        return image_doctor_lines(report)

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Drop rows whose image the doctor could not read, with a warning (with ``--strict``,
        ``data.drop_invalid=false``, the doctor stopped at the first instead).

        Raises:
            UserError: naming the row and path of an unreadable image, when not dropping.
        """
        source = frame.attrs.get("source", "data")
        bad = frame[PATH].map(lambda p: p in self._problems)
        if not bad.any():
            return frame, {}
        rows = list(frame.index[bad])
        first = frame[PATH][rows[0]]
        if not self.drop_invalid:
            raise UserError(
                f"{source} row {rows[0]}: image {first} cannot be read "
                f"({self._problems[first]}); replace or remove it, or run without --strict "
                "(data.drop_invalid=true) to leave unreadable images out with a warning"
            )
        log.warning(
            "%s: left out %d unreadable image(s), e.g. row %s %s (%s)",
            source, len(rows), rows[0], first, self._problems[first],
        )  # fmt: skip
        kept = frame[~bad]
        kept.attrs = dict(frame.attrs)
        shown = [{"row": int(r), "path": frame[PATH][r]} for r in rows[:SHOWN_PROBLEMS]]
        return kept, {"unreadable_images": {"count": len(rows), "rows": shown}}

    # -- labels --------------------------------------------------------------------------

    def fit_labels(self, train: pd.DataFrame) -> None:
        names = {str(v) for v in train[LABEL].dropna()}
        if len(names) < 2:
            only = f" '{next(iter(names))}'" if names else ""
            raise UserError(
                f"{train.attrs.get('source', 'training data')} has only one class{only}; an "
                "image classifier needs at least two (one sub-folder of images per class)"
            )
        self.labels = _sorted_names(names)

    def check_labels(self, frame: pd.DataFrame) -> None:
        known = set(self.labels)
        for row, label in frame[LABEL].items():
            if label not in known:
                raise UserError(
                    f"{frame.attrs.get('source', 'data')} row {row} has label '{label}' that "
                    f"the training data never has (known: {', '.join(self.labels)}); fix the "
                    "label or add training images of it"
                )

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.labels)}
        return np.array([index[label] for label in frame[LABEL]], dtype=np.int64)

    def clean_text(self, text: str) -> str:
        return text  # a path is read as given

    # -- model and features --------------------------------------------------------------

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForImageClassification

        return AutoModelForImageClassification

    def processor_class(self) -> Any:
        from transformers import AutoImageProcessor

        return AutoImageProcessor

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        return load_head_model(
            self.auto_model_class(),
            source,
            num_labels=len(self.labels),
            id2label=dict(enumerate(self.labels)),
            label2id={name: i for i, name in enumerate(self.labels)},
            # a checkpoint's own head (ImageNet's 1,000 classes) is replaced by a new one
            ignore_mismatched_sizes=True,
            **load_kwargs,
        )

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Nothing to add to the model before it is saved."""

    def token_lengths(self, frame: pd.DataFrame, tokenizer: Any) -> np.ndarray:
        """One input per image: images have no token lengths to truncate."""
        return np.ones(len(frame), dtype=np.int64)

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """A dataset of paths (and class ids) that decodes each batch when it is read."""
        from datasets import Dataset

        columns: dict[str, list[Any]] = {PATH: frame[PATH].tolist()}
        if LABEL in frame.columns:
            columns["labels"] = self.targets(frame).tolist()
        dataset = Dataset.from_dict(columns)
        dataset.set_transform(self.pixel_transform(tokenizer, augment=False))
        return dataset

    def pixel_transform(self, processor: Any, augment: bool) -> Any:
        """The loader's transform: paths to ``pixel_values`` (and ``labels``), augmented for
        training."""
        import torch

        def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
            images = [open_rgb(path) for path in batch[PATH]]
            if augment:
                images = [self._augmented(image) for image in images]
            features = {"pixel_values": processor(images=images, return_tensors="pt")[
                "pixel_values"]}  # fmt: skip
            if "labels" in batch:
                features["labels"] = torch.tensor(batch["labels"], dtype=torch.long)
            return features

        return transform

    def _augmented(self, image: Any) -> Any:
        """A random crop of 60-100% of the area (aspect 3:4 to 4:3), back to the image's size,
        mirrored half of the time if ``flip``; ``random`` is seeded by the Trainer."""
        from PIL import Image

        width, height = image.size
        area = width * height * random.uniform(*CROP_SCALE)
        aspect = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
        crop_w = min(width, max(1, round(math.sqrt(area * aspect))))
        crop_h = min(height, max(1, round(math.sqrt(area / aspect))))
        left = random.randint(0, width - crop_w)
        top = random.randint(0, height - crop_h)
        box = (left, top, left + crop_w, top + crop_h)
        image = image.resize((width, height), Image.Resampling.BILINEAR, box=box)
        if self.flip and random.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image

    def loss_function(
        self, train: pd.DataFrame, class_weights: str = "auto", label_smoothing: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        """The class-weighted cross-entropy text classification uses, on imbalanced classes."""
        return class_weighted_loss(self.targets(train), self.labels, class_weights, label_smoothing)

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DefaultDataCollator

        return DefaultDataCollator()  # images come out of the processor at one size

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        """The plain Trainer; training images are augmented, and the Trainer must keep the
        ``path`` column that the transform reads (it drops columns the model does not take)."""
        if self.augment:
            train.set_transform(self.pixel_transform(tokenizer, augment=True))
        setup = standard_trainer_setup(self, tokenizer, loss, validation is not None)
        setup.trainer_class = checkpoint_loading_trainer()
        # every image is one input: there are no lengths to group batches by
        setup.arguments.update(remove_unused_columns=False, train_sampling_strategy="random")
        return setup

    def forward(
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> np.ndarray:  # fmt: skip
        """Logits ``(rows, labels)``, decoding one batch of images at a time.

        Raises:
            UserError: naming the row and path of an image that cannot be read.
        """
        import torch

        model.eval()
        source = frame.attrs.get("source", "data")
        context: Any = torch.autocast(
            model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
        )
        logits = [np.zeros((0, len(self.labels)), dtype=np.float32)]
        paths = frame[PATH].tolist()
        for start in range(0, len(paths), batch_size):
            images = [
                self._open(source, frame.index[start + i], path)
                for i, path in enumerate(paths[start : start + batch_size])
            ]
            pixels = tokenizer(images=images, return_tensors="pt")["pixel_values"]
            with torch.inference_mode(), context:
                out = model(pixel_values=pixels.to(model.device)).logits
            logits.append(out.float().cpu().numpy())
        return np.concatenate(logits)

    @staticmethod
    def _open(source: str, row: Any, path: str) -> Any:
        try:
            return open_rgb(path)
        except ImageBombError as error:
            raise bomb_error(source, row, path, error) from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            why = str(error).split("\n")[0] or type(error).__name__
            raise UserError(f"{source} row {row}: image {path} cannot be read ({why})") from None

    # -- metrics and predictions ---------------------------------------------------------

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
        for i, path in enumerate(frame[PATH]):
            probs = {
                name: round(float(p), 6)
                for name, p in zip(self.labels, probabilities[i], strict=True)
            }
            label = self.labels[int(outputs[i].argmax())]
            record: dict[str, Any] = {"path": path, "label": label, "score": probs[label],
                                      "probabilities": probs}  # fmt: skip
            if gold is not None and gold[i] is not None:
                record["gold"] = gold[i]
            records.append(record)
        return records

    def learning_warning(self, scores: dict[str, Any], examples: int) -> str | None:
        """A sentence when the model predicts one class for every image or scores within
        noise of chance; ``None`` if it learned."""
        f1, chance = float(scores.get("f1_macro", 0.0)), 1.0 / max(len(self.labels), 1)
        remedy = (
            "try a pretrained model (--model), more epochs, a higher training.learning_rate, "
            "or check that each class folder holds its own images"
        )
        if scores.get("predicted_classes") == 1:
            return f"the model predicts one class for every image (macro-F1 {f1:.3f}); {remedy}"
        margin = max(0.02, 1.0 / math.sqrt(max(examples, 1)))
        if len(self.labels) >= 2 and f1 < chance + margin:
            return (
                f"macro-F1 {f1:.3f} is within noise of chance ({chance:.3f} for "
                f"{len(self.labels)} classes on {examples} images); {remedy}"
            )
        return None

    def baseline_outputs(
        self, splits: dict[str, pd.DataFrame], seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Logistic regression on each image shrunk to 16x16 RGB, fit on the training images;
        its log-probabilities on the validation and test images."""
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
        model.fit(pixel_features(train[PATH].tolist(), BASELINE_SIDE), targets)
        classes = list(model.classes_)
        outputs: dict[str, np.ndarray] = {}
        for split in ("validation", "test"):
            if split in splits and len(splits[split]):
                scored = model.predict_log_proba(
                    pixel_features(splits[split][PATH].tolist(), BASELINE_SIDE)
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
            saved = type(model).from_pretrained(checkpoint, use_safetensors=True)
            model.load_state_dict(saved.state_dict())

    return CheckpointLoadingTrainer
