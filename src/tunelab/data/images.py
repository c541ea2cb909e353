"""Image files opened safely, shrunk for the baseline and the report.

Tables of images hold paths (:mod:`tunelab.data.media`); images are decoded one batch at a
time by the task's data loader. Opening goes through :func:`open_rgb`, which applies the EXIF
orientation, takes the first frame of an animation, converts every mode to RGB and refuses
images above Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) with one sentence.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import UserError

IMAGE_COLUMN = "image"  # the path column of an image folder (tunelab.data.media)


class ImageBombError(Exception):
    """An image larger than ``PIL.Image.MAX_IMAGE_PIXELS``: decoding it could exhaust memory."""


def open_rgb(path: str | Path) -> Any:
    """The image at ``path`` as an RGB ``PIL.Image``, upright (EXIF orientation applied), the
    first frame of an animation, transparency laid on white.

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
            with Image.open(path) as image:
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


def bomb_error(source: str, row: Any, path: str, error: ImageBombError) -> UserError:
    """The one sentence for an image above the decompression-bomb limit."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS or 0
    pixels = re.search(r"\d+", str(error))  # Pillow's message and ours start with the count
    size = f" has {int(pixels.group()) / 1e6:.1f} megapixels and" if pixels else ""
    return UserError(
        f"{source} row {row}: image {path}{size} is larger than Pillow's limit of "
        f"{limit / 1e6:.1f} megapixels (PIL.Image.MAX_IMAGE_PIXELS), its guard against "
        "decompression bombs; downscale the image or remove it"
    )


def image_problem(path: str) -> str | None:
    """Why the image at ``path`` cannot be used (missing, truncated, corrupt), or ``None``.

    Raises:
        ImageBombError: for an image above the decompression-bomb limit.
    """
    if not Path(path).is_file():
        return "no such file"
    try:
        open_rgb(path)
    except ImageBombError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return str(exc).split("\n")[0] or type(exc).__name__
    return None


def pixel_features(paths: list[str], side: int = 16) -> np.ndarray:
    """Each image shrunk to ``side`` x ``side`` RGB, as a row of values in [0, 1] (the
    features of the logistic-regression baseline)."""
    rows = np.zeros((len(paths), side * side * 3), dtype=np.float32)
    for i, path in enumerate(paths):
        small = open_rgb(path).resize((side, side))
        rows[i] = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
    return rows


def thumbnail_uri(path: str, side: int = 64) -> str | None:
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
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
