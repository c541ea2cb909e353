"""Image to text: read the text in an image (OCR of lines, receipts) or describe it, with any
``VisionEncoderDecoderModel`` (TrOCR, Donut, a ViT under a BERT/GPT-2 decoder).

Data is a table with a column of image paths (relative to the table's file) and a column of
the target text. As for image classification, the tables hold paths only and images are
decoded a batch at a time in the data loader; the image doctor checks them. Images are
letterboxed into the model's input size (scaled to fit, aspect kept, padded with the paper's
colour), so a long line is not squeezed into a square; training images are jittered (shift,
scale, contrast, blur), never cropped or mirrored, which would change the text. The model is
chosen by validation loss and judged by character error rate (CER), exact match and chrF.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pandas as pd
from typing_extensions import Self  # typing.Self from Python 3.11

from tunelab.data.image_doctor import SQUASHED
from tunelab.errors import UserError
from tunelab.evaluation import report_reading
from tunelab.evaluation.generation import generation_metrics
from tunelab.evaluation.reading import character_errors, reading_metrics
from tunelab.inference import Generations, autocast, joined_words
from tunelab.models.catalog import IMAGE_TEXT
from tunelab.models.load import from_pretrained
from tunelab.tasks.base import DataFit, TrainerSetup, standard_trainer_setup
from tunelab.tasks.file_classification import LABEL, PATH, checkpoint_loading_trainer
from tunelab.tasks.generation import NEW_TOKENS, degenerate_shares
from tunelab.tasks.image_classification import (
    DOCTOR_INPUT_SIDE,
    ImageClassification,
    model_input_side,
)

log = logging.getLogger("tunelab")

TEXT_COLUMN = "text"  # the target column unless data.label_column names another
IGNORE = -100  # label id the loss skips (padding)
LETTERBOXED = "(letterboxed into the model's input shape, so it is read at a lower resolution)"
UNIQUE_TEXTS = 0.5  # a column of texts to read: most rows differ (classes repeat)


def letterbox(image: Any, height: int, width: int) -> Any:
    """``image`` scaled to fit ``height`` x ``width`` with its aspect kept, on a canvas of
    the colour of its own border (the paper), placed at the left and centred vertically."""
    from PIL import Image

    scale = min(height / image.height, width / image.width)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resized = image.resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    paper = tuple(int(v) for v in np.median(border, axis=0))
    canvas = Image.new("RGB", (width, height), paper)
    canvas.paste(resized, (0, (height - size[1]) // 2))
    return canvas


def input_size(image_processor: Any) -> tuple[int, int]:
    """(height, width) the model reads, from its image processor's ``size``."""
    size = image_processor.size  # a dict, or transformers 5's SizeDict
    if isinstance(size, int):
        return size, size

    def side(name: str) -> int | None:
        value = size.get(name) if isinstance(size, dict) else getattr(size, name, None)
        return int(value) if value else None

    height, width = side("height"), side("width")
    if height and width:
        return height, width
    edge = side("shortest_edge") or side("longest_edge") or 384
    return edge, edge


def decoding_settings(config: Any) -> dict[str, Any]:
    """The ``generation`` options an image task decodes with; ``max_new_tokens`` unset is
    :data:`NEW_TOKENS` (image answers are not sized to the training texts)."""
    generation = config.generation
    return {
        "max_target_length": generation.max_target_length,
        "max_new_tokens": generation.max_new_tokens or NEW_TOKENS,
        "num_beams": generation.num_beams,
    }


class ImageToText(ImageClassification):
    """Generate the text an image holds (OCR) or describes (captions)."""

    name = "image-to-text"
    problem_type = "generation"
    main_metric = "loss"  # checkpoints by validation loss; CER and the rest after training
    greater_is_better = False
    evaluated_splits = ("test",)  # type: ignore[assignment]
    exportable = ()  # type: ignore[assignment]  # generates token by token: served by PyTorch
    explains = None  # type: ignore[assignment]  # occlusion explains a label, not generated text
    onnx_graph = None  # type: ignore[assignment]
    model_kind = IMAGE_TEXT
    report_sections = staticmethod(report_reading.sections)
    baseline_method = ""  # benchmarks/ocr_tesseract.py compares Tesseract on the same images
    search_batch_sizes = (8, 16, 32)
    scored_before_training = False
    # training runs the image doctor and the text checks (diagnose); `tunelab doctor`'s image
    # checks count classes, which texts are not
    doctor_checks = None  # type: ignore[assignment]
    noun, nouns = "image", "images"

    def __init__(
        self,
        image_column: str = "image",
        text_column: str = TEXT_COLUMN,
        augment: bool = True,
        drop_invalid: bool = True,
        settings: dict[str, Any] | None = None,
        input_side: int = DOCTOR_INPUT_SIDE,
    ) -> None:
        super().__init__(image_column, text_column, [], augment, False, drop_invalid, input_side)
        self.settings: dict[str, Any] = {
            "max_target_length": 128,
            "max_new_tokens": 128,
            "num_beams": 1,
            **(settings or {}),
        }

    @property
    def new_tokens(self) -> int:
        """``generation.max_new_tokens``: as set, else :data:`NEW_TOKENS` (image answers are
        not sized to the training texts)."""
        return int(self.settings["max_new_tokens"])

    @classmethod
    def from_run_config(cls, config: Any) -> Self:
        """Build from a :class:`tunelab.config.RunConfig`: the image column from ``image``,
        the text column from ``data.label_column`` when set (else ``text``), decoding from
        ``generation``."""
        data = config.data
        text = data.label_column if "label_column" in data.model_fields_set else TEXT_COLUMN
        return cls(config.image.column, text, config.image.augment, data.drop_invalid,
                   decoding_settings(config), model_input_side(config))  # fmt: skip

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], model_config: Any) -> Self:
        """Rebuild from the metadata a trained model carries in its ``config.json``."""
        return cls(
            meta.get("image_column", "image"), meta.get("label_column", TEXT_COLUMN),
            settings=meta.get("settings"),
        )  # fmt: skip

    @staticmethod
    def main_metric_of(metadata: dict[str, Any]) -> str:
        return "loss"

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "settings": dict(self.settings)}

    # -- data ------------------------------------------------------------------------------

    def recognise(self, frame: pd.DataFrame, given: frozenset[str]) -> DataFit | None:
        """A table of image paths beside a column of texts that mostly differ from row to row
        (classes repeat): strength 3, above image classification's 2 for the same image
        column, because the texts rule out classes."""
        found = super().recognise(frame, given)
        if found is None or self.gold_column not in frame.columns:
            return None
        texts = frame[self.gold_column].dropna().astype(str)
        if len(texts) < 2 or texts.nunique() / len(texts) < UNIQUE_TEXTS:
            return None
        return DataFit(3, f"images in '{self.column}' with their text in '{self.gold_column}'")

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """The image doctor on the images (not on the texts, which are no classes), and per
        split the target texts: empty ones, lengths, and for held-out splits the share of
        their characters that no training text has (a reader cannot learn those)."""
        report = super().diagnose(self.image_frames(frames), find_label_errors, seed)
        seen = set("".join(frames["train"][LABEL].dropna())) if "train" in frames else set()
        texts: dict[str, Any] = {}
        for split, frame in frames.items():
            values = frame[LABEL].fillna("")
            lengths = values.str.len()
            section = {
                "empty": [int(row) for row in frame.index[lengths == 0][:10]],
                "empty_count": int((lengths == 0).sum()),
                "characters": {"mean": float(lengths.mean()) if len(lengths) else 0.0,
                               "max": int(lengths.max()) if len(lengths) else 0},
                "distinct_characters": len(set("".join(values))),
            }  # fmt: skip
            if split != "train" and seen:
                chars = "".join(values)
                unseen = sum(ch not in seen for ch in chars)
                section["unseen_character_share"] = unseen / max(len(chars), 1)
            texts[split] = section
        report["texts"] = texts
        return report

    def image_frames(self, frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """What the image doctor examines of each split: the images, without their texts."""
        images = {}
        for split, frame in frames.items():
            images[split] = frame.drop(columns=[LABEL], errors="ignore")
            images[split].attrs = dict(frame.attrs)
        return images

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        # images are letterboxed, not squashed: an odd one out only loses resolution
        lines = [line.replace(SQUASHED, LETTERBOXED) for line in super().doctor_lines(report)]
        for split, section in report.get("texts", {}).items():
            if section["empty_count"]:
                rows = ", ".join(map(str, section["empty"][:5]))
                lines.append(
                    f"data doctor: {split}: {section['empty_count']} image(s) with an empty "
                    f"text (rows {rows}); training leaves them out"
                )
            share = section.get("unseen_character_share", 0.0)
            if share > 0.01:
                lines.append(
                    f"data doctor: {split}: {100 * share:.1f}% of the characters to read never "
                    "occur in a training text; the model cannot learn to read those"
                )
        return lines

    def clean(
        self, frame: pd.DataFrame, clean: Any, is_training: bool
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Drop unreadable images (as image classification does) and, from training, rows
        whose text is empty, with a warning."""
        kept, changes = super().clean(frame, clean, is_training)
        if not is_training or LABEL not in kept.columns:
            return kept, changes
        empty = kept[LABEL].fillna("").str.len() == 0
        if empty.any():
            log.warning(
                "%s: left out %d image(s) with an empty text, e.g. row %s",
                frame.attrs.get("source", "data"), int(empty.sum()), kept.index[empty][0],
            )  # fmt: skip
            attrs = dict(kept.attrs)
            kept = kept[~empty]
            kept.attrs = attrs
            changes["empty_texts"] = int(empty.sum())
        return kept, changes

    def fit_labels(self, train: pd.DataFrame) -> None:
        """No classes; training needs some texts to learn from."""
        if not train[LABEL].fillna("").str.len().any():
            raise UserError(
                f"{train.attrs.get('source', 'training data')} has no text in column "
                f"'{self.gold_column}'; give each image the text it shows (--label-column "
                "names the column)"
            )

    def check_labels(self, frame: pd.DataFrame) -> None:
        """Any text may be read: nothing to check."""

    def targets(self, frame: pd.DataFrame) -> list[str]:  # type: ignore[override]
        return frame[LABEL].fillna("").astype(str).tolist()

    # -- model and features ----------------------------------------------------------------

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText

    def processor_class(self) -> Any:
        """``AutoProcessor`` (a TrOCR-style processor holding the image processor and the
        tokenizer of the decoder), able to load a video-capable one without torchvision."""
        from tunelab.models.vision_processor import VisionProcessor

        return VisionProcessor

    def build_model(self, source: str, **load_kwargs: Any) -> Any:
        return from_pretrained(self.auto_model_class(), source, **load_kwargs)

    def features(self, processor: Any, decoded: list[Any]) -> dict[str, Any]:
        """``pixel_values`` of a batch of images letterboxed into the model's input size."""
        images = processor.image_processor
        height, width = input_size(images)
        boxed = [letterbox(image, height, width) for image in decoded]
        return {"pixel_values": images(images=boxed, return_tensors="pt")["pixel_values"]}

    def augmented(self, image: Any) -> Any:
        """A training image shifted and scaled a little inside a margin of paper, its contrast
        changed, and blurred a third of the time; never cropped or mirrored, which would change
        the text. ``random`` is seeded by the Trainer."""
        from PIL import Image, ImageEnhance, ImageFilter

        width, height = image.size
        pad_x = round(width * random.uniform(0, 0.08))
        pad_y = round(height * random.uniform(0, 0.2))
        pixels = np.asarray(image)
        paper = tuple(int(v) for v in np.median(np.concatenate([pixels[0], pixels[-1]]), axis=0))
        canvas = Image.new("RGB", (width + 2 * pad_x, height + 2 * pad_y), paper)
        canvas.paste(image, (random.randint(0, 2 * pad_x), random.randint(0, 2 * pad_y)))
        canvas = ImageEnhance.Contrast(canvas).enhance(random.uniform(0.6, 1.3))
        if random.random() < 1 / 3:
            canvas = canvas.filter(ImageFilter.GaussianBlur(random.uniform(0.3, 1.0)))
        return canvas

    def label_ids(self, tokenizer: Any, texts: list[str], start: int | None) -> list[list[int]]:
        """Token ids of each text as the decoder learns them: ending with EOS, without the
        decoder's start token (the model puts it in front itself)."""
        encoded = tokenizer(texts, truncation=True, max_length=self.settings["max_target_length"])[
            "input_ids"
        ]
        eos = tokenizer.sep_token_id if tokenizer.eos_token_id is None else tokenizer.eos_token_id
        rows = []
        for ids in encoded:
            ids = list(ids)
            if ids and start is not None and ids[0] == start:
                ids = ids[1:]
            if eos is not None and (not ids or ids[-1] != eos):
                ids.append(eos)
            rows.append(ids)
        return rows

    def encode(self, frame: pd.DataFrame, tokenizer: Any, max_length: int) -> Any:
        """A dataset of paths and texts that decodes each batch of images when it is read."""
        from datasets import Dataset

        columns: dict[str, list[Any]] = {PATH: frame[PATH].tolist()}
        if LABEL in frame.columns:
            columns[LABEL] = self.targets(frame)
        dataset = Dataset.from_dict(columns)
        dataset.set_transform(self.loader_transform(tokenizer, augment=False))
        return dataset

    def loader_transform(self, processor: Any, augment: bool) -> Any:
        """Paths to ``pixel_values`` and texts to ``labels`` (token ids, ragged: the collator
        pads them)."""
        start = getattr(self, "_decoder_start", None)

        def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
            decoded = [self.decode(path, processor) for path in batch[PATH]]
            if augment:
                decoded = [self.augmented(image) for image in decoded]
            features = self.features(processor, decoded)
            if LABEL in batch:
                features["labels"] = self.label_ids(processor.tokenizer, batch[LABEL], start)
            return features

        return transform

    def collator(self, tokenizer: Any) -> Any:
        """Stacks the images and pads the labels with -100 (ignored by the loss)."""
        import torch

        def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
            batch = {"pixel_values": torch.stack([row["pixel_values"] for row in rows])}
            if "labels" in rows[0]:
                width = max(len(row["labels"]) for row in rows)
                batch["labels"] = torch.tensor(
                    [list(row["labels"]) + [IGNORE] * (width - len(row["labels"])) for row in rows]
                )
            return batch

        return collate

    def trainer_setup(
        self, model: Any, tokenizer: Any, loss: Any, train: Any, validation: Any
    ) -> TrainerSetup:
        """The Trainer that reloads checkpoints with ``from_pretrained``; the texts' first
        token is dropped where it is the decoder's start token (BERT's [CLS], BART's <s>)."""
        # a decoder-only VLM (image-text-to-text) has no decoder start token
        self._decoder_start = getattr(model.config, "decoder_start_token_id", None)
        train.set_transform(self.loader_transform(tokenizer, augment=self.augment))
        if validation is not None:
            validation.set_transform(self.loader_transform(tokenizer, augment=False))
        setup = standard_trainer_setup(self, tokenizer, loss, validation is not None)
        setup.trainer_class = checkpoint_loading_trainer()
        setup.arguments.update(remove_unused_columns=False, train_sampling_strategy="random")
        return setup

    def loss_function(
        self, train: pd.DataFrame, class_weights: str = "auto", label_smoothing: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        """The model's own token cross-entropy."""
        return None, {}

    def generation_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        """Greedy (or beam) decoding up to ``max_new_tokens``."""
        return {"max_new_tokens": self.settings["max_new_tokens"],
                "num_beams": self.settings["num_beams"], "do_sample": False}  # fmt: skip

    def finish(self, model: Any, tokenizer: Any) -> None:
        """Store the decoding settings in the generation config, so a plain ``model.generate``
        decodes like ``tunelab predict``."""
        for key, value in self.generation_kwargs(tokenizer).items():
            setattr(model.generation_config, key, value)

    def forward(  # type: ignore[override]
        self, model: Any, tokenizer: Any, frame: pd.DataFrame, max_length: int,
        batch_size: int, precision: str = "fp32",
    ) -> Generations:  # fmt: skip
        """The text generated for every row's image, a batch of images at a time.

        Raises:
            UserError: naming the row and path of an image that cannot be read.
        """
        import torch

        model.eval()
        source = frame.attrs.get("source", "data")
        paths = frame[PATH].tolist()
        eos = model.generation_config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        texts: list[str] = []
        stopped: list[bool] = []
        with torch.inference_mode(), autocast(model, precision):
            for start in range(0, len(paths), batch_size):
                rows = range(start, min(start + batch_size, len(paths)))
                images = [self.open_row(source, frame.index[i], paths[i], tokenizer) for i in rows]
                pixels = self.features(tokenizer, images)["pixel_values"].to(model.device)
                generated = model.generate(pixel_values=pixels, **self.generation_kwargs(tokenizer))
                decoded = tokenizer.tokenizer.batch_decode(generated, skip_special_tokens=True)
                # a lone WordPiece continuation ("##9") first is decoded with its marks
                texts += [joined_words(text).strip().removeprefix("##") for text in decoded]
                stopped += [bool(stops & set(row.tolist()[1:])) for row in generated]
        return Generations(texts, stopped)

    # -- metrics and predictions -----------------------------------------------------------

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        return logits

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return {}

    def calibrate(self, outputs: Any, frame: pd.DataFrame) -> dict[str, Any]:
        return {}

    def evaluate_outputs(self, outputs: list[str], frame: pd.DataFrame) -> dict[str, Any]:  # type: ignore[override]
        """CER, exact match and chrF against the texts (readings), ROUGE-L and BLEU
        (descriptions; characters for Chinese); the shares of empty, identical and looping
        outputs, and of outputs that ended before the token limit."""
        references = self.targets(frame)[: len(outputs)]
        stopped = getattr(outputs, "stopped", [])
        ending = {"eos_ending_share": sum(stopped) / len(stopped)} if stopped else {}
        described = generation_metrics(list(outputs), references) if references else {}
        return {
            "examples": len(outputs),
            **reading_metrics(list(outputs), references),
            **{key: described[key] for key in ("rougeL", "bleu") if key in described},
            **degenerate_shares(list(outputs)),
            **ending,
        }

    def predictions(self, outputs: list[str], frame: pd.DataFrame) -> list[dict[str, Any]]:  # type: ignore[override]
        records = []
        gold = self.targets(frame) if LABEL in frame.columns else None
        for i, (row, path) in enumerate(frame[PATH].items()):
            if i >= len(outputs):
                break
            record: dict[str, Any] = {"path": self.file_name(path, row), "output": outputs[i]}
            if gold is not None:
                record["reference"] = gold[i]
                record["character_errors"] = character_errors(outputs[i], gold[i])
            records.append(record)
        return records

    def learning_warning(
        self, scores: dict[str, Any], examples: int, before: dict[str, Any] | None = None
    ) -> str | None:
        """A sentence when most outputs are empty or the same, or the CER is at or above 1
        (as many errors as characters to read); ``None`` if it learned."""
        problems = [
            f"{100 * scores[key]:.0f}% of the outputs are {what}"
            for key, what in (("empty_share", "empty"), ("same_output_share", "the same text"))
            if scores.get(key, 0.0) > 0.5 and examples >= 5
        ]
        if scores.get("cer", 0.0) >= 1.0:
            problems.append(f"the character error rate is {scores['cer']:.2f}")
        if not problems:
            return None
        return (
            "; ".join(problems) + ": the model has not learned to read; try more epochs, more "
            "training images, a higher training.learning_rate or a pretrained reader (--model)"
        )

    def baseline_outputs(self, splits: dict[str, pd.DataFrame], seed: int = 0) -> dict[str, Any]:
        """No built-in baseline (benchmarks/ocr_tesseract.py runs Tesseract on the same images)."""
        return {}
