"""Image classification: one label per image, from any ``AutoModelForImageClassification``.

Data is a folder of class sub-folders (the ``imagefolder`` convention) or a table with a
column of image paths relative to the table's file. The tables hold paths only: images are
decoded a batch at a time in the data loader (``Dataset.set_transform``), with random resized
crops and flips for training and none for evaluation. What it shares with audio lives in
:mod:`tunelab.tasks.file_classification`.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.image_doctor import diagnose_images, image_doctor_lines
from tunelab.data.images import (
    IMAGE_COLUMN,
    ImageBombError,
    bomb_error,
    open_rgb,
    pixel_features,
)
from tunelab.data.media import LABEL_COLUMN, MediaRef, UnreadableFile
from tunelab.evaluation import report_images
from tunelab.models.catalog import IMAGE
from tunelab.tasks.base import OnnxGraph
from tunelab.tasks.file_classification import LABEL, PATH, FileClassification

BASELINE_SIDE = 16  # the baseline reads each image as 16x16 RGB pixels
BASELINE_METHOD = (
    f"logistic regression on {BASELINE_SIDE}x{BASELINE_SIDE} RGB pixels (scikit-learn)"
)
CROP_SCALE = (0.6, 1.0)  # share of the image a training crop keeps: light, a digit stays whole
# what Pillow's decoders raise for a missing, truncated or corrupt file
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError)
DOCTOR_INPUT_SIDE = 32  # scratch-vit's default image side (image.scratch_size)


def _why(error: BaseException) -> str:
    return str(error).split("\n")[0] or type(error).__name__


def pixel_logits_module(model: Any) -> Any:
    """A module whose forward takes ``pixel_values`` and returns the logits (ONNX export)."""
    import torch

    class PixelLogits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return self.model(pixel_values=pixel_values).logits

    return PixelLogits()


def pixel_example(processor: Any, frame: pd.DataFrame, column: str, max_length: int) -> Any:
    """Two images through the processor (one size for all): only the batch stays dynamic."""
    images = [open_rgb(image) for image in frame[column].iloc[:2]]
    pixels = processor(images=images * (2 if len(images) == 1 else 1), return_tensors="pt")
    return {"pixel_values": pixels["pixel_values"]}, {"pixel_values": ("batch",)}


IMAGE_GRAPH = OnnxGraph(pixel_logits_module, example=pixel_example)


def model_input_side(config: Any) -> int:
    """The side in pixels the model reads images at: a local model folder's image processor
    size (``preprocessor_config.json``, or the image processor in ``processor_config.json``),
    else ``image.scratch_size`` (scratch-vit's, and the best guess before ``auto`` or a hub
    id is resolved). A processor that keeps each image's own size between a least and a most
    number of pixels (Qwen2-VL's ``min_pixels``, which ``image.processor`` may set) enlarges
    only images below the least: the side of that square."""
    settings = _image_processor_settings(Path(str(config.model.name)))
    size = settings.get("size")
    least = config.image.processor.get("min_pixels", settings.get("min_pixels"))
    if "merge_size" in settings and isinstance(size, dict) and least is None:
        least = size.get("shortest_edge")  # transformers 5 keeps min_pixels there
    if "merge_size" in settings and isinstance(least, int):
        return math.isqrt(least)
    if isinstance(size, int):
        return size
    if isinstance(size, dict):
        sides = [v for k, v in size.items() if k in ("height", "width", "shortest_edge")]
        if sides and all(isinstance(v, int) for v in sides):
            return min(sides)
    return int(config.image.scratch_size)


def _image_processor_settings(folder: Path) -> dict[str, Any]:
    """The saved settings of a model folder's image processor; empty where it has none."""
    for name, key in (
        ("preprocessor_config.json", None),
        ("processor_config.json", "image_processor"),
    ):
        path = folder / name
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            settings = saved.get(key) if key else saved
            if isinstance(settings, dict):
                return settings
    return {}


class ImageClassification(FileClassification):
    """Assign one label to an image."""

    name = "image-classification"
    input_kind = "image"
    noun, nouns = "image", "images"
    classifier = "an image classifier"
    article = "an"
    config_section, report_key = "image", "images"
    explains = "occlusion"  # cells painted over in turn (tunelab.explain.occlusion)
    exportable = ("onnx",)
    onnx_graph = IMAGE_GRAPH
    search_batch_sizes = (16, 32, 64)
    report_sections = staticmethod(report_images.sections)
    baseline_method = BASELINE_METHOD
    model_kind = IMAGE
    doctor_checks = "images"

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
        super().__init__(image_column, gold_column, labels, augment, drop_invalid)
        self.flip = flip
        self.input_side = input_side  # the doctor flags images smaller than this

    @classmethod
    def from_run_config(cls, config: Any) -> ImageClassification:
        """Build from a :class:`tunelab.config.RunConfig`."""
        image = config.image
        return cls(
            image.column, config.data.label_column, augment=image.augment, flip=image.flip,
            drop_invalid=config.data.drop_invalid, input_side=model_input_side(config),
        )  # fmt: skip

    # -- images ----------------------------------------------------------------------------

    def diagnose(
        self, frames: dict[str, pd.DataFrame], find_label_errors: bool, seed: int
    ) -> dict[str, Any]:
        """The image doctor (:func:`tunelab.data.image_doctor.diagnose_images`) in place of the
        shared files' one: unreadable images, exact and near duplicates, leakage between
        splits, sizes and outliers, class balance. Decodes each image once.

        Raises:
            UserError: for an image above the decompression-bomb limit; when not dropping
                invalid rows (``--strict``), for the first unreadable image or empty path.
        """
        report = diagnose_images(frames, PATH, LABEL, self.input_side, strict=not self.drop_invalid)
        for split, section in report["images"].items():
            paths = frames[split][PATH]  # the report names bytes by row: clean() reads cells
            self._problems.update({paths[u["row"]]: u["problem"] for u in section["unreadable"]})
        return report

    def doctor_lines(self, report: dict[str, Any]) -> list[str]:
        return image_doctor_lines(report)

    def inspect_file(self, source: str, row: Any, path: MediaRef) -> dict[str, Any]:
        """The image's size, decoding it fully (a truncated file fails here, not in training).

        Raises:
            UnreadableFile: for a missing, truncated or corrupt image.
            UserError: for an image above the decompression-bomb limit.
        """
        try:
            width, height = self.decode(path, None).size
        except ImageBombError as error:
            raise bomb_error(source, row, path, error) from None
        return {"width": width, "height": height}

    def file_summary(self, stats: list[dict[str, Any]]) -> dict[str, Any]:
        """Image sizes: min, median and max width and height."""
        sizes = {}
        for side in ("width", "height"):
            values = [s[side] for s in stats]
            sizes[side] = {"min": min(values), "median": float(np.median(values)),
                           "max": max(values)}  # fmt: skip
        return {"sizes": sizes}

    def decode(self, path: MediaRef, processor: Any) -> Any:
        """The image as an upright RGB ``PIL.Image`` (:func:`tunelab.data.images.open_rgb`).

        Raises:
            UnreadableFile: for a missing, truncated or corrupt image.
            ImageBombError: above Pillow's decompression-bomb limit.
        """
        try:
            return open_rgb(path)
        except DECODE_ERRORS as error:
            raise UnreadableFile(_why(error)) from None

    def open_row(self, source: str, row: Any, path: MediaRef, processor: Any) -> Any:
        try:
            return super().open_row(source, row, path, processor)
        except ImageBombError as error:
            raise bomb_error(source, row, path, error) from None

    def features(self, processor: Any, decoded: list[Any]) -> dict[str, Any]:
        """``pixel_values`` of a batch of images from the model's image processor."""
        return {"pixel_values": processor(images=decoded, return_tensors="pt")["pixel_values"]}

    def augmented(self, image: Any) -> Any:
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

    def baseline_features(self, paths: list[MediaRef]) -> np.ndarray:
        """Each image shrunk to 16x16 RGB pixels in [0, 1]."""
        return pixel_features(paths, BASELINE_SIDE)

    # -- model classes ---------------------------------------------------------------------

    def auto_model_class(self) -> Any:
        from transformers import AutoModelForImageClassification

        return AutoModelForImageClassification

    def processor_class(self) -> Any:
        from transformers import AutoImageProcessor

        return AutoImageProcessor
