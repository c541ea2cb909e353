"""Image files opened safely, shrunk for the baseline and the report.

Tables of images hold paths (or, for images stored inside a Parquet file or a saved
``datasets`` folder, the encoded file bytes; :mod:`tunelab.data.media`), never pixels: images
are decoded one batch at a time by the task's data loader. Opening goes through
:func:`open_rgb`, which applies the EXIF orientation, takes the first frame of an animation,
converts every mode to RGB and refuses images above Pillow's decompression-bomb limit
(``PIL.Image.MAX_IMAGE_PIXELS``) with one sentence.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.data.image_hashes import check_thumbnail, perceptual_hash
from tunelab.data.media import MEDIA_SUFFIXES, MediaRef, content_hash, media_name
from tunelab.errors import UserError

IMAGE_SUFFIXES = MEDIA_SUFFIXES["image"]
IMAGE_COLUMN = "image"  # the path column of an image folder (tunelab.data.media)
# An image as a table holds it: a path, or the bytes of an encoded file (PNG, JPEG, ...).
ImageRef = MediaRef


def _readable(image: ImageRef | Path) -> Any:
    """What ``Image.open`` reads: the path, or the bytes as a file object."""
    return io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else image


def image_name(image: ImageRef, row: Any) -> str:
    """How messages and predictions name an image: its path, or the row that holds it."""
    return media_name(image, row, "image")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` names an image by its suffix (PNG, JPEG, WebP, GIF, BMP, TIFF)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


class ImageBombError(Exception):
    """An image larger than ``PIL.Image.MAX_IMAGE_PIXELS``: decoding it could exhaust memory."""


def open_rgb(path: ImageRef | Path) -> Any:
    """The image at ``path`` (or in these bytes) as an RGB ``PIL.Image``, upright (EXIF
    orientation applied), the first frame of an animation, transparency laid on white.

    Raises:
        ImageBombError: above ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's decompression-bomb guard).
        OSError: for a missing, unreadable, truncated or corrupt file (and ValueError/
            SyntaxError, which some of Pillow's decoders raise for damaged data).
    """
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        # Pillow warns between the limit and twice the limit and raises above: refuse both
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(_readable(path)) as image:
                image.seek(0)
                limit = Image.MAX_IMAGE_PIXELS
                if limit and image.width * image.height > limit:
                    raise ImageBombError(f"{image.width * image.height} pixels")
                image.load()  # decodes fully: a truncated file fails here, not in training
                upright = ImageOps.exif_transpose(image) or image
                if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
                    rgba = upright.convert("RGBA")
                    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    return Image.alpha_composite(white, rgba).convert("RGB")
                return upright.convert("RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageBombError(str(exc)) from None


def bomb_error(source: str, row: Any, path: ImageRef, error: ImageBombError) -> UserError:
    """The one sentence for an image above the decompression-bomb limit."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS or 0
    pixels = re.search(r"\d+", str(error))  # Pillow's message and ours start with the count
    size = f" has {int(pixels.group()) / 1e6:.1f} megapixels and" if pixels else ""
    return UserError(
        f"{source} row {row}: image {image_name(path, row)}{size} is larger than Pillow's limit of "
        f"{limit / 1e6:.1f} megapixels (PIL.Image.MAX_IMAGE_PIXELS), its guard against "
        "decompression bombs; downscale the image or remove it"
    )


def image_problem(path: ImageRef) -> str | None:
    """Why the image at ``path`` cannot be used (missing, truncated, corrupt), or ``None``.

    Raises:
        ImageBombError: for an image above the decompression-bomb limit.
    """
    if isinstance(path, str) and not Path(path).is_file():
        return "no such file"
    try:
        open_rgb(path)
    except ImageBombError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return str(exc).split("\n")[0] or type(exc).__name__
    return None


@dataclass(frozen=True)
class ImageFacts:
    """What the doctor learns from one decoding of an image."""

    width: int
    height: int
    phash: int  # 64-bit perceptual hash (near-duplicate candidates)
    thumbnail: np.ndarray  # 16x16 grey (confirms a candidate)
    sha1: str  # of the file's bytes (exact duplicates)


def image_facts(path: ImageRef) -> ImageFacts:
    """Size, perceptual hash, check thumbnail and content hash of the image at ``path`` (or
    in these bytes), decoding it once.

    Raises:
        ImageBombError / OSError / ValueError / SyntaxError / EOFError: as :func:`open_rgb`.
    """
    image = open_rgb(path)
    return ImageFacts(
        image.width, image.height, perceptual_hash(image), check_thumbnail(image),
        content_hash(path),
    )  # fmt: skip


def pixel_features(paths: list[ImageRef], side: int = 16) -> np.ndarray:
    """Each image shrunk to ``side`` x ``side`` RGB, as a row of values in [0, 1] (the
    features of the logistic-regression baseline)."""
    rows = np.zeros((len(paths), side * side * 3), dtype=np.float32)
    for i, path in enumerate(paths):
        small = open_rgb(path).resize((side, side))
        rows[i] = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
    return rows


def thumbnail_uri(path: ImageRef, side: int = 64) -> str | None:
    """A PNG thumbnail of the image as a ``data:`` URI (the report works offline), or None
    if the image cannot be read any more."""
    try:
        image = open_rgb(path)
    except (ImageBombError, OSError, ValueError, SyntaxError, EOFError):
        return None
    image.thumbnail((side, side))
    if max(image.size) < side:  # small images (digits) are shown larger, pixels kept sharp
        from PIL import Image

        scale = side // max(image.size)
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return png_data_uri(image)


def png_data_uri(image: Any) -> str:
    """A PIL image as a PNG ``data:`` URI, for pages that work offline."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
