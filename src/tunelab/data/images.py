"""Image files as data: class folders and path columns read into tables, images opened safely.

A table of images holds paths, never pixels: images are decoded one batch at a time by the
task's data loader. Opening goes through :func:`open_rgb`, which applies the EXIF orientation,
takes the first frame of an animation, converts every mode to RGB and refuses images above
Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) with one sentence.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.image_hashes import check_thumbnail, perceptual_hash
from tunelab.errors import UserError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
IMAGE_COLUMN, LABEL_COLUMN = "image", "label"
IMAGE_FOLDER = "image-folder"  # frame.attrs["kind"] of a table read from a folder


class ImageBombError(Exception):
    """An image larger than ``PIL.Image.MAX_IMAGE_PIXELS``: decoding it could exhaust memory."""


def is_image_file(path: Path) -> bool:
    """Whether ``path`` names an image by its suffix (PNG, JPEG, WebP, GIF, BMP, TIFF)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and is_image_file(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )  # fmt: skip


def read_image_folder(folder: Path) -> pd.DataFrame:
    """The images under ``folder`` as rows of (image, label): the ``imagefolder`` convention
    of ``datasets``, where each sub-folder is a class; images directly in ``folder`` (no class
    folders) give rows without labels, for prediction.

    Raises:
        UserError: if the folder holds no image files, or mixes loose images and class folders.
    """
    files = _image_files(folder)
    if not files:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UserError(
            f"{folder} holds no image files ({suffixes}); give a folder with one sub-folder "
            "of images per class"
        )
    depths = {len(p.relative_to(folder).parts) for p in files}
    if depths == {1}:
        frame = pd.DataFrame({IMAGE_COLUMN: [str(p) for p in files]})
    elif 1 in depths:
        loose = next(p for p in files if len(p.relative_to(folder).parts) == 1)
        raise UserError(
            f"{folder} mixes loose images ({loose.name}) with class sub-folders; move each "
            "image into the folder of its class"
        )
    else:
        labels = [p.relative_to(folder).parts[0] for p in files]
        frame = pd.DataFrame({IMAGE_COLUMN: [str(p) for p in files], LABEL_COLUMN: labels})
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs.update({"source": str(folder), "kind": IMAGE_FOLDER, "bad_lines": []})
    return frame


def read_image_file(path: Path) -> pd.DataFrame:
    """One image file as a one-row table (for ``tunelab predict --input photo.jpg``)."""
    frame = pd.DataFrame({IMAGE_COLUMN: [str(path)]}, index=pd.RangeIndex(1, 2))
    frame.attrs.update({"source": str(path), "kind": IMAGE_FOLDER, "bad_lines": []})
    return frame


def resolve_image_paths(frame: pd.DataFrame, column: str) -> pd.Series:
    """Absolute paths of the images in ``column``: relative paths are read from the data
    file's folder (the working directory for rows typed on the command line).

    A table file may only name images inside its own folder, so a data file cannot make a
    run read files elsewhere on the machine; a folder of images names its own files.

    Raises:
        UserError: naming the row and the path that leaves the data file's folder.
    """
    source = frame.attrs.get("source", "data")
    kind = frame.attrs.get("kind")
    source_path = Path(str(source))
    from_file = kind != IMAGE_FOLDER and source_path.is_file()
    base = source_path.parent.resolve() if from_file else Path.cwd()
    resolved = []
    for row, value in frame[column].items():
        if pd.isna(value) or not str(value).strip():
            resolved.append(None)  # drop_invalid_rows names empty cells
            continue
        path = (base / str(value).strip()).resolve()
        if from_file and not path.is_relative_to(base):
            raise UserError(
                f"{source} row {row}: image path '{value}' leads outside the data file's folder "
                f"{base}; keep the images beside or below the data file and give relative paths"
            )
        resolved.append(str(path))
    return pd.Series(resolved, index=frame.index, dtype=object)


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


@dataclass(frozen=True)
class ImageFacts:
    """What the doctor learns from one decoding of an image."""

    width: int
    height: int
    phash: int  # 64-bit perceptual hash (near-duplicate candidates)
    thumbnail: np.ndarray  # 16x16 grey (confirms a candidate)
    sha1: str  # of the file's bytes (exact duplicates)


def image_facts(path: str) -> ImageFacts:
    """Size, perceptual hash, check thumbnail and content hash of the image at ``path``,
    decoding it once.

    Raises:
        ImageBombError / OSError / ValueError / SyntaxError / EOFError: as :func:`open_rgb`.
    """
    image = open_rgb(path)
    return ImageFacts(
        image.width, image.height, perceptual_hash(image), check_thumbnail(image),
        content_hash(path),
    )  # fmt: skip


def content_hash(path: str) -> str:
    """SHA-1 of the file's bytes (exact duplicates and leakage across splits)."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


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
