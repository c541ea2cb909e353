"""An image example from Debian's Chinese fonts: look-alike characters, rendered.

``zh-lookalikes`` asks a model to tell apart 24 Chinese characters that differ by a stroke or
its length (己 已 巳, 未 末, 土 士, 日 曰, 人 入 八, 大 太 犬 天 夫, 王 玉 主, 田 由 甲 申).
Each image is one character in one of the 11 faces of three font packages (hei sans-serif,
kai brush and ming serif styles, in their mainland, Hong Kong and Taiwan glyph forms), at a
random size, rotation, offset and stroke weight, in grey ink on grey paper, blurred and
noised, so that neither the position nor the font gives the class away.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.data.image_hashes import check_thumbnail, near_duplicate_pairs, perceptual_hash
from tunelab.data.split import split_frame
from tunelab.errors import UserError
from tunelab.outputs import write_json

LOOKALIKES = "己已巳未末土士日曰人入八大太犬天夫王玉主田由甲申"
SIDE = 48  # pixels of a written image
RENDER_SEED = 0  # the images are the same whatever the split seed
PER_CLASS = 80


@dataclass(frozen=True)
class FontPackage:
    """A Debian font package and what tunelab renders from it."""

    package: str
    file: Path
    style: str
    licence: str  # as the package's /usr/share/doc/<package>/copyright states it


FONT_PACKAGES = (
    FontPackage(
        "fonts-wqy-zenhei", Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
        "hei (sans-serif)", "GPL-2 with font embedding exception",
    ),
    FontPackage(
        "fonts-arphic-ukai", Path("/usr/share/fonts/truetype/arphic/ukai.ttc"),
        "kai (brush)", "Arphic Public License",
    ),
    FontPackage(
        "fonts-arphic-uming", Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
        "ming (serif)", "Arphic Public License",
    ),
)  # fmt: skip


def require_fonts(example: str = "zh-lookalikes") -> None:
    """Raises UserError naming the Debian packages to install when a font file is missing."""
    missing = [font.package for font in FONT_PACKAGES if not font.file.is_file()]
    if missing:
        every = " ".join(font.package for font in FONT_PACKAGES)
        raise UserError(
            f"{example} renders characters from the Debian font packages {every}, and "
            f"{', '.join(missing)} is not installed; install them with: apt-get install -y "
            f"{every}"
        )


def font_faces(font: FontPackage, size: int) -> list[Any]:
    """Every face of a font collection (``.ttc``) at ``size`` pixels."""
    from PIL import ImageFont

    faces = []
    while True:
        try:
            faces.append(ImageFont.truetype(str(font.file), size, index=len(faces)))
        except OSError:  # past the last face of the collection
            return faces


def _package_version(package: str) -> str | None:
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def render(character: str, face: Any, rng: np.random.Generator) -> Any:
    """One noisy rendering of ``character`` in ``face`` (drawn at 4x and shrunk to
    ``SIDE`` pixels), as a grey ``PIL.Image``."""
    from PIL import Image, ImageDraw, ImageFilter

    big = SIDE * 4
    ink, paper = int(rng.integers(0, 90)), int(rng.integers(170, 256))
    canvas = Image.new("L", (big, big), paper)
    glyph = Image.new("L", (big, big), 0)  # the glyph as a mask, scaled and turned below
    stroke = int(rng.choice([0, 0, 2, 4]))  # heavier weights drawn as a stroke around it
    ImageDraw.Draw(glyph).text(
        (big / 2, big / 2), character, font=face, fill=255, anchor="mm",
        stroke_width=stroke, stroke_fill=255,
    )  # fmt: skip
    scale = rng.uniform(0.55, 0.85)
    glyph = glyph.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BILINEAR)
    inner = max(1, round(big * scale))
    glyph = glyph.resize((inner, inner), Image.Resampling.BILINEAR)
    room = big - inner
    left = int(np.clip(room / 2 + rng.normal(0, room / 5), 0, room))
    top = int(np.clip(room / 2 + rng.normal(0, room / 5), 0, room))
    canvas.paste(Image.new("L", glyph.size, ink), (left, top), glyph)
    image = canvas.resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
    noise = rng.normal(0, rng.uniform(4, 18), (SIDE, SIDE))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255)
    return Image.fromarray(pixels.round().astype(np.uint8), mode="L")


def _near_duplicate_groups(images: list[Any], index: pd.Index) -> pd.Series:
    """A group key per rendering: renderings the image doctor calls near duplicates (the same
    face at a like size and place) share one, so that no split holds a copy of another's."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    hashes = np.array([perceptual_hash(image) for image in images], dtype=np.uint64)
    thumbnails = np.array([check_thumbnail(image) for image in images])
    pairs = near_duplicate_pairs(hashes, thumbnails)
    graph = coo_matrix((np.ones(len(pairs.first)), (pairs.first, pairs.second)),
                       (len(images), len(images)))  # fmt: skip
    return pd.Series(connected_components(graph, directed=False)[1], index=index)


def package_card(font: FontPackage, frame: pd.DataFrame) -> dict[str, Any]:
    """The data card's entry of ``font``: package, version, licence, faces used, images."""
    used = frame.loc[frame["package"] == font.package, "face"]
    return {
        "package": font.package,
        "version": _package_version(font.package),
        "licence": font.licence,
        "style": font.style,
        "file": str(font.file),
        "faces": sorted(set(used)),
        "images": len(used),
    }


def build_zh_lookalikes(out: Path, seed: int = 42, per_class: int = PER_CLASS) -> dict[str, Any]:
    """Write the look-alike characters as PNG files in class folders,
    ``out/{train,validation,test}/<character>/<n>.png``, split 80/10/10 with ``seed``,
    stratified by character, and ``dataset.json`` (packages, licences, counts, split).

    Raises:
        UserError: naming the Debian packages to install when a font is missing.
    """
    require_fonts()
    rng = np.random.default_rng(RENDER_SEED)
    size = SIDE * 4 * 3 // 4  # the face's em at 4x: scaled again per image
    faces = [(font, face) for font in FONT_PACKAGES for face in font_faces(font, size)]
    rows = []
    for character in LOOKALIKES:
        for _ in range(per_class):
            font, face = faces[int(rng.integers(len(faces)))]
            rows.append({"label": character, "image": render(character, face, rng),
                         "package": font.package, "face": " ".join(face.getname())})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    frame.attrs["source"] = "zh-lookalikes renderings"
    groups = _near_duplicate_groups(frame["image"].tolist(), frame.index)
    splits = split_frame(frame, {"validation": 0.1, "test": 0.1}, seed, frame["label"], groups)
    for split, part in splits.items():
        for number, row in part.iterrows():
            folder = out / split / row["label"]
            folder.mkdir(parents=True, exist_ok=True)
            row["image"].save(folder / f"{number:05d}.png")
    summary = {
        "name": "zh-lookalikes",
        "source": "24 look-alike Chinese characters rendered from Debian's font packages "
        "(random face, size, rotation, offset, stroke weight, grey levels, blur and noise)",
        "packages": [package_card(font, frame) for font in FONT_PACKAGES],
        "characters": list(LOOKALIKES),
        "image_size": [SIDE, SIDE],
        "per_class": per_class,
        "render_seed": RENDER_SEED,
        "split_seed": seed,
        "near_duplicate_groups": int((groups.value_counts() > 1).sum()),
        "grouped_by": "near-duplicate renderings (tunelab's image doctor) stay in one split",
        "rows": {split: len(part) for split, part in splits.items()},
        "labels": {
            split: part["label"].value_counts().sort_index().to_dict()
            for split, part in splits.items()
        },
    }
    write_json(out / "dataset.json", summary)
    return summary
